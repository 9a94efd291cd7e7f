"""The live collector against a Binance stand-in over real sockets, publishing to real NATS:
exact books, resync after a gap, reconnect, Retry-After honoured, gapless rotation, and
malformed frames dropped without harm."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import pytest
import pytest_asyncio

from depthflow.collector.config import CollectorConfig
from depthflow.collector.live import LiveSource
from depthflow.collector.recording import read_frames
from depthflow.collector.session import MarketSession
from depthflow.common.config import RuntimeConfig
from depthflow.common.messages import DepthSnapshot, MarketDataStale, TradeBatch, f64, i64
from depthflow.common.runtime import Service
from tests.conftest import read_all, wait_for
from tests.standins.binance import BinanceStandIn

SYMBOLS = ["BTCFDUSD", "ETHFDUSD"]


@pytest_asyncio.fixture
async def exchange():
    # pings every 0.5 s with a 3 s pong deadline: a collector that did not answer would be cut off
    ex = BinanceStandIn(
        symbols=SYMBOLS, levels=1500, ban_s=3.0, shutdown_grace_s=1.0, history=3000,
        ping_interval_s=0.5, pong_timeout_s=3.0,
    )
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()


@pytest_asyncio.fixture
async def live(exchange, bus, isolated):
    """Start a LiveSource in this event loop; yield it with its service."""
    started: list[tuple[LiveSource, asyncio.Task]] = []

    async def start(**over) -> LiveSource:
        rt = RuntimeConfig(prefix=isolated.prefix, symbols=SYMBOLS, nats_url=isolated.urls.nats)
        cfg = CollectorConfig(**{
            "runtime": rt, "source": "live", "rest_url": exchange.rest_url, "ws_url": exchange.ws_url,
            "depth": 1000, "snapshot_interval_s": 0.5, "resync_min_interval_s": 0.5, "stale_after_s": 2.0,
            **over,
        })
        service = Service("collector", rt)
        service.bus = bus
        src = LiveSource(cfg, service)
        started.append((src, asyncio.create_task(src.run(bus))))
        return src

    yield start
    for src, task in started:
        src.stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def depths(bus, symbol) -> list[DepthSnapshot]:
    return [m for _, m in await read_all(bus, "MD", bus.subjects.md_depth("binance", symbol), DepthSnapshot)]


def assert_exact(snap: DepthSnapshot, exchange: BinanceStandIn) -> None:
    bids, asks = exchange.book_at(snap.symbol, snap.last_update_id)
    bid_px = np.array(sorted((p for p in bids if p >= snap.known_low), reverse=True))[: 1000]
    ask_px = np.array(sorted(p for p in asks if p <= snap.known_high))[: 1000]
    assert np.array_equal(f64(snap.bid_px), bid_px)
    assert np.array_equal(f64(snap.ask_px), ask_px)
    assert np.array_equal(f64(snap.bid_qty), [bids[p] for p in bid_px])
    assert np.array_equal(f64(snap.ask_qty), [asks[p] for p in ask_px])


async def synced(bus, n=2):
    async def ok() -> bool:
        counts = [len(await depths(bus, s)) for s in SYMBOLS]
        return min(counts) >= n

    await wait_for(ok, within_s=30)


async def test_books_are_exactly_the_exchanges(live, exchange, bus):
    await live()
    await synced(bus, n=4)
    for s in SYMBOLS:
        snaps = await depths(bus, s)
        assert snaps[0].reason == "resync"
        for snap in snaps:
            assert_exact(snap, exchange)
            assert snap.known_low <= f64(snap.bid_px).min()
            assert f64(snap.ask_px).max() <= snap.known_high


async def test_books_and_trades_carry_the_tick_exchange_info_states(live, bus):
    # on a 0.05 grid the price strings alone would say 0.01: the tick must be exchangeInfo's
    coarse = BinanceStandIn(symbols=SYMBOLS, levels=300, tick=0.05)
    await coarse.start()
    try:
        await live(rest_url=coarse.rest_url, ws_url=coarse.ws_url)
        await synced(bus, n=2)
        subjects = [bus.subjects.md_trade("binance", s) for s in SYMBOLS]
        trades = [m for subject in subjects for _, m in await read_all(bus, "MD", subject, TradeBatch)]
        books = [m for s in SYMBOLS for m in await depths(bus, s)]
        assert trades
        assert {m.tick_size for m in books + trades} == {0.05}
    finally:
        await coarse.stop()


async def test_pings_are_answered_with_pongs(live, exchange, bus):
    src = await live()
    await synced(bus)
    pongs = exchange.pongs
    await asyncio.sleep(4.0)
    assert exchange.pongs > pongs
    assert exchange.pong_timeouts == 0
    assert src.reconnects == 0


async def test_dropped_diff_triggers_resync_and_next_book_is_exact(live, exchange, bus):
    src = await live()
    await synced(bus)
    exchange.drop_next_diff("BTCFDUSD")

    async def resynced() -> bool:
        return sum(d.reason == "resync" for d in await depths(bus, "BTCFDUSD")) >= 2

    await wait_for(resynced, within_s=30)
    assert src.session.books["BTCFDUSD"].gaps == 1
    after = [d for d in await depths(bus, "BTCFDUSD") if d.reason == "resync"][1]
    assert_exact(after, exchange)


async def test_disconnect_is_recovered_within_5s_of_stand_in_time(live, exchange, bus):
    src = await live()
    await synced(bus)
    before = len(await depths(bus, "ETHFDUSD"))
    t0 = time.time()
    exchange.disconnect_all()

    async def recovered() -> bool:
        return any(d.ts_event / 1e9 > t0 for d in (await depths(bus, "ETHFDUSD"))[before:])

    await wait_for(recovered, within_s=30)
    first_after = next(d for d in (await depths(bus, "ETHFDUSD"))[before:] if d.ts_event / 1e9 > t0)
    # the exchange's own event time of the first book published after the drop
    assert first_after.ts_event / 1e9 - t0 < 5.0
    assert src.reconnects == 1
    assert_exact(first_after, exchange)


@pytest.mark.parametrize("status", [429, 418])
async def test_no_request_before_retry_after(live, exchange, bus, status):
    if status == 429:
        exchange.answer_429(retry_after_s=2)
    else:
        exchange.answer_418(retry_after_s=2)
    await live()
    await synced(bus, n=1)
    reqs = exchange.requests
    hit = next(i for i, r in enumerate(reqs) if r.status == status)
    later = reqs[hit + 1 :]
    assert later, "the collector never tried again"
    assert min(r.at for r in later) - reqs[hit].at >= 2.0
    assert all(r.status == 200 for r in later)


async def test_rotation_on_server_shutdown_loses_no_trade(live, exchange, bus):
    src = await live()
    await synced(bus)
    exchange.send_server_shutdown()

    async def rotated_and_flowing() -> bool:
        return src.rotations == 1 and len(await depths(bus, "BTCFDUSD")) >= 8

    await wait_for(rotated_and_flowing, within_s=30)
    await asyncio.sleep(1.0)
    for s in SYMBOLS:
        batches = [m for _, m in await read_all(bus, "MD", bus.subjects.md_trade("binance", s), TradeBatch)]
        ids = np.concatenate([i64(b.ids) for b in batches])
        assert ids.size > 10
        assert np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size)), "trade ids not continuous"
    assert src.reconnects == 0
    assert all(b.gaps == 0 for b in src.session.books.values())


async def test_malformed_frames_are_counted_and_dropped(live, exchange, bus):
    src = await live()
    await synced(bus)
    bad = ['{"stream":"btcfdusd@depth@100ms","data":{"e":"depthUpdate"}}', "not json", "[1,2,3]",
           '{"stream":"x","data":{"e":"aggTrade","p":"abc"}}']
    n = len(await depths(bus, "BTCFDUSD"))
    exchange.send_malformed(bad)

    async def more() -> bool:
        return src.session.stats["malformed"] >= len(bad) and len(await depths(bus, "BTCFDUSD")) > n + 2

    await wait_for(more, within_s=30)
    assert src.session.stats["malformed"] == len(bad)
    assert all(b.gaps == 0 for b in src.session.books.values())


async def test_stale_feed_is_reported(live, exchange, bus):
    src = await live()
    await synced(bus)
    exchange._generator.cancel()  # the exchange goes silent

    async def stale() -> bool:
        msgs = await read_all(bus, "MD", bus.subjects.md_status("binance", "BTCFDUSD"), MarketDataStale)
        return len(msgs) >= 1

    await wait_for(stale, within_s=30)
    assert src.rotate.is_set() or src.rotations >= 0


async def test_live_recording_replays_to_the_same_books(live, exchange, bus, tmp_path):
    src = await live(record_dir=str(tmp_path / "rec"))
    await synced(bus, n=4)
    src.stopping.set()
    await asyncio.sleep(0.5)
    published = {d.last_update_id: d for s in SYMBOLS for d in await depths(bus, s)}
    files = sorted((tmp_path / "rec").glob("*.gz"))
    assert files
    session = MarketSession("binance", set(SYMBOLS), depth=1000, snapshot_interval_ms=500)
    replayed = [m for f in files for fr in read_frames(f) for m in session.on_frame(fr)]
    replayed = [m for m in replayed if isinstance(m, DepthSnapshot)]
    assert len(replayed) >= len(published) > 4
    for d in replayed:
        if d.last_update_id in published:
            live_d = published[d.last_update_id]
            assert (d.bid_px, d.bid_qty, d.ask_px, d.ask_qty) == (
                live_d.bid_px, live_d.bid_qty, live_d.ask_px, live_d.ask_qty,
            )
    assert set(published) <= {d.last_update_id for d in replayed}

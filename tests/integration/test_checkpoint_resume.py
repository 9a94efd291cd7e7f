"""A restarted aggregator or peaks service resumes exactly: state comes back from the Redis
checkpoint plus a replay of what was acknowledged after it, so nothing is lost or doubled.

The aggregator publishes its trade profile with the next book (when it changed), so each part of
trades here is followed by one book."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time

import msgspec
import numpy as np
import pytest
import redis.asyncio as aioredis

from depthflow.common.codec import encode
from depthflow.common.messages import DepthSnapshot, TradeBatch, TradeProfile, f64, f64_bytes, i64, i64_bytes
from tests.conftest import read_all, subject_count, wait_for

SYM = "BTCFDUSD"


def batches(n: int, first_id: int, seed: int) -> list[TradeBatch]:
    rng = np.random.default_rng(seed)
    out, tid = [], first_id
    now = time.time_ns()
    for i in range(n):
        k = int(rng.integers(1, 6))
        ts = np.full(k, now + i * 100_000_000, dtype=np.int64)
        out.append(TradeBatch(
            symbol=SYM, venue="binance", ts_event=int(ts[-1]), ts_init=now, origin_ts=int(ts[0]),
            first_trade_id=tid, last_trade_id=tid + k - 1, ids=i64_bytes(np.arange(tid, tid + k)),
            px=f64_bytes(rng.uniform(59990, 60010, k)), qty=f64_bytes(rng.uniform(0.001, 1, k)),
            ts=i64_bytes(ts), buyer_maker=f64_bytes(rng.integers(0, 2, k).astype(float)),
        ))
        tid += k
    return out


def book() -> DepthSnapshot:
    now = time.time_ns()
    return DepthSnapshot(
        symbol=SYM, venue="binance", ts_event=now, ts_init=now, origin_ts=now, last_update_id=1,
        bid_px=f64_bytes([59999.0]), bid_qty=f64_bytes([1.0]), ask_px=f64_bytes([60001.0]),
        ask_qty=f64_bytes([1.0]), known_low=59999.0, known_high=60001.0, tick_size=0.01,
    )


def plain_profile(sent: list[TradeBatch]) -> dict[int, tuple[float, float]]:
    """Buy and sell volume per 1.0 bucket summed straight from the raw trades, each trade id once:
    shares no code with the aggregator (no RollingProfile, no bucketing kernel). A trade whose
    buyer is the maker was a sell hitting the bid."""
    trades: dict[int, tuple[float, float, bool]] = {}
    for b in sent:
        for tid, px, qty, maker in zip(i64(b.ids).tolist(), f64(b.px).tolist(), f64(b.qty).tolist(),
                                       f64(b.buyer_maker).tolist(), strict=True):
            trades[tid] = (px, qty, maker == 1.0)
    buckets: dict[int, tuple[list[float], list[float]]] = {}
    for px, qty, sell in trades.values():
        buys, sells = buckets.setdefault(math.floor(px), ([], []))
        (sells if sell else buys).append(qty)
    return {k: (math.fsum(b), math.fsum(s)) for k, (b, s) in sorted(buckets.items())}


async def assert_profile_becomes_the_sum_of(bus, sent: list[TradeBatch]) -> None:
    """A book soon carries a profile equal to the plain sums of every trade sent, each once
    (1.0 is the bucket size chosen for 60,000 at a 0.01 tick), and no book carries more than one
    profile.

    Why poll with fresh books: after a crash, a batch whose ack was lost comes again only after
    ``ack_wait``, behind newer messages, and its trades reach consumers with the next book.
    """
    want = plain_profile(sent)
    n_trades = len({tid for b in sent for tid in i64(b.ids).tolist()})
    s = bus.subjects
    profiles: list[TradeProfile] = []

    async def caught_up() -> bool:
        nonlocal profiles
        await bus.js.publish(s.md_depth("binance", SYM), encode(book()))
        profiles = [m for _, m in await read_all(bus, "AGG", s.agg_profile("binance", SYM), TradeProfile)]
        return bool(profiles) and profiles[-1].trades_in_window == n_trades

    await wait_for(caught_up, within_s=60)
    assert len(profiles) <= await subject_count(bus, "AGG", s.agg_book("binance", SYM))
    last = profiles[-1]
    assert f64(last.px).tolist() == [float(k) for k in want]
    assert np.allclose(f64(last.buy_qty), [b for b, _ in want.values()], rtol=1e-12, atol=0)
    assert np.allclose(f64(last.sell_qty), [s for _, s in want.values()], rtol=1e-12, atol=0)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "drain"])
async def test_aggregator_resumes_exactly_after_restart(stack, bus, how):
    env = {"DEPTHFLOW_AGGREGATOR_CHECKPOINT_INTERVAL_S": "2", "DEPTHFLOW_ACK_WAIT_S": "2"}
    first = await stack("aggregator", **env)
    part1, part2 = batches(40, 1, seed=1), batches(30, 10_000, seed=2)
    await publish(bus, part1)
    await books_reach(bus, 1)
    os.kill(first.procs[0].pid, how)
    first.procs.clear()
    await publish(bus, part2)  # while the aggregator is down
    await stack("aggregator", **env)
    await books_reach(bus, 2)

    await assert_profile_becomes_the_sum_of(bus, part1 + part2)


async def test_a_checkpoint_in_an_older_format_is_rebuilt_from_the_stream(stack, bus, isolated):
    """After an upgrade that changed the state format, the aggregator starts (it does not crash
    on the old checkpoint) and rebuilds the profile by replaying the stream: nothing lost, nothing
    counted twice."""
    env = {"DEPTHFLOW_AGGREGATOR_CHECKPOINT_INTERVAL_S": "2"}
    first = await stack("aggregator", **env)
    part1, part2 = batches(20, 1, seed=3), batches(15, 10_000, seed=4)
    await publish(bus, part1)
    await books_reach(bus, 1)
    codes = await asyncio.to_thread(first.stop)  # SIGTERM: drains and saves a checkpoint
    assert codes == {"aggregator": 0}
    r = aioredis.from_url(isolated.urls.redis)
    keys = [k async for k in r.scan_iter(match=f"{isolated.prefix}:ckpt:*:{SYM}")]
    assert keys, "the drained aggregator saved no checkpoint"
    for key in keys:  # what the build before format version 2 wrote: no version field
        entry = msgspec.msgpack.decode(await r.get(key))
        entry["state"] = msgspec.msgpack.encode({"bucket_size": 1.0, "window_min": 2880, "base": 0})
        await r.set(key, msgspec.msgpack.encode(entry))
    await r.aclose()
    await publish(bus, part2)
    await stack("aggregator", **env)
    await books_reach(bus, 2)
    await assert_profile_becomes_the_sum_of(bus, part1 + part2)


async def publish(bus, sent: list[TradeBatch]) -> None:
    """Publish trade batches on the symbol's ``md.trade`` subject, in order, then a book."""
    subject = bus.subjects.md_trade("binance", SYM)
    for b in sent:
        await bus.js.publish(subject, encode(b))
    await bus.js.publish(bus.subjects.md_depth("binance", SYM), encode(book()))


async def books_reach(bus, n: int) -> None:
    """Wait until the AGG stream holds at least ``n`` books of the symbol."""
    out = bus.subjects.agg_book("binance", SYM)

    async def enough() -> bool:
        return await subject_count(bus, "AGG", out) >= n

    await wait_for(enough, within_s=30)

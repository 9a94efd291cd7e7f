"""Well-formed messages carrying bad values (issue 8): each is a dead letter at the first service
that reads it, on its first delivery, with a reason naming the field, and nothing derived from it
reaches a later stage; the good messages around it still flow and still move the profile.

Bad payloads are encoded as plain mappings (``raw``): the message types refuse to be built with
such values, so a test, like a hostile producer, has to bypass them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request

import msgspec
import numpy as np
import redis.asyncio as aioredis

from depthflow.common.messages import DeadLetter, TradeProfile, f64, f64_bytes, i64_bytes
from depthflow.ctl.stack import ServiceStack
from tests.conftest import read_all, subject_count, wait_for
from tests.integration.test_dead_letters import SYM, book, depth, trades, zones

OTHER = "ETHFDUSD"  # bad messages for peaks and ai-fusion travel on this symbol
NAN, INF = float("nan"), float("inf")
YEAR_NS = 365 * 24 * 3600 * 10**9


def raw(msg: msgspec.Struct, **over) -> bytes:
    return msgspec.msgpack.encode({"type": type(msg).__name__, **msgspec.structs.asdict(msg), **over})


def good_depth() -> bytes:
    return msgspec.msgpack.encode(depth())


def book_at_60002() -> bytes:
    """A book where the trades below are (mid 60,002, their median): the aggregator publishes its
    changed profile with the next book, and this one leaves the reference price as it was."""
    return raw(depth(), bid_px=f64_bytes([60_001.0]), bid_qty=f64_bytes([1.0]), ask_px=f64_bytes([60_003.0]),
               ask_qty=f64_bytes([1.0]), known_low=60_001.0, known_high=60_003.0)


async def dead_letters(bus, service: str, n: int) -> list[DeadLetter]:
    """The service's dead letters, once there are ``n``."""
    subject = bus.subjects.dlq(service)

    async def enough() -> bool:
        return await subject_count(bus, "DLQ", subject) >= n

    await wait_for(enough, within_s=60)
    letters = [m for _, m in await read_all(bus, "DLQ", subject, DeadLetter)]
    assert len(letters) == n, [d.reason for d in letters]
    return letters


def retries(stack: ServiceStack) -> dict[str, float]:
    """Each service's count of inputs handed back for a retry (from its /metrics)."""
    out = {}
    for p in stack.procs:
        with urllib.request.urlopen(f"http://127.0.0.1:{p.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out[p.name] = sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if "_messages_total{" in line and 'outcome="retry"' in line
        )
    return out


async def test_bad_values_at_every_stage_are_dead_letters_with_nothing_downstream(stack, bus):
    s = await stack("aggregator", "peaks", "ai-fusion")
    subj = bus.subjects
    nan_book = raw(depth(), bid_qty=f64_bytes([1.0, NAN]))
    wide_book = raw(depth(), bid_px=f64_bytes([100.5, 1e-3]))  # a level 1e5 times below the mid
    probex = msgspec.msgpack.encode(msgspec.structs.replace(depth(), symbol="PROBEX"))
    for payload in (nan_book, wide_book):
        await bus.js.publish(subj.md_depth("binance", SYM), payload)
    await bus.js.publish(subj.md_depth("binance", "PROBEX"), probex)
    other = {"symbol": OTHER}
    await bus.js.publish(subj.agg_book("binance", OTHER), raw(book(), **other, bid_qty=f64_bytes([NAN, 1])))
    await bus.js.publish(subj.agg_book("binance", OTHER), raw(book(), **other, ask_qty=f64_bytes([-3.0])))
    await bus.js.publish(subj.peaks_zones("binance", OTHER), raw(zones(), **other, trade_buy_volume=NAN))
    await bus.js.publish(subj.peaks_zones("binance", OTHER), raw(zones(), **other, bid_depth_near=INF))
    await bus.js.publish(subj.md_depth("binance", SYM), good_depth())

    async def good_one_went_through() -> bool:
        return await subject_count(bus, "SIGNALS", subj.signal_fused("binance", SYM)) == 1

    await wait_for(good_one_went_through, within_s=60)
    aggregator = {d.reason for d in await dead_letters(bus, "aggregator", 3)}
    peaks = {d.reason for d in await dead_letters(bus, "peaks", 2)}
    fusion = {d.reason for d in await dead_letters(bus, "ai-fusion", 2)}
    assert any("DepthSnapshot.bid_qty[1] is nan" in r for r in aggregator), aggregator
    far = "book level 0.001 is more than 1000x below the book's mid"
    assert any(far in r for r in aggregator), aggregator
    assert any("symbol 'PROBEX' is not configured" in r for r in aggregator), aggregator
    assert any("BookBuckets.bid_qty[0] is nan" in r for r in peaks), peaks
    assert any("BookBuckets.ask_qty[0] is -3.0" in r for r in peaks), peaks
    assert any("ZonesDetected.trade_buy_volume is nan" in r for r in fusion), fusion
    assert any("ZonesDetected.bid_depth_near is inf" in r for r in fusion), fusion
    # nothing derived from a bad input went on: one output per stage, the good book's
    assert await subject_count(bus, "AGG", subj.agg_book("binance", SYM)) == 1
    assert await subject_count(bus, "AGG", subj.agg_book("binance", "PROBEX")) == 0
    assert await subject_count(bus, "PEAKS", subj.peaks_zones("binance", SYM)) == 1
    assert await subject_count(bus, "PEAKS", subj.peaks_zones("binance", "PROBEX")) == 0
    assert await subject_count(bus, "SIGNALS", subj.signal_fused()) == 1
    # dead letters on their first delivery: no input was ever handed back for a retry
    assert retries(s) == {"aggregator": 0.0, "peaks": 0.0, "ai-fusion": 0.0}


def batch(ids: list[int], px: list[float], ts: list[int] | None = None, qty: list[float] | None = None):
    """A trade batch as ``trades()`` builds it, with these ids, prices, times and quantities."""
    now = time.time_ns()
    n = len(ids)
    return msgspec.structs.replace(
        trades(), first_trade_id=min(ids), last_trade_id=max(ids), ids=i64_bytes(ids), px=f64_bytes(px),
        qty=f64_bytes(qty or [1.0] * n), ts=i64_bytes(ts or [now] * n), buyer_maker=f64_bytes([0.0] * n),
    )


async def test_bad_trades_are_dead_letters_and_the_good_batches_still_move_the_profile(stack, bus):
    s = await stack("aggregator")
    subject = bus.subjects.md_trade("binance", SYM)
    now = time.time_ns()
    px = [60_000.0, 60_001.0, 60_002.0, 60_003.0, 60_004.0]
    good = batch([1, 2, 3, 4, 5], px)
    five_and_a_nan = batch([6, 7, 8, 9, 10, 11], [*px, 60_000.0])
    bad = [
        raw(five_and_a_nan, qty=f64_bytes([1.0] * 5 + [NAN])),  # 5 good trades and a NaN
        raw(good, ids=i64_bytes([12, 13, 14, 15, 16]), px=f64_bytes([-5.0, *px[1:]])),
        raw(good, ids=i64_bytes([12, 13, 14, 15, 16]), qty=f64_bytes([1, 1, -1e6, 1, 1])),
        raw(good, ids=i64_bytes([12, 13, 14, 15, 16]), ts=i64_bytes([now, now, now, now, 0])),
        msgspec.msgpack.encode(batch([12, 13], [60_000.0, 60_000.0], ts=[now, now + YEAR_NS])),
        msgspec.msgpack.encode(batch([12, 13], [60_000.0, 10.0])),  # the 10-and-3e6 pair ...
        msgspec.msgpack.encode(batch([12, 13], [60_000.0, 3e6])),  # ... that cost 183 MB
    ]
    books = bus.subjects.md_depth("binance", SYM)
    await bus.js.publish(subject, msgspec.msgpack.encode(good))
    await bus.js.publish(books, book_at_60002())
    for payload in bad:
        await bus.js.publish(subject, payload)
    resent = batch([6, 7, 8, 9, 10], px)  # the good trades of the NaN batch, sent again
    await bus.js.publish(subject, msgspec.msgpack.encode(resent))
    await bus.js.publish(books, book_at_60002())

    letters = await dead_letters(bus, "aggregator", len(bad))
    reasons = [d.reason for d in sorted(letters, key=lambda d: d.stream_seq)]
    expected = [
        ["TradeBatch.qty[5] is nan"], ["TradeBatch.px[0] is -5.0"], ["TradeBatch.qty[2] is -1000000.0"],
        ["TradeBatch.ts[4] is 0"], ["TradeBatch.ts[1] is", "s in the future (bound 10s)"],
        ["trade price 10.0 is more than 1.5x below the reference price 60002.0"],
        ["trade price 3000000.0 is more than 1.5x above"],
    ]
    for reason, words in zip(reasons, expected, strict=True):
        assert all(w in reason for w in words), reasons
    out = bus.subjects.agg_profile("binance", SYM)

    async def both() -> bool:
        return await subject_count(bus, "AGG", out) == 2

    await wait_for(both, within_s=30)
    profiles = [m for _, m in await read_all(bus, "AGG", out, TradeProfile)]
    assert [p.trades_in_window for p in profiles] == [5, 10]
    last = profiles[-1]
    assert f64(last.px).tolist() == [60_000.0, 60_001.0, 60_002.0, 60_003.0, 60_004.0]
    assert np.array_equal(f64(last.buy_qty), np.full(5, 2.0))
    assert retries(s) == {"aggregator": 0.0}



async def test_a_restarted_aggregator_replays_past_its_dead_letters(stack, bus, isolated):
    """On restart the runtime re-applies the stream after the checkpoint: an input refused the
    first time (by the handler, or by admission) is refused again, never applied, and never
    stops the start-up."""
    first = await stack("aggregator", DEPTHFLOW_AGGREGATOR_CHECKPOINT_INTERVAL_S="3600")
    subject = bus.subjects.md_trade("binance", SYM)
    await bus.js.publish(subject, msgspec.msgpack.encode(batch([1, 2], [60_000.0, 60_001.0])))
    await bus.js.publish(subject, msgspec.msgpack.encode(batch([3, 4], [60_000.0, 10.0])))  # handler refuses
    probex = msgspec.structs.replace(batch([5], [60_000.0]), symbol="PROBEX")  # admission refuses
    await bus.js.publish(bus.subjects.md_trade("binance", "PROBEX"), msgspec.msgpack.encode(probex))
    await bus.js.publish(subject, msgspec.msgpack.encode(batch([6], [60_002.0])))
    books = bus.subjects.md_depth("binance", SYM)
    await bus.js.publish(books, book_at_60002())  # the profile goes out with the book
    await dead_letters(bus, "aggregator", 2)
    out = bus.subjects.agg_profile("binance", SYM)

    async def profiles(n: int) -> bool:
        return await subject_count(bus, "AGG", out) == n

    await wait_for(lambda: profiles(1), within_s=30)
    os.kill(first.procs[0].pid, signal.SIGKILL)  # a crash: no checkpoint saved
    first.procs.clear()
    second = await stack("aggregator")
    await bus.js.publish(subject, msgspec.msgpack.encode(batch([7], [60_003.0])))
    await bus.js.publish(books, book_at_60002())
    await wait_for(lambda: profiles(2), within_s=30)
    last = [m for _, m in await read_all(bus, "AGG", out, TradeProfile)][-1]
    assert last.trades_in_window == 4  # 2 + 1 replayed, 1 new; the refused batch not applied
    await asyncio.to_thread(second.stop)  # drains and saves a checkpoint per symbol it holds
    r = aioredis.from_url(isolated.urls.redis)
    try:
        keys = [k async for k in r.scan_iter(match=f"{isolated.prefix}:ckpt:*")]
    finally:
        await r.aclose()
    assert keys
    assert not [k for k in keys if k.endswith(b":PROBEX")], keys

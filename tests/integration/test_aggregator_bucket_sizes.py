"""On a real bus: a sub-dollar symbol gets buckets of its own size, kept across a restart, and
each changed trade profile is on the AGG stream just before the book it belongs to."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from depthflow.common.codec import encode
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    TradeBatch,
    TradeProfile,
    f64,
    f64_bytes,
    i64_bytes,
)
from tests.conftest import read_all, subject_count, wait_for

SYM = "ALTBTC"
ENV = {"DEPTHFLOW_SYMBOLS": SYM}


def book(mid: float, tick: float, at_ns: int) -> DepthSnapshot:
    """100 levels a side, one tick apart: 1e-6 of price either way at tick 1e-8 and price 0.006."""
    steps = np.arange(1, 101)
    bids, asks = np.round(mid / tick - steps) * tick, np.round(mid / tick + steps) * tick
    return DepthSnapshot(
        symbol=SYM, venue="binance", ts_event=at_ns, ts_init=at_ns, origin_ts=at_ns, last_update_id=at_ns,
        bid_px=f64_bytes(bids), bid_qty=f64_bytes(np.ones(100)), ask_px=f64_bytes(asks),
        ask_qty=f64_bytes(np.ones(100)), known_low=float(bids[-1]), known_high=float(asks[-1]),
        tick_size=tick,
    )


def trades(prices: list[float], first_id: int, tick: float, at_ns: int) -> TradeBatch:
    n = len(prices)
    return TradeBatch(
        symbol=SYM, venue="binance", ts_event=at_ns, ts_init=at_ns, origin_ts=at_ns, first_trade_id=first_id,
        last_trade_id=first_id + n - 1, ids=i64_bytes(np.arange(first_id, first_id + n)),
        px=f64_bytes(np.array(prices)), qty=f64_bytes(np.ones(n)), ts=i64_bytes(np.full(n, at_ns, np.int64)),
        buyer_maker=f64_bytes(np.zeros(n)), tick_size=tick,
    )


async def publish(bus, msgs: list[DepthSnapshot | TradeBatch]) -> None:
    s = bus.subjects
    for m in msgs:
        subject = s.md_depth("binance", SYM) if isinstance(m, DepthSnapshot) else s.md_trade("binance", SYM)
        await bus.js.publish(subject, encode(m))


async def agg_in_stream_order(bus, books: int) -> list[BookBuckets | TradeProfile]:
    """Every AGG message of the symbol in stream order, once ``books`` books are there."""
    s = bus.subjects

    async def enough() -> bool:
        return await subject_count(bus, "AGG", s.agg_book("binance", SYM)) >= books

    await wait_for(enough, within_s=30)
    both = [*await read_all(bus, "AGG", s.agg_book("binance", SYM), BookBuckets),
            *await read_all(bus, "AGG", s.agg_profile("binance", SYM), TradeProfile)]
    return [m for _, m in sorted(both, key=lambda pair: pair[0].metadata.sequence.stream)]


def shape(msgs: list[BookBuckets | TradeProfile]) -> str:
    return "".join("P" if isinstance(m, TradeProfile) else "B" for m in msgs)


async def test_a_sub_dollar_symbol_buckets_finely_keeps_its_size_and_profiles_precede_books(stack, bus):
    now = time.time_ns() - 60_000_000_000
    first = await stack("aggregator", **ENV)
    await publish(bus, [
        trades([0.006, 0.00600003], 1, 1e-8, now), book(0.006, 1e-8, now + 1),
        book(0.006, 1e-8, now + 2),  # no trade since: the profile is not published again
        trades([0.00599991], 3, 1e-8, now + 3), book(0.006, 1e-8, now + 4),
    ])
    out = await agg_in_stream_order(bus, books=3)
    assert shape(out) == "PBBPB"
    for profile, its_book in ((out[0], out[1]), (out[3], out[4])):
        assert profile.origin_ts == its_book.origin_ts  # the profile as of that book
    assert [p.trades_in_window for p in out if isinstance(p, TradeProfile)] == [2, 3]
    b = out[1]
    assert isinstance(b, BookBuckets)
    # 1.6e-5 of 0.006 is 9.6e-8: ten ticks of 1e-8; 100 ticks a side fill 10 buckets, not bucket 0
    # (the asks' 0.006001 opens an 11th)
    assert (b.bucket_size, b.tick_size) == (1e-7, 1e-8)
    assert (f64(b.bid_px).size, f64(b.ask_px).size) == (10, 11)
    assert {p.bucket_size for p in out} == {1e-7}

    codes = await asyncio.to_thread(first.stop)  # drains and checkpoints
    assert codes == {"aggregator": 0}
    await stack("aggregator", **ENV)
    # a coarser tick and a new price now would choose 1e-6; the symbol keeps its size
    await publish(bus, [
        book(0.0061, 1e-6, now + 5), trades([0.0061], 4, 1e-6, now + 6), book(0.0061, 1e-6, now + 7),
    ])
    out = await agg_in_stream_order(bus, books=5)
    assert shape(out) == "PBBPB" + "BPB"
    assert {(m.bucket_size, m.tick_size) for m in out[5:] if isinstance(m, BookBuckets)} == {(1e-7, 1e-8)}
    assert out[6].trades_in_window == 4

"""Malformed input on every input subject goes to dlq.<service> with a reason; the service
keeps going and still handles the next good message."""

from __future__ import annotations

import time

import msgspec
import pytest

from depthflow.common.codec import encode
from depthflow.common.messages import (
    BookBuckets,
    DeadLetter,
    DepthSnapshot,
    OrderApproved,
    OrderRejected,
    SignalFused,
    TradeBatch,
    TradeProfile,
    ZonesDetected,
    f64_bytes,
    i64_bytes,
)
from depthflow.ctl.stack import readyz
from tests.conftest import read_all, subject_count, wait_for

SYM = "BTCFDUSD"


def base() -> dict:
    now = time.time_ns()
    return {"symbol": SYM, "venue": "binance", "ts_event": now, "ts_init": now, "origin_ts": now}


def depth() -> DepthSnapshot:
    return DepthSnapshot(
        **base(), last_update_id=1, bid_px=f64_bytes([100.5, 99.2]), bid_qty=f64_bytes([1, 2]),
        ask_px=f64_bytes([101.1]), ask_qty=f64_bytes([3]), known_low=99.2, known_high=101.1,
    )


def trades() -> TradeBatch:
    return TradeBatch(
        **base(), first_trade_id=1, last_trade_id=2, ids=i64_bytes([1, 2]), px=f64_bytes([100.5, 101.0]),
        qty=f64_bytes([1, 1]), ts=i64_bytes([time.time_ns()] * 2), buyer_maker=f64_bytes([0, 1]),
    )


def book() -> BookBuckets:
    return BookBuckets(
        **base(), bucket_size=1.0, bid_px=f64_bytes([99, 100]), bid_qty=f64_bytes([2, 1]),
        ask_px=f64_bytes([101]), ask_qty=f64_bytes([3]), bid_volume_in=3, bid_volume_out=3,
        ask_volume_in=3, ask_volume_out=3, levels_in=3, levels_out=3, best_bid=100.5,
        best_ask=101.1, known_low=99.2, known_high=101.1,
    )


def zones() -> ZonesDetected:
    return ZonesDetected(
        **base(), mid=100.8, best_bid=100.5, best_ask=101.1, poc=100, value_area_low=99,
        value_area_high=101, support=[], resistance=[], bid_depth_near=1, ask_depth_near=1,
        trade_buy_volume=0, trade_sell_volume=0,
    )


def flat_signal() -> SignalFused:
    return SignalFused(
        **base(), signal_id="PEAKS-1", score=0.0, confidence=0.0, side="FLAT", mode="LEARNING",
        components={}, mid=100.8, best_bid=100.5, best_ask=101.1,
    )


def corrupt(msg: msgspec.Struct, **over) -> bytes:
    fields = {"type": type(msg).__name__, **msgspec.structs.asdict(msg), **over}
    return msgspec.msgpack.encode(fields)


# service -> (stream of input, [(subject builder, good message, output stream, output subject)])
CASES = {
    "aggregator": [
        ("md_depth", depth, "AGG", "agg_book"),
        ("md_trade", trades, "AGG", "agg_profile"),
    ],
    "peaks": [("agg_book", book, "PEAKS", "peaks_zones")],
    "ai-fusion": [("peaks_zones", zones, "SIGNALS", "signal_fused")],
    "risk": [("signal_fused", flat_signal, "RISK", "risk_order")],
}


@pytest.mark.parametrize("service", list(CASES))
async def test_malformed_input_is_dead_lettered_and_service_keeps_going(service, stack, bus):
    s = await stack(service)
    subj = bus.subjects
    sent = 0
    for builder, good, out_stream, out_subject in CASES[service]:
        subject = getattr(subj, builder)("binance", SYM)
        bad_payloads = [
            b"\xc1 not msgpack",  # undecodable
            encode(good()).replace(b"binance", b"binanc\xff", 1),  # invalid utf-8 inside
            corrupt(good(), ts_event="yesterday"),  # wrong field type
            corrupt(good(), v=99),  # a schema version from the future
            encode(book() if builder != "agg_book" else depth()),  # wrong message type
        ]
        for payload in bad_payloads:
            await bus.js.publish(subject, payload)
        sent += len(bad_payloads)
        await bus.js.publish(subject, encode(good()))
        if builder == "md_trade":  # the aggregator publishes a changed profile with the next book
            await bus.js.publish(subj.md_depth("binance", SYM), encode(depth()))
        out = getattr(subj, out_subject)("binance", SYM)

        async def produced(out_stream=out_stream, out=out) -> bool:
            return await subject_count(bus, out_stream, out) >= 1

        await wait_for(produced, within_s=30)
    await wait_for(lambda: _count_dlq(bus, service, sent), within_s=30)
    letters = [m for _, m in await read_all(bus, "DLQ", subj.dlq(service), DeadLetter)]
    assert len(letters) == sent
    reasons = " | ".join(sorted(d.reason for d in letters))
    assert "malformed payload" in reasons
    assert "schema version 99" in reasons
    assert "Expected `int`, got `str`" in reasons
    assert all(d.payload and d.stream_seq > 0 and d.service == service for d in letters)
    assert readyz(s.procs[0].port)


async def _count_dlq(bus, service, n) -> bool:
    return await subject_count(bus, "DLQ", bus.subjects.dlq(service)) >= n


async def test_risk_answers_a_flat_signal_with_one_rejection(stack, bus):
    await stack("risk")
    await bus.js.publish(bus.subjects.signal_fused("binance", SYM), encode(flat_signal()))
    subject = bus.subjects.risk_order("binance", SYM)

    async def one() -> bool:
        return await subject_count(bus, "RISK", subject) == 1

    await wait_for(one, within_s=30)
    [(_, decision)] = await read_all(bus, "RISK", subject, OrderApproved | OrderRejected)
    assert isinstance(decision, OrderRejected)
    assert decision.reason == "signal_flat"


async def test_aggregator_profile_counts_trades_once(stack, bus):
    """A replayed duplicate changes nothing: the book after it carries no new profile."""
    await stack("aggregator")
    subject, books = bus.subjects.md_trade("binance", SYM), bus.subjects.md_depth("binance", SYM)
    batch = encode(trades())
    await bus.js.publish(subject, batch)
    await bus.js.publish(subject, batch)  # a replayed duplicate, distinct stream message
    await bus.js.publish(books, encode(depth()))
    await bus.js.publish(subject, batch)  # and once more after the book
    await bus.js.publish(books, encode(depth()))

    async def two() -> bool:
        return await subject_count(bus, "AGG", bus.subjects.agg_book("binance", SYM)) == 2

    await wait_for(two, within_s=30)
    out = bus.subjects.agg_profile("binance", SYM)
    profiles = [m for _, m in await read_all(bus, "AGG", out, TradeProfile)]
    assert [p.trades_in_window for p in profiles] == [2]

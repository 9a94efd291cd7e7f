"""Risk on real NATS, Postgres and Redis trusts nothing upstream: a forged quote, a future
stamp, a foreign venue and an unknown symbol each get one rejection with its reason code and no
fill; an approved order fills at risk's own mark; a held position without a fresh mark blocks
every decision; a restarted risk has its marks back from the Redis mirror."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from depthflow.common.codec import encode
from depthflow.common.messages import (
    BookBuckets,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    SignalFused,
    f64_bytes,
)
from tests.conftest import read_all, subject_count, wait_for

SYM = "BTCFDUSD"
BID, ASK = 60_000.0, 60_001.0
# generous ages: this test is about what risk decides, not about a loaded machine's clock
ENV = {"DEPTHFLOW_RISK_LIMITS__MAX_SIGNAL_AGE_S": "60", "DEPTHFLOW_RISK_LIMITS__MAX_MARK_AGE_S": "60"}


def header(symbol: str = SYM, venue: str = "binance", ahead_s: float = 0.0) -> dict:
    now = time.time_ns() + int(ahead_s * 1e9)
    return {"symbol": symbol, "venue": venue, "ts_event": now, "ts_init": now, "origin_ts": now}


def book(symbol: str = SYM, bid: float = BID, ask: float = ASK) -> BookBuckets:
    return BookBuckets(
        **header(symbol), bucket_size=1.0, bid_px=f64_bytes([bid]), bid_qty=f64_bytes([1.0]),
        ask_px=f64_bytes([ask]), ask_qty=f64_bytes([1.0]), bid_volume_in=1.0, bid_volume_out=1.0,
        ask_volume_in=1.0, ask_volume_out=1.0, levels_in=2, levels_out=2, best_bid=bid,
        best_ask=ask, known_low=bid, known_high=ask,
    )


def signal(signal_id: str, bid: float = BID + 0.25, ask: float = ASK - 0.25, side: str = "BUY",
           **head) -> SignalFused:
    return SignalFused(
        **header(**head), signal_id=signal_id, score=0.8, confidence=0.8, side=side,
        mode="TRADING", components={}, mid=(bid + ask) / 2, best_bid=bid, best_ask=ask,
    )


async def publish_marks(bus, *books: BookBuckets) -> None:
    """Publish books and wait until risk has consumed them (its AGG consumer acked them)."""
    last = 0
    for b in books:
        ack = await bus.js.publish(bus.subjects.agg_book(b.venue, b.symbol), encode(b))
        last = ack.seq

    async def consumed() -> bool:
        info = await bus.js.consumer_info(bus.subjects.stream("AGG"), "risk-stable")
        return info.ack_floor.stream_seq >= last

    await wait_for(consumed, within_s=30)


async def publish_signals(bus, *signals: SignalFused) -> None:
    for s in signals:
        await bus.js.publish(bus.subjects.signal_fused(s.venue, s.symbol), encode(s))


async def decisions(bus, n: int) -> dict[str, OrderApproved | OrderRejected]:
    """Wait for ``n`` decisions; return them by signal id (one each, or the test fails)."""
    subject = bus.subjects.risk_order()

    async def arrived() -> bool:
        return await subject_count(bus, "RISK", subject) >= n

    await wait_for(arrived, within_s=60)
    msgs = [m for _, m in await read_all(bus, "RISK", subject, OrderApproved | OrderRejected)]
    by_id = {m.signal_id: m for m in msgs}
    assert len(by_id) == len(msgs) == n, [(m.signal_id, type(m).__name__) for m in msgs]
    return by_id


async def test_untrusted_signals_are_rejected_with_reason_codes_and_fills_use_the_mark(
    stack, bus, isolated
):
    await stack("risk", **ENV)
    await publish_marks(bus, book())
    await publish_signals(
        bus,
        signal("forged", bid=1.00, ask=1.01),  # the quote that once bought 1,980 BTC at $1.01
        signal("future", ahead_s=3600),
        signal("evil", venue="evil"),
        signal("probex", symbol="PROBEX"),
        signal("good"),  # quotes 60000.25/60000.75, inside the band: fills at the mark's ask
    )
    by_id = await decisions(bus, 5)
    reasons = {k: getattr(v, "reason", "approved") for k, v in by_id.items()}
    assert reasons == {
        "forged": "quote_off_mark", "future": "future_timestamp", "evil": "unknown_venue",
        "probex": "unknown_symbol", "good": "approved",
    }
    [(_, fill)] = await read_all(bus, "RISK", bus.subjects.risk_fill(), OrderFilled)
    assert fill.client_order_id == by_id["good"].client_order_id
    assert fill.price == ASK  # risk's own touch, not the signal's 60000.75
    assert await subject_count(bus, "DLQ", bus.subjects.dlq()) == 0

    conn = await asyncpg.connect(isolated.urls.postgres)
    try:
        rows = await conn.fetch("SELECT signal_id, reason FROM risk.decisions")
        prices = await conn.fetch("SELECT price FROM risk.fills")
    finally:
        await conn.close()
    assert {r["signal_id"]: r["reason"] for r in rows} == reasons
    assert [float(r["price"]) for r in prices] == [ASK]


async def test_a_held_position_without_a_fresh_mark_blocks_every_decision(stack, bus, isolated):
    await stack("risk", **ENV)
    conn = await asyncpg.connect(isolated.urls.postgres)
    try:  # an ETH position risk has no mark for (the table exists: risk migrated at start-up)
        await conn.execute(
            "INSERT INTO risk.positions (venue, symbol, qty, avg_price)"
            " VALUES ('binance', 'ETHFDUSD', 2, 3000)"
        )
    finally:
        await conn.close()
    await publish_marks(bus, book())  # BTC is marked, ETH is not
    await publish_signals(bus, signal("blocked"))
    first = await decisions(bus, 1)
    assert first["blocked"].reason == "position_unmarked"
    assert "ETHFDUSD" in first["blocked"].detail

    await publish_marks(bus, book("ETHFDUSD", 3000.0, 3000.1))
    await publish_signals(bus, signal("unblocked"))
    both = await decisions(bus, 2)
    assert isinstance(both["unblocked"], OrderApproved)
    assert both["unblocked"].price == ASK


async def test_a_restarted_risk_has_its_marks_from_the_redis_mirror(stack, bus):
    first = await stack("risk", **ENV)
    await publish_marks(bus, book())  # acked: a restarted risk is not sent this book again
    await asyncio.to_thread(first.stop)
    await stack("risk", **ENV)
    await publish_signals(bus, signal("after-restart"))
    decided = await decisions(bus, 1)
    assert isinstance(decided["after-restart"], OrderApproved)
    assert decided["after-restart"].price == ASK

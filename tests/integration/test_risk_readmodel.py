"""Risk's read model on real Postgres, over a ledger written by risk's own storage code: what the
operator summary shows (orders, fills, refused orders, actionable signals per symbol, equity) is
what the ledger holds, one venue at a time, and "nothing yet" before risk has migrated."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthflow.common.messages import Side, SignalFused, SignalSide
from depthflow.risk.readmodel import DecisionCounts, decision_counts, latest_equity
from depthflow.risk.storage import Filled, Ledger, Rejected

START = 100_000.0


def signal(signal_id: str, symbol: str, side: SignalSide = "BUY", venue: str = "binance") -> SignalFused:
    now = time.time_ns()
    return SignalFused(
        symbol=symbol, venue=venue, ts_event=now, ts_init=now, origin_ts=now, signal_id=signal_id,
        score=0.0 if side == "FLAT" else 0.5, confidence=0.0 if side == "FLAT" else 0.5,
        side=side, mode="TRADING", components={}, mid=0.006, best_bid=0.0059999, best_ask=0.0060001,
    )


def fill(signal_id: str, qty: float, equity_after: float, side: Side = "BUY") -> Filled:
    price = 0.0060001
    return Filled(
        detail="all checks passed", client_order_id=f"df-{signal_id}", side=side, qty=qty,
        price=price, fee=qty * price * 0.001, position_after=qty, cash_after=START - qty * price,
        equity_after=equity_after,
    )


async def reject(ledger: Ledger, s: SignalFused, rec: Rejected) -> None:
    async with ledger.pool.acquire() as conn, conn.transaction():
        await ledger.record_rejection(conn, s, rec)


async def approve(ledger: Ledger, s: SignalFused, rec: Filled) -> None:
    async with ledger.pool.acquire() as conn, conn.transaction():
        await ledger.record_fill(conn, s, rec, rec.price, START)


async def test_counts_and_equity_are_what_risks_own_storage_wrote(isolated):
    url = isolated.urls.postgres
    conn = await asyncpg.connect(url)
    try:
        assert await decision_counts(conn, "binance") == {}  # risk has not migrated yet
        assert await latest_equity(conn, "binance") is None
        ledger = await Ledger.open(url, "binance", START)
        other = await Ledger.open(url, "elsewhere", 5.0)
        try:
            assert await latest_equity(conn, "binance") == START  # nothing filled: the cash
            await reject(ledger, signal("f1", "ALTBTC", "FLAT"), Rejected("signal_flat", "no action"))
            await reject(ledger, signal("f2", "ALTBTC", "FLAT"), Rejected("signal_flat", "no action"))
            await reject(ledger, signal("r1", "ALTBTC", "SELL"), Rejected("no_position", "spot"))
            await approve(ledger, signal("a1", "ALTBTC"), fill("a1", 1000.0, 99_999.0))
            await approve(ledger, signal("a2", "BTCFDUSD"), fill("a2", 2000.0, 99_998.5))
            await ledger.record_kept(signal("k1", "BTCFDUSD"), Rejected("infrastructure_unavailable", "x"))
            await reject(other, signal("o1", "ALTBTC", venue="elsewhere"), Rejected("low_confidence", "x"))
            await approve(other, signal("o2", "ALTBTC", venue="elsewhere"), fill("o2", 1.0, 4.0))

            assert await decision_counts(conn, "binance") == {
                "ALTBTC": DecisionCounts(orders=1, fills=1, rejected=1, actionable=2),
                "BTCFDUSD": DecisionCounts(orders=1, fills=1, rejected=1, actionable=2),
            }
            assert await decision_counts(conn, "elsewhere") == {
                "ALTBTC": DecisionCounts(orders=1, fills=1, rejected=1, actionable=2),
            }
            assert await decision_counts(conn, "nowhere") == {}
            assert await latest_equity(conn, "binance") == 99_998.5  # the latest fill's, as a float
            assert await latest_equity(conn, "elsewhere") == 4.0
            assert await latest_equity(conn, "nowhere") is None
        finally:
            await ledger.close()
            await other.close()
    finally:
        await conn.close()


VENUES, SYMBOLS = ("binance", "elsewhere"), ("ALTBTC", "BTCFDUSD")
entries = st.lists(st.tuples(st.sampled_from(VENUES), st.sampled_from(SYMBOLS),
                             st.sampled_from(["flat", "refused", "kept", "filled"]),
                             st.sampled_from(["BUY", "SELL"])), max_size=10)


def test_counts_and_equity_match_a_tally_of_any_ledger(isolated):
    """Whatever mix of decisions risk's storage writes, the read model's counts are the tally of
    what was written, per venue and symbol, and the equity is the venue's latest fill's."""
    loop = asyncio.new_event_loop()
    url = isolated.urls.postgres
    ledgers = {v: loop.run_until_complete(Ledger.open(url, v, START)) for v in VENUES}
    conn = loop.run_until_complete(asyncpg.connect(url))

    async def write(batch: list[tuple[str, str, str, Side]]) -> None:
        await conn.execute("TRUNCATE risk.fills, risk.orders, risk.decisions, risk.equity, risk.positions")
        await conn.execute("UPDATE risk.account SET cash = $1", START)
        for i, (venue, symbol, kind, side) in enumerate(batch):
            ledger, sid = ledgers[venue], f"s{i}"
            if kind == "flat":
                await reject(ledger, signal(sid, symbol, "FLAT", venue), Rejected("signal_flat", "-"))
            elif kind == "refused":
                await reject(ledger, signal(sid, symbol, side, venue), Rejected("order_rate", "-"))
            elif kind == "kept":
                rec = Rejected("infrastructure_unavailable", "-")
                await ledger.record_kept(signal(sid, symbol, side, venue), rec)
            else:
                await approve(ledger, signal(sid, symbol, side, venue), fill(sid, 1.0, START - i, side))

    try:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(entries)
        def any_ledger(batch: list[tuple[str, str, str, Side]]) -> None:
            loop.run_until_complete(write(batch))
            for venue in VENUES:
                mine = [(sym, kind) for v, sym, kind, _ in batch if v == venue]
                kinds = {sym: Counter(k for s, k in mine if s == sym) for sym, _ in mine}
                assert loop.run_until_complete(decision_counts(conn, venue)) == {
                    sym: DecisionCounts(orders=n["filled"], fills=n["filled"],
                                        rejected=n["refused"] + n["kept"], actionable=n.total() - n["flat"])
                    for sym, n in kinds.items()
                }
                fills = [i for i, (v, _, kind, _) in enumerate(batch) if v == venue and kind == "filled"]
                expected = START - fills[-1] if fills else START
                assert loop.run_until_complete(latest_equity(conn, venue)) == expected

        any_ledger()
    finally:
        loop.run_until_complete(conn.close())
        for ledger in ledgers.values():
            loop.run_until_complete(ledger.close())
        loop.close()

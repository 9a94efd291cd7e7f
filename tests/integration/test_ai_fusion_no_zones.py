"""ai-fusion and risk as processes on real servers, fed a sub-dollar symbol (mid 0.006, bucket
1e-7): a book without zones leaves as a FLAT signal saying ``no_zones`` and risk does not count
it as a refused order; the same book with zones is actionable. Risk's read model reports both as
the operator summary shows them."""

from __future__ import annotations

import asyncpg

from depthflow.ai_fusion.fusion import NO_ZONES
from depthflow.common.messages import SignalFused
from depthflow.risk.readmodel import DecisionCounts, decision_counts
from tests.conftest import read_all, subject_count, wait_for
from tests.unit.ai_fusion.test_fusion_handler import RESISTANCE, SUPPORT, altcoin

SYM = "ALTBTC"


async def test_a_sub_dollar_book_without_zones_is_flat_all_the_way_to_the_ledger(stack, bus, isolated):
    await stack("ai-fusion", "risk", DEPTHFLOW_SYMBOLS=SYM)
    for payload in (altcoin(-1.0, [], []), altcoin(-1.0, [SUPPORT], [RESISTANCE])):
        await bus.js.publish(bus.subjects.peaks_zones("binance", SYM), payload)
    orders = bus.subjects.risk_order("binance", SYM)

    async def decided() -> bool:
        return await subject_count(bus, "RISK", orders) == 2

    await wait_for(decided, within_s=60)
    signals = [s for _, s in await read_all(bus, "SIGNALS", bus.subjects.signal_fused("binance", SYM),
                                            SignalFused)]
    assert [(s.side, s.mode) for s in signals] == [("FLAT", "LEARNING"), ("SELL", "TRADING")]
    assert signals[0].components[NO_ZONES] == 1.0
    conn = await asyncpg.connect(isolated.urls.postgres)
    try:
        reasons = dict(await conn.fetch("SELECT signal_id, reason FROM risk.decisions"))
        counts = await decision_counts(conn, "binance")
    finally:
        await conn.close()
    # the SELL is refused (risk has no mark of ALTBTC); the FLAT signal asked for nothing
    assert reasons[signals[0].signal_id] == "signal_flat"
    assert reasons[signals[1].signal_id] != "signal_flat"
    assert counts == {SYM: DecisionCounts(orders=0, fills=0, rejected=1, actionable=1)}

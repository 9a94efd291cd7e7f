"""The five services as separate processes on real servers: every generated snapshot gives
exactly one output per stage, the ledger matches the approved signals, and one trace spans
the whole path."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import asyncpg

from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    SignalFused,
    TradeProfile,
    ZonesDetected,
)
from depthflow.common.subjects import Subjects
from depthflow.ctl.summary import Snapshot, collect
from tests.conftest import read_all, subject_count, wait_for

SYMBOLS = ["BTCFDUSD", "ETHFDUSD"]
SNAPSHOTS = 40
STARTING_CASH = 100_000.0  # risk's defaults
FEE_RATE = 0.001

STAGES = [
    ("MD", "md_depth", DepthSnapshot),
    ("AGG", "agg_book", BookBuckets),
    ("PEAKS", "peaks_zones", ZonesDetected),
    ("SIGNALS", "signal_fused", SignalFused),
    ("RISK", "risk_order", OrderApproved | OrderRejected),
]


def trace_id(msg) -> str:
    return (msg.headers or {}).get("traceparent", "").split("-")[1]


async def test_every_snapshot_flows_once_through_every_stage(stack, bus, isolated):
    await stack(
        "aggregator", "peaks", "ai-fusion", "risk", "collector",
        DEPTHFLOW_SYMBOLS=",".join(SYMBOLS),
        DEPTHFLOW_COLLECTOR_MAX_SNAPSHOTS=str(SNAPSHOTS),
        DEPTHFLOW_COLLECTOR_SPEED="10",
        # low thresholds so that many signals are actionable and risk really trades
        DEPTHFLOW_AI_FUSION_ENTER_TRADING="0.05",
        DEPTHFLOW_AI_FUSION_EXIT_TRADING="0.02",
        DEPTHFLOW_AI_FUSION_ACTION_THRESHOLD="0.05",
        DEPTHFLOW_RISK_LIMITS__MIN_CONFIDENCE="0.05",
        DEPTHFLOW_RISK_LIMITS__MAX_SIGNAL_AGE_S="60",
        DEPTHFLOW_RISK_LIMITS__MAX_ORDERS_PER_MINUTE="1000",
    )
    s = bus.subjects

    async def decided() -> bool:
        n = await subject_count(bus, "RISK", s.risk_order())
        return n >= SNAPSHOTS * len(SYMBOLS)

    await wait_for(decided, within_s=180)

    summary = await collect(bus, isolated.urls.postgres, "binance")  # what depthflow status shows
    last_seen: dict[str, dict[str, object]] = {}
    for sym in SYMBOLS:
        by_stage = {}
        for stream, builder, type_ in STAGES:
            msgs = await read_all(bus, stream, getattr(s, builder)("binance", sym), type_)
            by_stage[builder] = msgs
            # exactly one output per snapshot: same count, and the same market events
            assert len(msgs) == SNAPSHOTS, (sym, builder, len(msgs))
        origins = [[m.origin_ts for _, m in by_stage[b]] for _, b, _ in STAGES]
        assert all(o == origins[0] for o in origins), sym
        # one trace per market event, from the collector to the risk decision
        first = {m.origin_ts: trace_id(raw) for raw, m in by_stage["md_depth"]}
        last = {m.origin_ts: trace_id(raw) for raw, m in by_stage["risk_order"]}
        assert first == last
        assert len(set(first.values())) == SNAPSHOTS
        # the profile goes out with a book when it changed (never more than one per book), as of it
        profiles = await read_all(bus, "AGG", s.agg_profile("binance", sym), TradeProfile)
        assert 0 < len(profiles) <= SNAPSHOTS
        assert {m.origin_ts for _, m in profiles} <= set(origins[0])
        last_seen[sym] = {b: by_stage[b][-1][1] for b in ("peaks_zones", "signal_fused")}

    decisions = [m for _, m in await read_all(bus, "RISK", s.risk_order(), OrderApproved | OrderRejected)]
    approved = {m.client_order_id: m for m in decisions if isinstance(m, OrderApproved)}
    fills = [m for _, m in await read_all(bus, "RISK", s.risk_fill(), OrderFilled)]
    signals = [m for _, m in await read_all(bus, "SIGNALS", s.signal_fused(), SignalFused)]
    assert approved, "no signal passed risk; the test would prove nothing"
    assert {f.client_order_id for f in fills} == set(approved)

    conn = await asyncpg.connect(isolated.urls.postgres)
    try:
        orders = await conn.fetch("SELECT client_order_id, signal_id, symbol, side, qty, price"
                                  " FROM risk.orders")
        n_decisions = await conn.fetchval("SELECT count(*) FROM risk.decisions")
        passed = await conn.fetch("SELECT signal_id FROM risk.decisions WHERE approved")
        n_fills = await conn.fetchval("SELECT count(*) FROM risk.fills")
        ledger = await conn.fetch(
            "SELECT o.symbol, o.side, f.qty, f.price, f.fee, f.position_after, f.cash_after"
            " FROM risk.fills f JOIN risk.orders o USING (client_order_id) ORDER BY f.filled_at")
        cash = await conn.fetchval("SELECT cash FROM risk.account")
        positions = dict(await conn.fetch("SELECT symbol, qty FROM risk.positions"))
    finally:
        await conn.close()
    assert n_decisions == len(signals) == SNAPSHOTS * len(SYMBOLS)
    assert {r["client_order_id"] for r in orders} == set(approved)
    assert {r["signal_id"] for r in orders} == {r["signal_id"] for r in passed}
    assert {r["signal_id"] for r in orders} == {a.signal_id for a in approved.values()}
    for r in orders:
        a = approved[r["client_order_id"]]
        assert (r["side"], float(r["qty"]), float(r["price"])) == (a.side, a.qty, a.price)
    assert n_fills == len(orders)
    assert_summary_counts_what_the_test_counted(summary, orders, last_seen)
    assert_ledger_adds_up(ledger, cash, positions)
    assert await subject_count(bus, "DLQ", s.dlq()) == 0


def assert_ledger_adds_up(fills, cash, positions) -> None:
    """Cash and positions recomputed from the fills alone, in the order they were booked: each
    fill moves cash by its notional and its fee (0.1 % of the notional), and its symbol's position
    by its quantity; the account and positions tables hold where the fills end. Floats in the
    order risk adds them, from the values as booked (the ledger keeps 18 decimals: numeric(38,18)
    rounds half away from zero), so the comparison is exact."""
    booked_cash = Decimal(repr(STARTING_CASH))
    booked_pos = dict.fromkeys(SYMBOLS, Decimal(0))
    for f in fills:
        qty, price, fee = float(f["qty"]), float(f["price"]), float(f["fee"])
        sign = 1.0 if f["side"] == "BUY" else -1.0
        assert f["fee"] == as_booked(qty * price * FEE_RATE)
        assert f["cash_after"] == as_booked(float(booked_cash) - sign * qty * price - fee)
        assert f["position_after"] == as_booked(float(booked_pos[f["symbol"]]) + sign * qty)
        assert f["position_after"] >= 0, "sold more than held"
        booked_cash, booked_pos[f["symbol"]] = f["cash_after"], f["position_after"]
    assert cash == booked_cash
    assert {k: v for k, v in positions.items() if v} == {k: v for k, v in booked_pos.items() if v}


def as_booked(x: float) -> Decimal:
    """A float as numeric(38, 18) stores it."""
    return Decimal(repr(x)).quantize(Decimal("1e-18"), rounding=ROUND_HALF_UP)


def assert_summary_counts_what_the_test_counted(summary: Snapshot, orders, last_seen) -> None:
    """``depthflow status``'s snapshot (taken once the pipeline was done) against the test's own
    reading of the streams and the ledger."""
    plain = Subjects("")
    for _, builder, _ in STAGES:
        stage = plain.parse(getattr(plain, builder)("binance", SYMBOLS[0])).stage
        assert summary.counts[stage] == dict.fromkeys(SYMBOLS, SNAPSHOTS), stage
    per_symbol = {sym: sum(r["symbol"] == sym for r in orders) for sym in SYMBOLS}
    assert summary.orders == per_symbol
    assert summary.fills == summary.orders
    assert summary.dead_letters == 0
    for sym in SYMBOLS:
        assert summary.zones[sym] == last_seen[sym]["peaks_zones"]
        assert summary.signals[sym] == last_seen[sym]["signal_fused"]

"""The five services as separate processes on real servers: every generated snapshot gives
exactly one output per stage, the ledger matches the approved signals, and one trace spans
the whole path."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact

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
    books: dict[str, list] = {}
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
        books[sym] = by_stage["agg_book"]

    decisions = [m for _, m in await read_all(bus, "RISK", s.risk_order(), OrderApproved | OrderRejected)]
    approved = {m.client_order_id: m for m in decisions if isinstance(m, OrderApproved)}
    filled = await read_all(bus, "RISK", s.risk_fill(), OrderFilled)
    fills = [m for _, m in filled]
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
            "SELECT f.client_order_id, o.symbol, o.side, f.qty, f.price, f.fee, f.position_after,"
            " f.cash_after, f.equity_after"
            " FROM risk.fills f JOIN risk.orders o USING (client_order_id) ORDER BY f.filled_at")
        equity_rows = await conn.fetch("SELECT equity, cash FROM risk.equity WHERE venue = 'binance'"
                                       " ORDER BY ts")
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
    assert_equity_adds_up(ledger, filled, equity_rows, books)
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


# Exact arithmetic for the equity oracle: the exact binary value of a float between 1e-6 and
# 1e6 has at most ~70 significant digits, the ledger's numerics 38, so 200 digits hold every
# product and sum here exactly; Inexact is trapped, so a rounding would raise, not pass.
EXACT = Context(prec=200, traps=[Inexact])
UNIT_ROUNDOFF = Decimal(2) ** -53  # a float operation's relative error is at most this


def assert_equity_adds_up(fills, filled, equity_rows, books) -> None:
    """Each fill's equity recomputed from the fills and the books the test read from AGG itself.

    The account's equity after a fill is its cash after the fill plus every position after the
    fill at the mid of that symbol's mark, a book aggregator published: ``equity_after = cash_after
    + sum_s position_after_s * (best_bid_s + best_ask_s) / 2``. Which book was risk's mark at the
    decision depends on timing, so the oracle asks only that *some* choice of published books
    explains every fill, with these constraints on the choice:

    - the fill's own symbol: a book whose touch on the fill's side is the fill's price (the
      paper broker fills a BUY at the mark's best ask, a SELL at its best bid);
    - a book stored in AGG before the fill was stored in RISK (same server clock; ``<=``, as
      the client reads the stamps to the microsecond): risk cannot mark at a book it has not read;
    - per symbol, marks never go back from one fill to the next (in stream order).

    The mark of a symbol held at no fill's end does not enter the sum and is only carried on.
    This shares nothing with risk's code: no ``value_account``, no ``_paper_fill``, and not risk's
    formula (``equity before - fee - side * qty * (price - mid)``); it is the account's identity
    in exact decimal arithmetic over the values as booked. The fills table, the ``OrderFilled``
    messages and the ``risk.equity`` rows must agree on each fill's equity.

    Tolerance: risk computes in floats (about ten operations: the products and sums of the
    valuation, the fee, the fill's cash and position), each with a relative error of at most
    2**-53 of a value no larger than the sum ``M`` of the magnitudes involved (cash, each
    position's value, the notional), then stores them at 18 decimals. 16 * 2**-53 * M (about
    3.6e-10 for M = 2e5) bounds that with room; the misses measured were at most 2e-11. Each
    wrong formula the mutations tried misses by far more: the fee (~2), the quantity times the
    half spread (1.7e-4 for BTC, 3e-3 for ETH here), the other symbol's position (~1e3).
    """
    messages = {m.client_order_id: (raw.metadata.timestamp, m) for raw, m in filled}
    assert [(r["equity"], r["cash"]) for r in equity_rows] == [
        (f["equity_after"], f["cash_after"]) for f in fills
    ], "risk.equity is not one row per fill, in the fills' order"
    touch = {"BUY": "best_ask", "SELL": "best_bid"}
    mids = {
        sym: [EXACT.divide(EXACT.add(Decimal(b.best_bid), Decimal(b.best_ask)), Decimal(2))
              for _, b in books[sym]]
        for sym in SYMBOLS
    }
    stored = {sym: [raw.metadata.timestamp for raw, _ in books[sym]] for sym in SYMBOLS}
    held = dict.fromkeys(SYMBOLS, Decimal(0))
    # the least marks (book indexes per symbol, -1: none yet) that explain every fill so far
    frontier: set[tuple[int, ...]] = {(-1,) * len(SYMBOLS)}
    both_held = 0
    for f in fills:
        at, msg = messages[f["client_order_id"]]
        assert (as_booked(msg.equity_after), as_booked(msg.cash_after), as_booked(msg.position_after)) \
            == (f["equity_after"], f["cash_after"], f["position_after"]), f["client_order_id"]
        held[f["symbol"]] = f["position_after"]
        both_held += all(held.values())
        choices: list[list[int] | None] = []
        for sym in SYMBOLS:
            readable = [i for i, ts in enumerate(stored[sym]) if ts <= at]
            if sym == f["symbol"]:
                side = touch[f["side"]]
                choices.append([i for i in readable
                                if as_booked(getattr(books[sym][i][1], side)) == f["price"]])
            else:
                choices.append(readable if held[sym] else None)  # None: not valued, carried on
        magnitude = abs(f["cash_after"]) + f["qty"] * f["price"] + abs(f["equity_after"])
        worst = 16 * UNIT_ROUNDOFF * (magnitude + sum(
            abs(held[sym]) * max(mids[sym], default=Decimal(0)) for sym in SYMBOLS))
        explained: set[tuple[int, ...]] = set()
        closest = None
        for pick in itertools.product(*[c if c is not None else [None] for c in choices]):
            value = f["cash_after"]
            for sym, i in zip(SYMBOLS, pick, strict=True):
                if i is not None and held[sym]:
                    value = EXACT.add(value, EXACT.multiply(held[sym], mids[sym][i]))
            miss = abs(value - f["equity_after"])
            closest = miss if closest is None else min(closest, miss)
            if miss > worst:
                continue
            for before in frontier:
                if all(i is None or i >= b for i, b in zip(pick, before, strict=True)):
                    explained.add(tuple(b if i is None else i
                                        for i, b in zip(pick, before, strict=True)))
        assert explained, (f"equity_after {f['equity_after']} of {dict(f)} is explained by no"
                           f" published books (closest miss {closest}, bound {worst})")
        frontier = {m for m in explained
                    if not any(o != m and all(a <= b for a, b in zip(o, m, strict=True))
                               for o in explained)}
    # the check of the other symbol's value is only as good as the fills made while both are held
    assert both_held, "no fill with both symbols held: the sum over symbols is not exercised"


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

"""Risk's ledger as others may read it: typed answers to the questions asked of it outside risk.

Why risk owns this and not its readers: the tables are risk's (``migrations/``), so a reader
elsewhere with its own SQL breaks silently when the schema changes. Here, a migration and the
queries that read it change in one package, and the integration test reads a ledger written by
risk's own storage code (tests/integration/test_risk_readmodel.py). Readers get msgspec structs
and plain floats, never rows or ``Decimal``.

Every function takes an open asyncpg connection (the caller owns it) and answers "nothing yet"
(an empty dict, ``None``) before risk has created its schema, so a summary taken while risk is
still starting needs no special case.
"""

from __future__ import annotations

from typing import Final

import asyncpg
import msgspec

from depthflow.common.messages import RejectReason

NOT_A_REFUSAL: Final[RejectReason] = "signal_flat"
"""A FLAT signal asks for nothing, so its rejection is not counted as a refused order."""


class DecisionCounts(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol's decisions on one venue."""

    orders: int  # orders placed: one per approved decision
    fills: int  # orders that filled (paper: every one, in the same transaction)
    rejected: int  # refused orders: rejections for any reason but ``signal_flat``
    actionable: int  # signals with side BUY or SELL, whatever was decided


async def _has(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def decision_counts(conn: asyncpg.Connection, venue: str) -> dict[str, DecisionCounts]:
    """Decision counts by symbol on ``venue``; symbols without a decision are absent."""
    if not await _has(conn, "risk.decisions"):
        return {}
    rows = await conn.fetch(
        "SELECT d.symbol, count(o.client_order_id) FILTER (WHERE d.approved) AS orders,"
        " count(f.client_order_id) AS fills,"
        " count(*) FILTER (WHERE NOT d.approved AND d.reason <> $2) AS rejected,"
        " count(*) FILTER (WHERE d.side <> 'FLAT') AS actionable"
        " FROM risk.decisions d LEFT JOIN risk.orders o USING (signal_id)"
        " LEFT JOIN risk.fills f USING (client_order_id) WHERE d.venue = $1 GROUP BY d.symbol",
        venue, NOT_A_REFUSAL,
    )
    return {
        r["symbol"]: DecisionCounts(
            orders=r["orders"], fills=r["fills"], rejected=r["rejected"], actionable=r["actionable"]
        )
        for r in rows
    }


async def latest_equity(conn: asyncpg.Connection, venue: str) -> float | None:
    """The equity after ``venue``'s latest fill, else its cash (nothing filled yet: the starting
    cash), else ``None`` (no account yet). Equity is recorded at fills only, so between fills
    this is the equity at the last one, not at today's marks."""
    if not await _has(conn, "risk.equity"):
        return None
    equity = await conn.fetchval(
        "SELECT equity FROM risk.equity WHERE venue = $1 ORDER BY ts DESC LIMIT 1", venue
    )
    if equity is None:
        equity = await conn.fetchval("SELECT cash FROM risk.account WHERE venue = $1", venue)
    return None if equity is None else float(equity)

"""The risk ledger in Postgres: decisions, orders, fills, positions, equity.

Why one transaction per decision, with the account row locked: the ledger must never show an
order without its fill, a fill without its position change, or two decisions for one signal.
A redelivered signal finds its decision already recorded and gets the same outputs back.

While Postgres is unreachable risk still answers every signal (``infrastructure_unavailable``);
those decisions are kept and written with :meth:`Ledger.record_kept` once :meth:`Ledger.probe`
sees Postgres again. The pool reconnects by itself: a connection the server dropped is replaced
on the next acquire.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import msgspec

from depthflow.common.messages import RejectReason, Side, SignalFused, TradingState
from depthflow.common.migrations import migrate

# What "storage is unreachable" looks like: refused or reset sockets, a server going down, a
# connection the pool has lost, or our own time bound. Anything else is a bug and is retried.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
)

_I64 = (-(2**63), 2**63 - 1)


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _i64(ts: int) -> int:
    # a forged timestamp beyond bigint must not turn a rejection into a failing insert
    return min(max(ts, _I64[0]), _I64[1])


@dataclass(frozen=True)
class Book:
    """Cash, high-water mark, day-start equity and positions of one venue's account."""

    cash: float
    high_water_mark: float
    day: dt.date
    day_start_equity: float
    positions: dict[str, float]


APPROVED = "approved"
"""``risk.decisions.reason`` of an approved decision (every other row holds a ``RejectReason``)."""


@dataclass(frozen=True)
class Rejected:
    """A rejection as stored: what the handler publishes (again, on a redelivery)."""

    reason: RejectReason
    detail: str


@dataclass(frozen=True)
class Filled:
    """An approved order and its paper fill as stored. Why two types and not one with an
    ``approved`` flag: a fill without a side, or a rejection with one, cannot be built."""

    detail: str
    client_order_id: str
    side: Side
    qty: float
    price: float
    fee: float
    position_after: float
    cash_after: float
    equity_after: float


Recorded = Rejected | Filled


class Ledger:
    """Postgres access for the risk service."""

    def __init__(self, pool: asyncpg.Pool, venue: str, starting_cash: float) -> None:
        self.pool = pool
        self.venue = venue
        self.starting_cash = starting_cash

    @classmethod
    async def open(cls, url: str, venue: str, starting_cash: float, timeout_s: float = 3.0) -> Ledger:
        # bounded connect and statements: an unreachable server is an answer, never a hang
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=4, timeout=timeout_s, command_timeout=timeout_s
        )
        async with pool.acquire() as conn:
            await migrate(conn, "risk", "depthflow.risk.migrations")
            await conn.execute(
                "INSERT INTO risk.account (venue, cash, high_water_mark, day, day_start_equity)"
                " VALUES ($1, $2, $2, (now() AT TIME ZONE 'UTC')::date, $2)"
                " ON CONFLICT (venue) DO NOTHING",
                venue,
                _dec(starting_cash),
            )
        return cls(pool, venue, starting_cash)

    async def close(self) -> None:
        await asyncio.wait_for(self.pool.close(), 5.0)

    async def probe(self, timeout_s: float) -> bool:
        """True if Postgres answers a query within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s), self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except STORAGE_ERRORS:
            return False
        return True

    async def record_kept(self, signal: SignalFused, rec: Rejected) -> None:
        """Record a rejection decided while the ledger was unreachable; a decision already
        recorded for the signal (one whose commit was lost on the way back) is kept."""
        async with self.pool.acquire() as conn:
            await self._decision(conn, signal, rec.reason, rec.detail, if_new=True)

    async def recorded(self, conn: asyncpg.Connection, signal_id: str) -> Recorded | None:
        row = await conn.fetchrow(
            "SELECT d.approved, d.reason, d.detail, o.client_order_id, o.side, f.qty, f.price,"
            " f.fee, f.position_after, f.cash_after, f.equity_after"
            " FROM risk.decisions d LEFT JOIN risk.orders o USING (signal_id)"
            " LEFT JOIN risk.fills f USING (client_order_id) WHERE d.signal_id = $1",
            signal_id,
        )
        if row is None:
            return None
        # the columns are text: a code outside the closed sets is a corrupt ledger, not a decision
        if not row["approved"]:
            return Rejected(msgspec.convert(row["reason"], RejectReason), row["detail"])
        return Filled(
            row["detail"], row["client_order_id"], msgspec.convert(row["side"], Side),
            float(row["qty"]), float(row["price"]), float(row["fee"]),
            float(row["position_after"]), float(row["cash_after"]), float(row["equity_after"]),
        )

    async def lock_book(self, conn: asyncpg.Connection) -> Book:
        """Lock and return the account (call inside a transaction); rolls the UTC day."""
        acc = await conn.fetchrow(
            "SELECT cash, high_water_mark, day, day_start_equity FROM risk.account"
            " WHERE venue = $1 FOR UPDATE",
            self.venue,
        )
        if acc is None:
            raise RuntimeError(f"no risk.account row for venue {self.venue}")
        rows = await conn.fetch(
            "SELECT symbol, qty FROM risk.positions WHERE venue = $1", self.venue
        )
        return Book(
            cash=float(acc["cash"]),
            high_water_mark=float(acc["high_water_mark"]),
            day=acc["day"],
            day_start_equity=float(acc["day_start_equity"]),
            positions={r["symbol"]: float(r["qty"]) for r in rows},
        )

    async def roll_day(self, conn: asyncpg.Connection, today: dt.date, equity: float) -> None:
        await conn.execute(
            "UPDATE risk.account SET day = $2, day_start_equity = $3, updated_at = now()"
            " WHERE venue = $1",
            self.venue, today, _dec(equity),
        )

    async def record_rejection(self, conn: asyncpg.Connection, signal: SignalFused, rec: Rejected) -> None:
        await self._decision(conn, signal, rec.reason, rec.detail)

    async def _decision(
        self, conn: asyncpg.Connection, s: SignalFused, reason: RejectReason | None, detail: str,
        if_new: bool = False,
    ) -> None:
        """One ``risk.decisions`` row: rejected with ``reason``, or approved when it is None."""
        await conn.execute(
            "INSERT INTO risk.decisions (signal_id, venue, symbol, approved, reason, detail, side,"
            " score, confidence, ts_signal, origin_ts) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
            + (" ON CONFLICT (signal_id) DO NOTHING" if if_new else ""),
            s.signal_id, s.venue, s.symbol, reason is None, reason or APPROVED, detail, s.side, s.score,
            s.confidence, _i64(s.ts_init), _i64(s.origin_ts),
        )

    async def record_fill(
        self,
        conn: asyncpg.Connection,
        signal: SignalFused,
        rec: Filled,
        avg_price: float,
        hwm: float,
    ) -> None:
        """Record decision, order, fill, position, cash, equity and high-water mark at once."""
        await self._decision(conn, signal, None, rec.detail)
        notional = rec.qty * rec.price
        await conn.execute(
            "INSERT INTO risk.orders (client_order_id, signal_id, venue, symbol, side, qty, price,"
            " notional, execution) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'paper')",
            rec.client_order_id, signal.signal_id, signal.venue, signal.symbol, rec.side,
            _dec(rec.qty), _dec(rec.price), _dec(notional),
        )
        await conn.execute(
            "INSERT INTO risk.fills (client_order_id, qty, price, fee, position_after, cash_after,"
            " equity_after) VALUES ($1,$2,$3,$4,$5,$6,$7)",
            rec.client_order_id, _dec(rec.qty), _dec(rec.price), _dec(rec.fee),
            _dec(rec.position_after), _dec(rec.cash_after), _dec(rec.equity_after),
        )
        await conn.execute(
            "INSERT INTO risk.positions (venue, symbol, qty, avg_price) VALUES ($1,$2,$3,$4)"
            " ON CONFLICT (venue, symbol) DO UPDATE SET qty = EXCLUDED.qty,"
            " avg_price = EXCLUDED.avg_price, updated_at = now()",
            signal.venue, signal.symbol, _dec(rec.position_after), _dec(avg_price),
        )
        await conn.execute(
            "UPDATE risk.account SET cash = $2, high_water_mark = $3, updated_at = now()"
            " WHERE venue = $1",
            self.venue, _dec(rec.cash_after), _dec(hwm),
        )
        await conn.execute(
            "INSERT INTO risk.equity (venue, equity, cash) VALUES ($1, $2, $3)",
            self.venue, _dec(rec.equity_after), _dec(rec.cash_after),
        )

    async def record_state(
        self, conn: asyncpg.Connection, state: TradingState, reason: str, equity: float
    ) -> None:
        await conn.execute(
            "INSERT INTO risk.state_changes (venue, state, reason, equity) VALUES ($1,$2,$3,$4)",
            self.venue, state, reason, _dec(equity),
        )

    async def avg_price(self, conn: asyncpg.Connection, symbol: str) -> float:
        v = await conn.fetchval(
            "SELECT avg_price FROM risk.positions WHERE venue = $1 AND symbol = $2",
            self.venue, symbol,
        )
        return float(v) if v is not None else 0.0

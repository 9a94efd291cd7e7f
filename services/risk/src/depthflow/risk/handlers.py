"""``signal.fused.*`` → ``risk.order.*`` (+ ``risk.fill.*``, ``risk.state.*``); ``agg.book.*`` → marks.

Every signal yields exactly one decision on ``risk.order.<venue>.<SYM>``: ``OrderApproved`` (then
an ``OrderFilled`` from the paper broker on ``risk.fill``) or ``OrderRejected`` with a reason code.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import asyncpg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from depthflow.common.bus import Bus
from depthflow.common.messages import (
    BookBuckets,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    SignalFused,
    TradingStateChanged,
    header_from,
)
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects
from depthflow.risk.checks import Account, assess
from depthflow.risk.config import RiskConfig
from depthflow.risk.hotstate import HotState
from depthflow.risk.storage import Ledger, Recorded

log = logging.getLogger("depthflow.risk")


class RiskHandlers:
    """Assess signals against the ledger and hot state; record and publish the outcome."""

    def __init__(
        self,
        cfg: RiskConfig,
        subjects: Subjects,
        ledger: Ledger,
        hot: HotState,
    ) -> None:
        self.cfg = cfg
        self.limits = cfg.limits.to_limits()
        self.subjects = subjects
        self.ledger = ledger
        self.hot = hot
        self.control: KeyValue | None = None  # bound at start, once the bus is connected

    async def bind(self, bus: Bus) -> None:
        """Open the ``control`` KV bucket that holds the trading state."""
        self.control = await bus.js.key_value(self.subjects.kv_bucket("control"))

    async def on_book_buckets(self, msg: BookBuckets, _: Delivery) -> list[Output]:
        if msg.best_bid > 0 and msg.best_ask > msg.best_bid:
            await self.hot.set_mark(msg.symbol, (msg.best_bid + msg.best_ask) / 2)
        return []

    async def _trading_state(self) -> str:
        assert self.control is not None
        try:
            entry = await self.control.get(Subjects.trading_state_key(self.cfg.runtime.venue))
        except KeyNotFoundError:
            return "UNKNOWN"
        return (entry.value or b"UNKNOWN").decode()

    async def on_signal_fused(self, signal: SignalFused, _: Delivery) -> list[Output]:
        async with self.ledger.pool.acquire() as conn, conn.transaction():
            done = await self.ledger.recorded(conn, signal.signal_id)
            if done is not None:  # redelivery: publish the same outcome again (deduplicated)
                return self._outputs(signal, done)
            book = await self.ledger.lock_book(conn)
            marks = await self.hot.marks()
            marks.setdefault(signal.symbol, signal.mid)
            equity = book.cash + sum(q * marks.get(s, 0.0) for s, q in book.positions.items())
            today = dt.datetime.now(dt.UTC).date()
            day_start = book.day_start_equity
            if today != book.day:
                await self.ledger.roll_day(conn, today, equity)
                day_start = equity
            account = Account(
                cash=book.cash,
                position=book.positions.get(signal.symbol, 0.0),
                equity=equity,
                high_water_mark=max(book.high_water_mark, equity),
                day_start_equity=day_start,
                orders_this_minute=await self.hot.orders_this_minute(),
                trading_state=await self._trading_state(),
            )
            decision = assess(signal, account, self.limits, time.time_ns())
            extra: list[Output] = []
            if not decision.approved:
                await self.ledger.record_rejection(conn, signal, decision.reason, decision.detail)
                if decision.halt:
                    extra = await self._halt(conn, signal, decision.detail, account)
                return self._outputs(signal, Recorded(False, decision.reason, decision.detail)) + extra
            rec = self._paper_fill(signal, decision.qty, decision.price, account, marks)
            avg = await self._avg_price(conn, signal, rec, account.position)
            await self.ledger.record_fill(
                conn, signal, rec, avg, max(account.high_water_mark, rec.equity_after)
            )
        await self.hot.count_order()
        return self._outputs(signal, rec)

    def _paper_fill(
        self, s: SignalFused, qty: float, price: float, account: Account, marks: dict[str, float]
    ) -> Recorded:
        # Paper broker: fills in full at the touch of the snapshot the signal came from.
        fee = qty * price * self.limits.fee_rate
        sign = 1.0 if s.side == "BUY" else -1.0
        cash_after = account.cash - sign * qty * price - fee
        position_after = account.position + sign * qty
        mark = marks.get(s.symbol, s.mid)
        equity_after = account.equity - fee - sign * qty * (price - mark)
        return Recorded(
            approved=True,
            reason="approved",
            detail="all checks passed",
            client_order_id=f"df-{s.signal_id}",
            side=s.side,
            qty=qty,
            price=price,
            fee=fee,
            position_after=position_after,
            cash_after=cash_after,
            equity_after=equity_after,
        )

    async def _avg_price(
        self, conn: asyncpg.Connection, s: SignalFused, rec: Recorded, before: float
    ) -> float:
        prev = await self.ledger.avg_price(conn, s.symbol)
        if rec.side == "SELL":
            return prev if rec.position_after > 0 else 0.0
        return (prev * before + rec.price * rec.qty) / rec.position_after

    async def _halt(
        self, conn: asyncpg.Connection, s: SignalFused, why: str, account: Account
    ) -> list[Output]:
        assert self.control is not None
        await self.control.put(Subjects.trading_state_key(s.venue), b"HALTED")
        await self.ledger.record_state(conn, "HALTED", why, account.equity)
        await self.hot.mirror_state("HALTED")
        log.error("kill switch: trading halted", extra={"reason": why})
        event = TradingStateChanged(
            symbol=s.symbol, venue=s.venue, ts_event=time.time_ns(), ts_init=time.time_ns(),
            origin_ts=s.origin_ts, state="HALTED", reason=why, equity=account.equity,
            high_water_mark=account.high_water_mark,
        )
        return [Output(self.subjects.risk_state(s.venue), event)]

    def _outputs(self, s: SignalFused, rec: Recorded) -> list[Output]:
        common = header_from(s)
        order_subject = self.subjects.risk_order(s.venue, s.symbol)
        if not rec.approved:
            rejected = OrderRejected(
                **common, signal_id=s.signal_id, reason=rec.reason, detail=rec.detail
            )
            return [Output(order_subject, rejected)]
        approved = OrderApproved(
            **common, client_order_id=rec.client_order_id, signal_id=s.signal_id,
            side=rec.side, qty=rec.qty, price=rec.price, notional=rec.qty * rec.price,  # type: ignore[arg-type]
            execution="paper",
        )
        filled = OrderFilled(
            **common, client_order_id=rec.client_order_id, side=rec.side,  # type: ignore[arg-type]
            qty=rec.qty, price=rec.price, fee=rec.fee, position_after=rec.position_after,
            cash_after=rec.cash_after, equity_after=rec.equity_after, execution="paper",
        )
        return [
            Output(order_subject, approved),
            Output(self.subjects.risk_fill(s.venue, s.symbol), filled),
        ]


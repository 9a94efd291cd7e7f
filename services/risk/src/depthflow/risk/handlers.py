"""``signal.fused.*`` → ``risk.order.*`` (+ ``risk.fill.*``, ``risk.state.*``); ``agg.book.*`` → marks.

Every signal yields exactly one decision on ``risk.order.<venue>.<SYM>``: ``OrderApproved`` (then
an ``OrderFilled`` from the paper broker on ``risk.fill``) or ``OrderRejected`` with a reason code.
Never a dead letter and never a retry for a signal risk can read: a foreign venue or symbol is
rejected here (the route is registered with ``admit=False``), and so is a signal arriving while
Postgres or Redis is unreachable (``infrastructure_unavailable``, at once).

Marks are risk's own: the touch and ``ts_init`` of the latest ``agg.book`` per symbol, in memory
(mirrored to Redis for a restart). Fills are priced from them, never from the signal's quote.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

import asyncpg
import msgspec
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from depthflow.common.bus import Bus
from depthflow.common.codec import Decoder, InvalidMessage, encode
from depthflow.common.messages import (
    BookBuckets,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    Side,
    SignalFused,
    TradingState,
    TradingStateChanged,
    header_from,
)
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects
from depthflow.risk.checks import Account, Decision, KnownState, Mark, assess, value_account
from depthflow.risk.config import RiskConfig
from depthflow.risk.hotstate import HOT_ERRORS, HotState
from depthflow.risk.storage import STORAGE_ERRORS, Filled, Ledger, Recorded, Rejected

log = logging.getLogger("depthflow.risk")

UNAVAILABLE = STORAGE_ERRORS + HOT_ERRORS
_signal_decoder: Decoder[SignalFused] = Decoder(SignalFused)


def known_state(value: bytes | None) -> KnownState:
    """The trading state a ``control`` KV value names; anything else is ``UNKNOWN`` (which
    rejects every signal: fail closed)."""
    try:
        return msgspec.convert((value or b"").decode(), TradingState)
    except (UnicodeDecodeError, msgspec.ValidationError):
        return "UNKNOWN"


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
        self.scope = cfg.scope()
        self.control: KeyValue | None = None  # bound at start, once the bus is connected
        self.marks: dict[str, Mark] = {}
        # decisions answered infrastructure_unavailable and not yet in the ledger, by signal id
        self.kept: dict[str, tuple[SignalFused, Rejected]] = {}
        self.storage_ok = True  # the ledger and hot state answered the last probe or decision

    async def bind(self, bus: Bus) -> None:
        """Open the ``control`` KV bucket; load the mirrored marks and spooled decisions."""
        self.control = await bus.js.key_value(self.subjects.kv_bucket("control"))
        with contextlib.suppress(*UNAVAILABLE):  # without them risk only rejects more
            async with asyncio.timeout(self.cfg.storage_timeout_s):
                self.marks.update(await self.hot.marks())
                for signal_id, (raw, reason, detail) in (await self.hot.spooled()).items():
                    with contextlib.suppress(InvalidMessage):
                        self.kept[signal_id] = (_signal_decoder.decode(raw), Rejected(reason, detail))

    async def on_book_buckets(self, msg: BookBuckets, _: Delivery) -> list[Output]:
        mark = Mark(msg.best_bid, msg.best_ask, msg.ts_init)
        current = self.marks.get(msg.symbol)
        if not mark.sane() or (current is not None and current.ts_ns >= mark.ts_ns):
            return []  # a crossed book or an older redelivery never replaces a mark
        self.marks[msg.symbol] = mark
        try:
            async with asyncio.timeout(self.cfg.storage_timeout_s):
                await self.hot.set_mark(msg.symbol, mark)
        except UNAVAILABLE:
            # the mirror only speeds up a restart; a missed copy is at worst a stale one, refused
            log.warning("mark not mirrored to Redis", extra={"symbol": msg.symbol})
        return []

    async def watch_storage(self, stopping: asyncio.Event) -> None:
        """Probe Postgres and Redis for ``/readyz``; record kept decisions once both answer."""
        timeout = self.cfg.storage_timeout_s
        while not stopping.is_set():
            try:
                ok = await self.ledger.probe(timeout) and await self._ping()
                if ok and self.kept:
                    await self._record_kept()
            except Exception:  # anything odd is "not ready"; the watcher itself must live on
                log.exception("storage probe failed")
                ok = False
            # a decision that failed during the flush keeps us not ready until the next probe
            self.storage_ok = ok and not self.kept
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.cfg.storage_probe_interval_s)

    async def _ping(self) -> bool:
        try:
            async with asyncio.timeout(self.cfg.storage_timeout_s):
                return await self.hot.ping()
        except TimeoutError:
            return False

    async def _record_kept(self) -> None:
        for signal_id, (signal, rec) in list(self.kept.items()):
            try:
                async with asyncio.timeout(self.cfg.storage_timeout_s):
                    await self.ledger.record_kept(signal, rec)
            except UNAVAILABLE:
                return  # gone again: the next probe tries again
            except Exception:
                # a row Postgres refuses must not block the others (or readiness) forever
                log.exception("kept decision could not be recorded", extra={"signal_id": signal_id})
            del self.kept[signal_id]
            with contextlib.suppress(*UNAVAILABLE):
                async with asyncio.timeout(self.cfg.storage_timeout_s):
                    await self.hot.unspool(signal_id)
        log.info("kept decisions recorded in the ledger")

    async def _trading_state(self) -> KnownState:
        assert self.control is not None
        try:
            entry = await self.control.get(Subjects.trading_state_key(self.cfg.runtime.venue))
        except KeyNotFoundError:
            return "UNKNOWN"
        return known_state(entry.value)

    async def on_signal_fused(self, signal: SignalFused, _: Delivery) -> list[Output]:
        kept = self.kept.get(signal.signal_id)
        if kept is not None:  # redelivery of a signal answered during an outage
            return self._outputs(signal, kept[1])
        if not self.storage_ok:
            return await self._unavailable(signal, "ledger or hot state unreachable")
        try:
            async with asyncio.timeout(self.cfg.storage_timeout_s):
                outputs, filled = await self._decide(signal)
        except UNAVAILABLE as exc:
            log.warning("storage unreachable: signal answered infrastructure_unavailable",
                        extra={"signal_id": signal.signal_id, "error": type(exc).__name__})
            return await self._unavailable(signal, f"storage unreachable ({type(exc).__name__})")
        if filled:
            await self._count_order(signal)
        return outputs

    async def _count_order(self, signal: SignalFused) -> None:
        # After the commit, outside the decision's time bound: a recorded order is published
        # whatever Redis does; while Redis is down no new order passes anyway.
        try:
            async with asyncio.timeout(self.cfg.storage_timeout_s):
                await self.hot.count_order()
        except UNAVAILABLE:
            log.warning("order not counted in Redis", extra={"signal_id": signal.signal_id})

    async def _unavailable(self, signal: SignalFused, why: str) -> list[Output]:
        """One fail-closed decision now; kept (and spooled to Redis if it answers) until the
        ledger can record it."""
        rec = Rejected("infrastructure_unavailable", f"{why}; recorded when it returns")
        self.kept[signal.signal_id] = (signal, rec)
        self.storage_ok = False
        with contextlib.suppress(*UNAVAILABLE):
            async with asyncio.timeout(min(self.cfg.storage_timeout_s, 0.5)):
                await self.hot.spool(signal.signal_id, encode(signal), rec.reason, rec.detail)
        return self._outputs(signal, rec)

    async def _decide(self, signal: SignalFused) -> tuple[list[Output], bool]:
        """The decision's outputs, and whether it is a new fill (to count for the order rate)."""
        async with self.ledger.pool.acquire() as conn, conn.transaction():
            done = await self.ledger.recorded(conn, signal.signal_id)
            if done is not None:  # redelivery: publish the same outcome again (deduplicated)
                return self._outputs(signal, done), False
            book = await self.ledger.lock_book(conn)
            now_ns = time.time_ns()
            marks = dict(self.marks)  # one consistent view for the whole decision
            value = value_account(book.cash, book.positions, marks, now_ns, self.limits, self.scope)
            today = dt.datetime.now(dt.UTC).date()
            day_start = book.day_start_equity
            if today != book.day and not value.unmarked:
                await self.ledger.roll_day(conn, today, value.equity)
                day_start = value.equity
            account = Account(
                cash=book.cash,
                position=book.positions.get(signal.symbol, 0.0),
                equity=value.equity,
                high_water_mark=max(book.high_water_mark, value.equity),
                day_start_equity=day_start,
                orders_this_minute=await self.hot.orders_this_minute(),
                trading_state=await self._trading_state(),
                unmarked=value.unmarked,
            )
            mark = marks.get(signal.symbol)
            decision = assess(signal, account, mark, self.limits, self.scope, now_ns)
            extra: list[Output] = []
            if decision.reason is not None:
                rejected = Rejected(decision.reason, decision.detail)
                await self.ledger.record_rejection(conn, signal, rejected)
                if decision.halt:
                    extra = await self._halt(conn, signal, decision.detail, account)
                return self._outputs(signal, rejected) + extra, False
            assert mark is not None  # assess approves only with a fresh mark
            rec = self._paper_fill(signal, decision, account, mark)
            avg = await self._avg_price(conn, signal, rec, account.position)
            await self.ledger.record_fill(
                conn, signal, rec, avg, max(account.high_water_mark, rec.equity_after)
            )
        return self._outputs(signal, rec), True

    def _paper_fill(self, s: SignalFused, decision: Decision, account: Account, mark: Mark) -> Filled:
        # Paper broker: fills in full at risk's own touch (the mark), whatever the signal quoted.
        qty, price = decision.qty, decision.price
        fee = qty * price * self.limits.fee_rate
        side: Side = "BUY" if s.side == "BUY" else "SELL"  # assess approves no FLAT signal
        sign = 1.0 if side == "BUY" else -1.0
        cash_after = account.cash - sign * qty * price - fee
        position_after = account.position + sign * qty
        equity_after = account.equity - fee - sign * qty * (price - mark.mid)
        return Filled(
            detail=decision.detail,
            client_order_id=f"df-{s.signal_id}",
            side=side,
            qty=qty,
            price=price,
            fee=fee,
            position_after=position_after,
            cash_after=cash_after,
            equity_after=equity_after,
        )

    async def _avg_price(
        self, conn: asyncpg.Connection, s: SignalFused, rec: Filled, before: float
    ) -> float:
        prev = await self.ledger.avg_price(conn, s.symbol)
        if rec.side == "SELL":
            return prev if rec.position_after > 0 else 0.0
        return (prev * before + rec.price * rec.qty) / rec.position_after

    async def _halt(
        self, conn: asyncpg.Connection, s: SignalFused, why: str, account: Account
    ) -> list[Output]:
        assert self.control is not None
        halted: TradingState = "HALTED"
        await self.control.put(Subjects.trading_state_key(s.venue), halted.encode())
        await self.ledger.record_state(conn, halted, why, account.equity)
        await self.hot.mirror_state(halted)
        log.error("kill switch: trading halted", extra={"reason": why})
        event = TradingStateChanged(
            symbol=s.symbol, venue=s.venue, ts_event=time.time_ns(), ts_init=time.time_ns(),
            origin_ts=s.origin_ts, state=halted, reason=why, equity=account.equity,
            high_water_mark=account.high_water_mark,
        )
        return [Output(self.subjects.risk_state(s.venue), event)]

    def _outputs(self, s: SignalFused, rec: Recorded) -> list[Output]:
        common = header_from(s)
        order_subject = self.subjects.risk_order(s.venue, s.symbol)
        if isinstance(rec, Rejected):
            rejected = OrderRejected(
                **common, signal_id=s.signal_id, reason=rec.reason, detail=rec.detail
            )
            return [Output(order_subject, rejected)]
        approved = OrderApproved(
            **common, client_order_id=rec.client_order_id, signal_id=s.signal_id,
            side=rec.side, qty=rec.qty, price=rec.price, notional=rec.qty * rec.price,
            execution="paper",
        )
        filled = OrderFilled(
            **common, client_order_id=rec.client_order_id, side=rec.side,
            qty=rec.qty, price=rec.price, fee=rec.fee, position_after=rec.position_after,
            cash_after=rec.cash_after, equity_after=rec.equity_after, execution="paper",
        )
        return [
            Output(order_subject, approved),
            Output(self.subjects.risk_fill(s.venue, s.symbol), filled),
        ]


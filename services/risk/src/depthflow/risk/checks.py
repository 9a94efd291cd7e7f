"""Deterministic pre-trade checks: risk's pure core.

Every signal gets exactly one :class:`Decision`. The checks run in a fixed order and the first
failure decides, so the same inputs always give the same verdict and reason code:

1. what the signal *is*: ``unknown_venue``, ``unknown_symbol``, ``invalid_signal`` (non-finite
   or out-of-range fields), ``future_timestamp``;
2. whether anything may trade: ``trading_halted``, ``state_unavailable``, ``signal_flat``,
   ``learning_mode``, ``low_confidence``, ``stale_signal``;
3. whether risk can price it itself: ``no_fresh_mark`` (the signal's symbol),
   ``position_unmarked`` (any held position), ``bad_quote``, ``quote_off_mark``;
4. the account: ``no_equity``, ``drawdown_kill_switch``, ``order_rate``, ``reducing_only``,
   ``daily_loss_limit``, then sizing (``position_limit``, ``insufficient_cash``,
   ``below_min_notional``, ``no_position``).

Why risk trusts nothing upstream: a well-formed signal quoting BTC at $1.01 once filled 1,980
BTC. The price of a fill is risk's own mark (the latest ``agg.book`` it consumed), never the
signal's quote; the quote only has to agree with the mark within a band.

Fail closed, NaN included: every check is written as "pass only if <sane condition>", so a NaN,
which fails every comparison, rejects instead of slipping through (``NaN < min`` is False, but
``not (NaN >= min)`` is True).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Literal, Protocol

from depthflow.common.messages import FusionMode, RejectReason, SignalSide, TradingState

KnownState = TradingState | Literal["UNKNOWN"]
"""A trading state as risk sees it: ``UNKNOWN`` when the control key is missing or unreadable."""


class SignalLike(Protocol):
    """The fields of ``SignalFused`` the checks read (a protocol, so tests can feed values a
    validated message would refuse to hold, such as NaN)."""

    @property
    def symbol(self) -> str: ...
    @property
    def venue(self) -> str: ...
    @property
    def ts_event(self) -> int: ...
    @property
    def ts_init(self) -> int: ...
    @property
    def origin_ts(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def side(self) -> SignalSide: ...
    @property
    def mode(self) -> FusionMode: ...
    @property
    def mid(self) -> float: ...
    @property
    def best_bid(self) -> float: ...
    @property
    def best_ask(self) -> float: ...
    @property
    def components(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Limits:
    """The limits an order must respect (see the risk README for each one and its bounds)."""

    max_position_pct: float
    order_notional_pct: float
    min_confidence: float
    max_signal_age_s: float
    max_orders_per_minute: int
    max_drawdown_pct: float
    daily_loss_pct: float
    min_notional: float
    qty_step: float
    fee_rate: float
    max_mark_age_s: float = 5.0
    quote_band_pct: float = 0.005


@dataclass(frozen=True)
class Scope:
    """What this deployment trades: anything else is not risk's to decide on but to reject."""

    venue: str
    symbols: frozenset[str]
    max_future_s: float  # how far ahead of this clock a timestamp may be (clock skew)


@dataclass(frozen=True)
class Mark:
    """Risk's own price of a symbol: the touch of the latest book it consumed, and when the
    aggregator built that book (``ts_init``: ``ts_event`` is old in replays)."""

    bid: float
    ask: float
    ts_ns: int

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    def sane(self) -> bool:
        return math.isfinite(self.ask) and 0 < self.bid < self.ask

    def fresh(self, now_ns: int, max_age_s: float, max_future_s: float) -> bool:
        """Sane, not older than ``max_age_s`` and not further ahead than ``max_future_s``."""
        age_s = (now_ns - self.ts_ns) / 1e9
        return self.sane() and -max_future_s <= age_s <= max_age_s


@dataclass(frozen=True)
class Valuation:
    """Cash plus every held position at its fresh mark; ``unmarked`` lists held symbols with no
    fresh mark, and then ``equity`` is NaN: a position is never valued at 0 (or at a stale price)."""

    equity: float
    unmarked: tuple[str, ...]


def value_account(
    cash: float, positions: Mapping[str, float], marks: Mapping[str, Mark], now_ns: int,
    limits: Limits, scope: Scope,
) -> Valuation:
    equity = cash
    unmarked = []
    for symbol, qty in sorted(positions.items()):
        if qty == 0:
            continue
        mark = marks.get(symbol)
        if mark is None or not mark.fresh(now_ns, limits.max_mark_age_s, scope.max_future_s):
            unmarked.append(symbol)
            continue
        equity += qty * mark.mid
    return Valuation(math.nan if unmarked else equity, tuple(unmarked))


@dataclass(frozen=True)
class Account:
    """The account as the ledger and hot state know it when the signal arrives."""

    cash: float
    position: float  # base quantity held of the signal's symbol
    equity: float  # cash + every position at its fresh mark; NaN when one has none
    high_water_mark: float
    day_start_equity: float
    orders_this_minute: int
    trading_state: KnownState
    unmarked: tuple[str, ...] = ()  # held symbols without a fresh mark


@dataclass(frozen=True)
class Decision:
    """Approve with a quantity and price (``reason`` None), or reject with a reason code and
    detail. Why no separate ``approved`` flag: an approval with a reason, or a rejection without
    one, cannot be built."""

    reason: RejectReason | None
    detail: str
    qty: float = 0.0
    price: float = 0.0
    halt: bool = False  # the decision tripped the drawdown kill switch

    @property
    def approved(self) -> bool:
        return self.reason is None

    @property
    def notional(self) -> float:
        return self.qty * self.price


def _reject(reason: RejectReason, detail: str, halt: bool = False) -> Decision:
    return Decision(reason, detail, halt=halt)


# Every step of floor_to_step rounds toward -inf, so no intermediate rounding can round up.
_FLOOR = Context(prec=60, rounding=ROUND_FLOOR)


def floor_to_step(qty: float, step: float) -> float:
    """Round a quantity down to a multiple of ``step`` (never up: never more than allowed).

    Decimal arithmetic on the shortest decimal forms (``repr``) because the float way,
    ``floor(qty / step) * step``, gives ``0.30000000000000004`` for ``(0.3, 0.1)``. The result is
    at most ``qty``: it is at most ``Decimal(repr(qty))``, and rounding to the nearest float is
    monotonic and maps that back to ``qty``. A non-finite or non-positive input gives 0.0, the
    one size that can never exceed a limit (and is then rejected as below the minimum notional).
    """
    if not (math.isfinite(qty) and qty > 0 and math.isfinite(step) and step > 0):
        return 0.0
    d_step = Decimal(repr(step))
    units = _FLOOR.divide(Decimal(repr(qty)), d_step).to_integral_value(rounding=ROUND_FLOOR)
    return float(_FLOOR.multiply(units, d_step))


def _finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def _invalid_field(s: SignalLike) -> str | None:
    """The first field of ``s`` out of its range, or None; each test passes only sane values."""
    if not (_finite(s.score) and -1.0 <= s.score <= 1.0):
        return f"score {s.score!r} is not in [-1, 1]"
    if not (_finite(s.confidence) and 0.0 <= s.confidence <= 1.0):
        return f"confidence {s.confidence!r} is not in [0, 1]"
    for name in ("mid", "best_bid", "best_ask"):
        v = getattr(s, name)
        if not (_finite(v) and v > 0):
            return f"{name} {v!r} is not a positive finite price"
    if not all(_finite(v) for v in s.components.values()):
        return "a component is not finite"
    for name in ("ts_event", "ts_init", "origin_ts"):
        if not getattr(s, name) > 0:
            return f"{name} {getattr(s, name)!r} is not a positive timestamp"
    return None


def _check_identity(s: SignalLike, scope: Scope, now_ns: int) -> Decision | None:
    if s.venue != scope.venue:
        return _reject("unknown_venue", f"venue {s.venue!r} is not this deployment's {scope.venue!r}")
    if s.symbol not in scope.symbols:
        return _reject("unknown_symbol", f"symbol {s.symbol!r} is not configured")
    if (why := _invalid_field(s)) is not None:
        return _reject("invalid_signal", why)
    bound = now_ns + scope.max_future_s * 1e9
    for name in ("ts_event", "ts_init", "origin_ts"):
        ts = getattr(s, name)
        if not ts <= bound:
            ahead = (ts - now_ns) / 1e9
            return _reject("future_timestamp", f"{name} is {ahead:.1f}s ahead of risk's clock")
    return None


def _check_tradable(s: SignalLike, account: Account, limits: Limits, now_ns: int) -> Decision | None:
    if account.trading_state == "HALTED":
        return _reject("trading_halted", "trading is halted; resume needs an operator")
    if account.trading_state not in ("ACTIVE", "REDUCING"):
        return _reject("state_unavailable", f"trading state is {account.trading_state}")
    if s.side not in ("BUY", "SELL"):
        return _reject("signal_flat", f"score {s.score:+.3f} implies no action")
    if s.mode != "TRADING":
        return _reject("learning_mode", "signals in LEARNING mode are not traded")
    if not s.confidence >= limits.min_confidence:
        return _reject("low_confidence", f"confidence {s.confidence:.3f} < {limits.min_confidence}")
    age_s = (now_ns - s.ts_init) / 1e9
    if not age_s <= limits.max_signal_age_s:
        return _reject("stale_signal", f"signal is {age_s:.1f}s old > {limits.max_signal_age_s}s")
    return None


def _check_priced(
    s: SignalLike, mark: Mark | None, account: Account, limits: Limits, scope: Scope, now_ns: int
) -> Decision | None:
    if mark is None or not mark.fresh(now_ns, limits.max_mark_age_s, scope.max_future_s):
        age = "none" if mark is None else f"{(now_ns - mark.ts_ns) / 1e9:.1f}s old"
        return _reject("no_fresh_mark", f"no fresh book for {s.symbol} (mark: {age})")
    if account.unmarked:
        return _reject(
            "position_unmarked", f"held positions without a fresh mark: {', '.join(account.unmarked)}"
        )
    if not s.best_bid < s.best_ask:
        return _reject("bad_quote", f"bid {s.best_bid} ask {s.best_ask}")
    off = max(abs(s.best_bid - mark.bid), abs(s.best_ask - mark.ask)) / mark.mid
    if not off <= limits.quote_band_pct:
        return _reject(
            "quote_off_mark",
            f"quote {s.best_bid}/{s.best_ask} is {off:.2%} off the mark {mark.bid}/{mark.ask}"
            f" (band {limits.quote_band_pct:.2%})",
        )
    return None


def _check_account(s: SignalLike, account: Account, limits: Limits) -> Decision | None:
    if not (account.equity > 0 and account.high_water_mark > 0):
        return _reject("no_equity", f"equity {account.equity}")
    drawdown = (account.high_water_mark - account.equity) / account.high_water_mark
    if not drawdown < limits.max_drawdown_pct:
        return _reject(
            "drawdown_kill_switch",
            f"drawdown {drawdown:.2%} >= {limits.max_drawdown_pct:.0%}: trading halted",
            halt=True,
        )
    if not account.orders_this_minute < limits.max_orders_per_minute:
        return _reject("order_rate", f"{account.orders_this_minute} orders this minute")
    reducing = s.side == "SELL" and account.position > 0
    if account.trading_state == "REDUCING" and not reducing:
        return _reject("reducing_only", "only exposure-reducing orders are allowed")
    daily = (account.equity - account.day_start_equity) / max(account.day_start_equity, 1e-12)
    if not (daily > -limits.daily_loss_pct or reducing):
        return _reject("daily_loss_limit", f"day P&L {daily:.2%} <= -{limits.daily_loss_pct:.0%}")
    return None


def assess(
    signal: SignalLike, account: Account, mark: Mark | None, limits: Limits, scope: Scope, now_ns: int
) -> Decision:
    """Return the decision for ``signal``; the first failing check gives the reason.

    ``mark`` is risk's own mark of the signal's symbol (None when it has none); an approved
    order is priced at its touch: the ask for a buy, the bid for a sell.
    """
    rejected = (
        _check_identity(signal, scope, now_ns)
        or _check_tradable(signal, account, limits, now_ns)
        or _check_priced(signal, mark, account, limits, scope, now_ns)
        or _check_account(signal, account, limits)
    )
    if rejected is not None:
        return rejected
    assert mark is not None  # _check_priced rejected otherwise
    if signal.side == "BUY":
        return _buy(mark.ask, account, limits)
    return _sell(mark.bid, account, limits)


def _buy(price: float, account: Account, limits: Limits) -> Decision:
    qty = floor_to_step(limits.order_notional_pct * account.equity / price, limits.qty_step)
    exposure = (abs(account.position) + qty) * price
    if not exposure <= limits.max_position_pct * account.equity:
        room = limits.max_position_pct * account.equity / price - abs(account.position)
        qty = floor_to_step(room, limits.qty_step)
        if not qty * price >= limits.min_notional:
            return _reject(
                "position_limit",
                f"position would exceed {limits.max_position_pct:.0%} of equity",
            )
    cost = qty * price * (1 + limits.fee_rate)
    if not cost <= account.cash:
        return _reject("insufficient_cash", f"needs {cost:.2f}, cash {account.cash:.2f}")
    return _sized(qty, price, limits)


def _sell(price: float, account: Account, limits: Limits) -> Decision:
    if not account.position > 0:
        return _reject("no_position", "spot: nothing to sell (no shorting)")
    wanted = floor_to_step(limits.order_notional_pct * account.equity / price, limits.qty_step)
    return _sized(floor_to_step(min(wanted, account.position), limits.qty_step), price, limits)


def _sized(qty: float, price: float, limits: Limits) -> Decision:
    if not (qty > 0 and qty * price >= limits.min_notional):
        return _reject("below_min_notional", f"notional {qty * price:.2f} < {limits.min_notional}")
    return Decision(None, "all checks passed", qty=qty, price=price)

"""Deterministic pre-trade checks: risk's pure core.

Every signal gets exactly one :class:`Decision`. The checks run in a fixed order and the first
failure decides, so the same inputs always give the same verdict and reason code. Anything
unknown (no trading state, no quote, no equity) rejects: the checks fail closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from depthflow.common.messages import SignalFused


@dataclass(frozen=True)
class Limits:
    """The limits an order must respect (see the risk README for each one)."""

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


@dataclass(frozen=True)
class Account:
    """The account as the ledger and hot state know it when the signal arrives."""

    cash: float
    position: float  # base quantity held of the signal's symbol
    equity: float  # cash + every position at its mark
    high_water_mark: float
    day_start_equity: float
    orders_this_minute: int
    trading_state: str  # ACTIVE, REDUCING, HALTED, or UNKNOWN when it cannot be read


@dataclass(frozen=True)
class Decision:
    """Approve with a quantity and price, or reject with a reason code and detail."""

    approved: bool
    reason: str
    detail: str
    qty: float = 0.0
    price: float = 0.0
    halt: bool = False  # the decision tripped the drawdown kill switch

    @property
    def notional(self) -> float:
        return self.qty * self.price


def _reject(reason: str, detail: str, halt: bool = False) -> Decision:
    return Decision(False, reason, detail, halt=halt)


def floor_to_step(qty: float, step: float) -> float:
    """Round a quantity down to the exchange's step (never up: never more than allowed)."""
    return math.floor(qty / step + 1e-9) * step


def assess(signal: SignalFused, account: Account, limits: Limits, now_ns: int) -> Decision:
    """Return the decision for ``signal``; the first failing check gives the reason."""
    if account.trading_state == "HALTED":
        return _reject("trading_halted", "trading is halted; resume needs an operator")
    if account.trading_state not in ("ACTIVE", "REDUCING"):
        return _reject("state_unavailable", f"trading state is {account.trading_state}")
    if signal.side == "FLAT":
        return _reject("signal_flat", f"score {signal.score:+.3f} implies no action")
    if signal.mode != "TRADING":
        return _reject("learning_mode", "signals in LEARNING mode are not traded")
    if signal.confidence < limits.min_confidence:
        return _reject(
            "low_confidence", f"confidence {signal.confidence:.3f} < {limits.min_confidence}"
        )
    age_s = (now_ns - signal.ts_init) / 1e9
    if age_s > limits.max_signal_age_s:
        return _reject("stale_signal", f"signal is {age_s:.1f}s old > {limits.max_signal_age_s}s")
    if not (0 < signal.best_bid < signal.best_ask) or not math.isfinite(signal.best_ask):
        return _reject("bad_quote", f"bid {signal.best_bid} ask {signal.best_ask}")
    if account.equity <= 0 or account.high_water_mark <= 0:
        return _reject("no_equity", f"equity {account.equity}")
    drawdown = (account.high_water_mark - account.equity) / account.high_water_mark
    if drawdown >= limits.max_drawdown_pct:
        return _reject(
            "drawdown_kill_switch",
            f"drawdown {drawdown:.2%} >= {limits.max_drawdown_pct:.0%}: trading halted",
            halt=True,
        )
    if account.orders_this_minute >= limits.max_orders_per_minute:
        return _reject("order_rate", f"{account.orders_this_minute} orders this minute")
    reducing = signal.side == "SELL" and account.position > 0
    if account.trading_state == "REDUCING" and not reducing:
        return _reject("reducing_only", "only exposure-reducing orders are allowed")
    daily = (account.equity - account.day_start_equity) / max(account.day_start_equity, 1e-12)
    if daily <= -limits.daily_loss_pct and not reducing:
        return _reject("daily_loss_limit", f"day P&L {daily:.2%} <= -{limits.daily_loss_pct:.0%}")
    if signal.side == "BUY":
        return _buy(signal.best_ask, account, limits)
    return _sell(signal.best_bid, account, limits)


def _buy(price: float, account: Account, limits: Limits) -> Decision:
    qty = floor_to_step(limits.order_notional_pct * account.equity / price, limits.qty_step)
    exposure = (abs(account.position) + qty) * price
    if exposure > limits.max_position_pct * account.equity:
        room = limits.max_position_pct * account.equity / price - abs(account.position)
        qty = floor_to_step(max(room, 0.0), limits.qty_step)
        if qty * price < limits.min_notional:
            return _reject(
                "position_limit",
                f"position would exceed {limits.max_position_pct:.0%} of equity",
            )
    cost = qty * price * (1 + limits.fee_rate)
    if cost > account.cash:
        return _reject("insufficient_cash", f"needs {cost:.2f}, cash {account.cash:.2f}")
    if qty * price < limits.min_notional:
        return _reject("below_min_notional", f"notional {qty * price:.2f} < {limits.min_notional}")
    return Decision(True, "approved", "all checks passed", qty=qty, price=price)


def _sell(price: float, account: Account, limits: Limits) -> Decision:
    if account.position <= 0:
        return _reject("no_position", "spot: nothing to sell (no shorting)")
    wanted = floor_to_step(limits.order_notional_pct * account.equity / price, limits.qty_step)
    qty = floor_to_step(min(wanted, account.position), limits.qty_step)
    if qty * price < limits.min_notional:
        return _reject("below_min_notional", f"notional {qty * price:.2f} < {limits.min_notional}")
    return Decision(True, "approved", "all checks passed", qty=qty, price=price)

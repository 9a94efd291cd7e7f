"""Adversarial values into risk's core: nothing is approved unless every input is sane, and an
approved order is priced at risk's own mark, sized within the limits."""

import math
from decimal import Decimal
from fractions import Fraction
from typing import get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.common.messages import RejectReason
from depthflow.risk.checks import Account, Mark, assess, floor_to_step
from tests.unit.risk.test_checks import LIMITS, MARK, NOW, SCOPE, S, Sig

REASONS = frozenset(get_args(RejectReason))
NASTY = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e300, -1e300, 5e-324, 1e-300]


def mostly(sane: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Sane 15 times in 16: each example breaks few fields, so some pass every check and the
    property is about approvals, not only about rejections."""
    return st.integers(0, 15).flatmap(lambda i: bad if i == 0 else sane)


def nasty_or(sane: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return mostly(sane, st.one_of(st.sampled_from(NASTY), st.floats()))


prices = nasty_or(st.floats(59_700, 60_300))  # around the mark, inside and outside the band
timestamps = mostly(
    st.integers(NOW - 4 * S, NOW),
    st.one_of(
        st.integers(NOW - 10 * S, NOW + 20 * S),  # stale, skewed, future
        st.sampled_from([0, -1, NOW + 3600 * S, NOW - 3600 * S, 2**63 - 1, 2**64]),
    ),
)

signals = st.builds(
    Sig,
    symbol=mostly(st.just("BTCFDUSD"), st.sampled_from(["ETHFDUSD", "PROBEX"])),
    venue=mostly(st.just("binance"), st.just("evil")),
    ts_event=timestamps,
    ts_init=timestamps,
    origin_ts=timestamps,
    score=nasty_or(st.floats(-1, 1)),
    confidence=nasty_or(st.floats(0.2, 1)),
    side=mostly(st.sampled_from(["BUY", "SELL"]), st.just("FLAT")),
    mode=mostly(st.just("TRADING"), st.just("LEARNING")),
    components=mostly(st.just({}), st.dictionaries(st.just("book"), nasty_or(st.floats(-1, 1)))),
    mid=prices,
    best_bid=prices,
    best_ask=prices,
)
marks = mostly(
    st.one_of(st.just(MARK), st.builds(Mark, bid=prices, ask=prices, ts_ns=timestamps)),
    st.none(),
)
accounts = st.builds(
    Account,
    cash=nasty_or(st.floats(0, 1e6)),
    position=nasty_or(st.floats(0, 1)),
    equity=nasty_or(st.floats(80_000, 150_000)),
    high_water_mark=nasty_or(st.floats(90_000, 110_000)),
    day_start_equity=nasty_or(st.floats(80_000, 110_000)),
    orders_this_minute=st.integers(0, 40),
    trading_state=mostly(st.just("ACTIVE"), st.sampled_from(["REDUCING", "HALTED", "UNKNOWN"])),
    unmarked=mostly(st.just(()), st.just(("ETHFDUSD",))),
)


def _sane_signal(s: Sig) -> bool:
    prices_ok = all(math.isfinite(x) and x > 0 for x in (s.mid, s.best_bid, s.best_ask))
    return (
        s.venue == SCOPE.venue
        and s.symbol in SCOPE.symbols
        and math.isfinite(s.score)
        and -1 <= s.score <= 1
        and math.isfinite(s.confidence)
        and LIMITS.min_confidence <= s.confidence <= 1
        and all(math.isfinite(c) for c in s.components.values())
        and prices_ok
        and s.best_bid < s.best_ask
        and all(0 < t <= NOW + SCOPE.max_future_s * S for t in (s.ts_event, s.ts_init, s.origin_ts))
        and NOW - s.ts_init <= LIMITS.max_signal_age_s * S
        and s.side in ("BUY", "SELL")
        and s.mode == "TRADING"
    )


@settings(max_examples=3000, deadline=None)
@given(signals, accounts, marks)
def test_no_approval_unless_every_input_is_sane_and_the_price_is_the_marks_touch(sig, acc, mark):
    d = assess(sig, acc, mark, LIMITS, SCOPE, NOW)
    if not d.approved:
        assert d.reason in REASONS  # the closed set operators count by: no code outside it
        assert d.qty == 0.0
        return
    assert _sane_signal(sig)
    assert mark is not None
    assert math.isfinite(mark.ask)
    assert 0 < mark.bid < mark.ask
    assert -SCOPE.max_future_s * S <= NOW - mark.ts_ns <= LIMITS.max_mark_age_s * S
    assert d.price == (mark.ask if sig.side == "BUY" else mark.bid)
    band = LIMITS.quote_band_pct * mark.mid
    assert abs(sig.best_bid - mark.bid) <= band
    assert abs(sig.best_ask - mark.ask) <= band
    assert acc.trading_state in ("ACTIVE", "REDUCING")
    assert acc.unmarked == ()
    assert math.isfinite(acc.equity)
    assert acc.equity > 0
    assert math.isfinite(d.qty)
    assert d.qty > 0
    assert d.notional >= LIMITS.min_notional
    assert d.notional <= LIMITS.order_notional_pct * acc.equity
    if sig.side == "BUY":
        assert (acc.position + d.qty) * d.price <= LIMITS.max_position_pct * acc.equity * (1 + 1e-12)
        assert d.notional * (1 + LIMITS.fee_rate) <= acc.cash
    else:
        assert d.qty <= acc.position


STEPS = ["0.00000001", "0.00001", "0.001", "0.1", "0.25", "1", "0.5", "0.003"]


@given(st.floats(min_value=0, max_value=1e300, allow_nan=False), st.sampled_from(STEPS))
def test_floor_to_step_is_the_exact_floor_of_the_decimal_quantity(qty, step_s):
    """Oracle in exact rationals (Fraction, not the Decimal context the code uses): a quantity is
    the decimal it prints as, floored to a whole number of steps, then the nearest float. No
    tolerance: never above the quantity, never a whole step below it."""
    step = float(step_s)
    floored = floor_to_step(qty, step)
    exact = Fraction(repr(qty)) // Fraction(step_s) * Fraction(step_s)
    assert floored == float(exact)
    assert Fraction(floored) <= Fraction(qty)


@given(st.integers(0, 10**9), st.sampled_from(STEPS))
def test_floor_to_step_keeps_an_exact_multiple(units, step_s):
    """A whole number of steps (0.3 = 3 x 0.1) comes back unchanged, not one float step off."""
    qty = float(Decimal(units) * Decimal(step_s))
    assert floor_to_step(qty, float(step_s)) == qty

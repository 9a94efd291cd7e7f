"""Each pre-trade check rejects with its own reason, and unknowns fail closed."""

import dataclasses
import math

import pytest

from depthflow.common.messages import FusionMode, SignalFused, SignalSide
from depthflow.risk.checks import Account, Limits, Mark, Scope, assess, floor_to_step, value_account
from depthflow.risk.handlers import known_state

NOW = 1_750_000_000_000_000_000  # 2025-06, after the messages' timestamp floor
LIMITS = Limits(
    max_position_pct=0.10, order_notional_pct=0.02, min_confidence=0.25, max_signal_age_s=5.0,
    max_orders_per_minute=30, max_drawdown_pct=0.15, daily_loss_pct=0.05, min_notional=5.0,
    qty_step=0.00001, fee_rate=0.001, max_mark_age_s=5.0, quote_band_pct=0.005,
)
SCOPE = Scope("binance", frozenset({"BTCFDUSD", "ETHFDUSD"}), max_future_s=10.0)
ACCOUNT = Account(
    cash=100_000.0, position=0.0, equity=100_000.0, high_water_mark=100_000.0,
    day_start_equity=100_000.0, orders_this_minute=0, trading_state="ACTIVE",
)
# risk's own touch, one tick wider than the signal's quote: fills must be at these prices
MARK = Mark(bid=59999.98, ask=60000.02, ts_ns=NOW - 1_000_000_000)
S = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class Sig:
    """The fields of SignalFused as plain values: a validated message refuses NaN, but risk
    must not rely on that (defence in depth), so the core is fed what a message cannot hold."""

    symbol: str = "BTCFDUSD"
    venue: str = "binance"
    ts_event: int = NOW
    ts_init: int = NOW
    origin_ts: int = NOW
    signal_id: str = "PEAKS-1"
    score: float = 0.5
    confidence: float = 0.5
    side: SignalSide = "BUY"
    mode: FusionMode = "TRADING"
    components: dict = dataclasses.field(default_factory=dict)
    mid: float = 60000.0
    best_bid: float = 59999.99
    best_ask: float = 60000.01


def signal(**over):
    return Sig(**over)


def account(**over):
    return dataclasses.replace(ACCOUNT, **over)


def decide(sig=None, acc=ACCOUNT, mark=MARK, now=NOW):
    return assess(sig or signal(), acc, mark, LIMITS, SCOPE, now)


def test_good_buy_is_approved_at_the_marks_ask_with_2pct_of_equity():
    d = decide()
    assert d.approved
    assert d.price == MARK.ask  # risk's own touch, not the signal's 60000.01
    assert d.qty == floor_to_step(2000 / MARK.ask, 0.00001)
    assert d.notional <= 2000


def test_a_real_signal_message_is_assessed_like_its_values():
    msg = SignalFused(**{f.name: getattr(signal(), f.name) for f in dataclasses.fields(Sig)})
    assert assess(msg, ACCOUNT, MARK, LIMITS, SCOPE, NOW) == decide()


def test_a_sell_fills_at_the_marks_bid():
    d = decide(signal(side="SELL"), account(position=0.01))
    assert d.approved
    assert d.price == MARK.bid


STALE_MARK = Mark(59999.98, 60000.02, NOW - 6 * S)


@pytest.mark.parametrize(
    ("sig", "acc", "mark", "reason"),
    [
        ({"venue": "evil"}, {}, MARK, "unknown_venue"),
        ({"symbol": "PROBEX"}, {}, MARK, "unknown_symbol"),
        ({"confidence": math.nan}, {}, MARK, "invalid_signal"),
        ({"confidence": 1.5}, {}, MARK, "invalid_signal"),
        ({"score": -math.inf}, {}, MARK, "invalid_signal"),
        ({"best_ask": math.inf}, {}, MARK, "invalid_signal"),
        ({"best_bid": 0.0}, {}, MARK, "invalid_signal"),
        ({"mid": -60000.0}, {}, MARK, "invalid_signal"),
        ({"components": {"book": math.nan}}, {}, MARK, "invalid_signal"),
        ({"ts_init": 0}, {}, MARK, "invalid_signal"),
        ({"ts_init": NOW + 3600 * S}, {}, MARK, "future_timestamp"),
        ({"ts_event": NOW + 11 * S}, {}, MARK, "future_timestamp"),
        ({}, {"trading_state": "HALTED"}, MARK, "trading_halted"),
        ({}, {"trading_state": "UNKNOWN"}, MARK, "state_unavailable"),
        ({"side": "FLAT"}, {}, MARK, "signal_flat"),
        ({"mode": "LEARNING"}, {}, MARK, "learning_mode"),
        ({"confidence": 0.1}, {}, MARK, "low_confidence"),
        ({"ts_init": NOW - 6 * S}, {}, MARK, "stale_signal"),
        ({}, {}, None, "no_fresh_mark"),
        ({}, {}, STALE_MARK, "no_fresh_mark"),
        ({}, {}, Mark(60000.02, 59999.98, NOW), "no_fresh_mark"),  # a crossed mark is no mark
        ({}, {"unmarked": ("ETHFDUSD",), "equity": math.nan}, MARK, "position_unmarked"),
        ({"best_ask": 59999.0}, {}, MARK, "bad_quote"),
        ({"best_bid": 1.00, "best_ask": 1.01}, {}, MARK, "quote_off_mark"),  # the forged quote
        ({"best_bid": 60400.0, "best_ask": 60401.0}, {}, MARK, "quote_off_mark"),
        ({}, {"equity": 0.0}, MARK, "no_equity"),
        ({}, {"equity": math.nan}, MARK, "no_equity"),
        ({}, {"equity": 84_000.0}, MARK, "drawdown_kill_switch"),
        ({}, {"orders_this_minute": 30}, MARK, "order_rate"),
        ({}, {"trading_state": "REDUCING"}, MARK, "reducing_only"),
        ({}, {"equity": 94_000.0, "day_start_equity": 100_000.0}, MARK, "daily_loss_limit"),
        ({}, {"position": 0.17}, MARK, "position_limit"),
        ({}, {"cash": 100.0}, MARK, "insufficient_cash"),
        ({"side": "SELL"}, {}, MARK, "no_position"),
        ({"side": "SELL"}, {"position": 0.00005}, MARK, "below_min_notional"),
    ],
)
def test_each_check_rejects_with_its_reason(sig, acc, mark, reason):
    d = decide(signal(**sig), account(**acc), mark)
    assert not d.approved
    assert d.reason == reason


def test_drawdown_rejection_trips_the_kill_switch():
    d = decide(acc=account(equity=84_000.0))
    assert d.halt


def test_buy_is_cut_to_the_room_left_under_the_position_limit():
    # 0.15 BTC held at 60k = 9,000 of 100,000; room is 1,000 of notional
    d = decide(acc=account(position=0.15))
    assert d.approved
    assert (0.15 + d.qty) * d.price <= 0.10 * 100_000


def test_sell_never_exceeds_the_position_and_reducing_allows_it():
    d = decide(signal(side="SELL"), account(position=0.01, trading_state="REDUCING"))
    assert d.approved
    assert d.qty == 0.01
    assert d.price == MARK.bid


def test_floor_to_step_never_rounds_up():
    assert floor_to_step(0.3, 0.1) <= 0.3
    assert floor_to_step(0.3, 0.1) == 0.3
    assert floor_to_step(0.123456789, 0.00001) == 0.12345
    assert floor_to_step(0.7, 0.1) == 0.7
    assert floor_to_step(1e300, 1e-5) <= 1e300


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, 0.0])
def test_floor_to_step_of_nonsense_is_zero(bad):
    assert floor_to_step(bad, 0.1) == 0.0
    assert floor_to_step(1.0, bad) == 0.0


def test_a_position_without_a_fresh_mark_is_never_valued_at_zero():
    marks = {"BTCFDUSD": MARK, "ETHFDUSD": Mark(2999.9, 3000.1, NOW - 6 * S)}
    v = value_account(1000.0, {"BTCFDUSD": 0.1, "ETHFDUSD": 2.0}, marks, NOW, LIMITS, SCOPE)
    assert v.unmarked == ("ETHFDUSD",)
    assert math.isnan(v.equity)
    v = value_account(1000.0, {"BTCFDUSD": 0.1, "SOLFDUSD": 0.0}, marks, NOW, LIMITS, SCOPE)
    assert v.unmarked == ()
    assert v.equity == 1000.0 + 0.1 * MARK.mid


@pytest.mark.parametrize(("value", "state"), [
    (b"ACTIVE", "ACTIVE"), (b"REDUCING", "REDUCING"), (b"HALTED", "HALTED"),
    (None, "UNKNOWN"), (b"", "UNKNOWN"), (b"active", "UNKNOWN"), (b"\xff", "UNKNOWN"), (b"PAUSED", "UNKNOWN"),
])
def test_a_control_value_outside_the_closed_set_of_states_is_unknown(value, state):
    """Why: an unreadable state must reject (state_unavailable), never be taken for a valid one."""
    assert known_state(value) == state
    decided = decide(acc=account(trading_state=known_state(value)))
    assert decided.approved == (state == "ACTIVE")

"""Each pre-trade check rejects with its own reason, and unknowns fail closed."""

import dataclasses

import pytest

from depthflow.common.messages import SignalFused
from depthflow.risk.checks import Account, Limits, assess, floor_to_step

NOW = 10_000_000_000_000
LIMITS = Limits(
    max_position_pct=0.10, order_notional_pct=0.02, min_confidence=0.25, max_signal_age_s=5.0,
    max_orders_per_minute=30, max_drawdown_pct=0.15, daily_loss_pct=0.05, min_notional=5.0,
    qty_step=0.00001, fee_rate=0.001,
)
ACCOUNT = Account(
    cash=100_000.0, position=0.0, equity=100_000.0, high_water_mark=100_000.0,
    day_start_equity=100_000.0, orders_this_minute=0, trading_state="ACTIVE",
)


def signal(**over):
    fields = dict(
        symbol="BTCFDUSD", venue="binance", ts_event=NOW, ts_init=NOW, origin_ts=NOW,
        signal_id="PEAKS-1", score=0.5, confidence=0.5, side="BUY", mode="TRADING",
        components={}, mid=60000.0, best_bid=59999.99, best_ask=60000.01,
    )
    fields.update(over)
    return SignalFused(**fields)


def account(**over):
    return dataclasses.replace(ACCOUNT, **over)


def test_good_buy_is_approved_at_the_ask_with_2pct_of_equity():
    d = assess(signal(), ACCOUNT, LIMITS, NOW)
    assert d.approved
    assert d.price == 60000.01
    assert d.qty == pytest.approx(floor_to_step(2000 / 60000.01, 0.00001))
    assert d.notional <= 2000


@pytest.mark.parametrize(
    ("sig", "acc", "reason"),
    [
        ({}, {"trading_state": "HALTED"}, "trading_halted"),
        ({}, {"trading_state": "UNKNOWN"}, "state_unavailable"),
        ({"side": "FLAT"}, {}, "signal_flat"),
        ({"mode": "LEARNING"}, {}, "learning_mode"),
        ({"confidence": 0.1}, {}, "low_confidence"),
        ({"ts_init": NOW - 6_000_000_000}, {}, "stale_signal"),
        ({"best_bid": 0.0}, {}, "bad_quote"),
        ({"best_ask": 59999.0}, {}, "bad_quote"),
        ({}, {"equity": 0.0}, "no_equity"),
        ({}, {"equity": 84_000.0}, "drawdown_kill_switch"),
        ({}, {"orders_this_minute": 30}, "order_rate"),
        ({}, {"trading_state": "REDUCING"}, "reducing_only"),
        ({}, {"equity": 94_000.0, "day_start_equity": 100_000.0}, "daily_loss_limit"),
        ({}, {"position": 0.17}, "position_limit"),
        ({}, {"cash": 100.0}, "insufficient_cash"),
        ({"side": "SELL"}, {}, "no_position"),
        ({"side": "SELL"}, {"position": 0.00005}, "below_min_notional"),
    ],
)
def test_each_check_rejects_with_its_reason(sig, acc, reason):
    d = assess(signal(**sig), account(**acc), LIMITS, NOW)
    assert not d.approved
    assert d.reason == reason


def test_drawdown_rejection_trips_the_kill_switch():
    d = assess(signal(), account(equity=84_000.0), LIMITS, NOW)
    assert d.halt


def test_buy_is_cut_to_the_room_left_under_the_position_limit():
    # 0.15 BTC held at 60k = 9,000 of 100,000; room is 1,000 of notional
    d = assess(signal(), account(position=0.15), LIMITS, NOW)
    assert d.approved
    assert (0.15 + d.qty) * d.price <= 0.10 * 100_000 + 1e-6


def test_sell_never_exceeds_the_position_and_reducing_allows_it():
    d = assess(signal(side="SELL"), account(position=0.01, trading_state="REDUCING"), LIMITS, NOW)
    assert d.approved
    assert d.qty == pytest.approx(0.01)
    assert d.price == 59999.99


def test_floor_to_step_never_rounds_up():
    assert floor_to_step(0.123456789, 0.00001) == pytest.approx(0.12345)
    assert floor_to_step(0.3, 0.1) == pytest.approx(0.3)

"""The rolling profile counts every trade once and forgets minutes outside the window."""

import numpy as np

from depthflow.aggregator.profile import NS_PER_MIN, RollingProfile


def batch(first, n, minute=0, px=100.5, sell=0.0):
    return (
        np.arange(first, first + n),
        np.full(n, px),
        np.ones(n),
        np.full(n, minute * NS_PER_MIN, dtype=np.int64),
        np.full(n, sell),
    )


def test_duplicate_and_overlapping_batches_count_once():
    p = RollingProfile(1.0, window_min=10)
    assert p.add(*batch(1, 5)) == 5
    assert p.add(*batch(1, 5)) == 0  # redelivered
    assert p.add(*batch(3, 5)) == 2  # overlaps ids 3..5
    px, buy, sell = p.arrays()
    assert px.tolist() == [100.0]
    assert buy.tolist() == [7.0]
    assert sell.tolist() == [0.0]
    assert p.last_trade_id == 7


def test_buy_and_sell_are_kept_apart():
    p = RollingProfile(1.0)
    p.add(*batch(1, 2, sell=1.0))
    p.add(*batch(3, 3, px=101.2))
    px, buy, sell = p.arrays()
    assert px.tolist() == [100.0, 101.0]
    assert buy.tolist() == [0.0, 3.0]
    assert sell.tolist() == [2.0, 0.0]


def test_minutes_older_than_the_window_expire():
    p = RollingProfile(1.0, window_min=3)
    p.add(*batch(1, 4, minute=0))
    p.add(*batch(5, 1, minute=2, px=200.0))
    assert p.trades_in_window == 5
    p.add(*batch(6, 1, minute=3, px=200.0))
    px, buy, _ = p.arrays()
    assert px.tolist() == [200.0]
    assert buy.tolist() == [2.0]
    assert p.trades_in_window == 2

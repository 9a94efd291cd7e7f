"""The per-symbol price guard refuses outliers against a fresh reference, and a stale or bogus
reference never refuses the market for longer than its age limit."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from depthflow.aggregator.guard import PriceGuard, _median

S = 1_000_000_000


def guard() -> PriceGuard:
    return PriceGuard(trade_ratio=1.5, book_ratio=10.0, max_age_ns=60 * S)


def test_trades_far_from_the_reference_are_refused_and_near_ones_pass():
    g = guard()
    g.accept("X", 0, 60_000.0)
    assert g.check_trades("X", S, np.array([59_990.0, 60_010.0]))[0] is None
    why, _ = g.check_trades("X", S, np.array([60_000.0, 10.0]))
    assert why == "trade price 10.0 is more than 1.5x below the reference price 60000.0"
    why, _ = g.check_trades("X", S, np.array([3e6]))
    assert "above the reference price" in str(why)


def test_without_a_fresh_reference_a_batch_is_checked_against_its_own_median():
    g = guard()
    assert g.check_trades("X", 0, np.array([100.0, 101.0, 99.0])) == (None, 100.0)
    why, _ = g.check_trades("X", 0, np.array([100.0, 101.0, 1e9]))
    assert "the batch's median 101.0" in str(why)
    g.accept("X", 0, 10.0)  # a bogus reference ...
    assert g.check_trades("X", 30 * S, np.array([60_000.0]))[0] is not None
    assert g.check_trades("X", 61 * S, np.array([60_000.0]))[0] is None  # ... refuses only until it is stale


def test_books_with_levels_far_from_their_own_mid_are_refused():
    g = guard()
    bids, asks = np.array([99.0, 98.0, 20.0]), np.array([101.0, 102.0])
    assert g.check_book("X", 0, bids, asks) == (None, 100.0)
    why, _ = g.check_book("X", 0, np.array([99.0, 5.0]), asks)
    assert why == "book level 5.0 is more than 10x below the book's mid 100.0"
    assert g.check_book("X", 0, np.array([]), np.array([]))[0] is None
    g.accept("X", 0, 100.0)
    why, _ = g.check_book("X", S, np.array([299.0]), np.array([301.0]))  # a shifted book
    assert "book mid 300.0" in str(why)


def test_real_thin_books_pass_the_default_book_ratio():
    """Binance.US snapshots (tests/data) hold bids up to 116x below the mid: real, not outliers."""
    from depthflow.aggregator.config import AggregatorConfig
    from tests.data import BINANCE_US
    from tests.unit.peaks.test_real_books import snapshots

    cfg = AggregatorConfig()
    g = PriceGuard(cfg.max_trade_ratio, cfg.max_book_ratio, 60 * S)
    books = snapshots(BINANCE_US[0])
    assert sorted(books) == ["BATUSD", "HNTUSD", "MANAUSD", "ZRXUSD"]
    for symbol, book in books.items():
        bids = np.array([float(p) for p, _ in book["bids"]])
        asks = np.array([float(p) for p, _ in book["asks"]])
        assert g.check_book(symbol, 0, bids, asks)[0] is None, symbol


@given(st.lists(st.floats(1e-8, 1e9, allow_nan=False), min_size=1, max_size=60))
def test_the_batch_median_is_numpys(prices):
    px = np.array(prices)
    assert _median(px) == float(np.median(px))
    assert px.tolist() == prices  # the batch is not reordered in place

"""The rolling profile counts every trade once, in any batch order, and keeps each window exact."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.aggregator.bucketing import bucket_keys
from depthflow.aggregator.profile import NS_PER_MIN, IdIntervals, RollingProfile


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
    assert p.duplicates == 8


def test_out_of_order_batches_are_applied_not_dropped():
    p = RollingProfile(1.0, window_min=10)
    p.add(*batch(10, 5, minute=2))
    assert p.add(*batch(1, 5, minute=1)) == 5  # older ids, arriving late, still new
    assert p.add(*batch(1, 5, minute=1)) == 0
    assert p.trades_in_window == 10


def test_buy_and_sell_are_kept_apart():
    p = RollingProfile(1.0)
    p.add(*batch(1, 2, sell=1.0))
    p.add(*batch(3, 3, px=101.2))
    px, buy, sell = p.arrays()
    assert px.tolist() == [100.0, 101.0]
    assert buy.tolist() == [0.0, 3.0]
    assert sell.tolist() == [2.0, 0.0]


def test_minutes_older_than_the_window_expire_and_late_trades_are_dropped():
    p = RollingProfile(1.0, window_min=3)
    p.add(*batch(1, 4, minute=0))
    p.add(*batch(5, 1, minute=2, px=200.0))
    assert p.trades_in_window == 5
    p.add(*batch(6, 1, minute=3, px=200.0))
    px, buy, _ = p.arrays()
    assert px.tolist() == [200.0]
    assert buy.tolist() == [2.0]
    assert p.trades_in_window == 2
    assert p.add(*batch(7, 1, minute=0)) == 0  # too late for any window
    assert p.late == 1


def test_windows_of_1h_4h_24h_48h_hold_their_own_minutes():
    p = RollingProfile(1.0)
    for i, minute in enumerate([0, 1500, 2700, 2820, 2879]):
        p.add(*batch(i + 1, 1, minute=minute, px=100.0 + i))
    assert p.arrays(60)[0].tolist() == [103.0, 104.0]
    assert p.arrays(240)[0].tolist() == [102.0, 103.0, 104.0]
    assert p.arrays(1440)[0].tolist() == [101.0, 102.0, 103.0, 104.0]
    assert p.arrays(2880)[0].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]


trades = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 200), st.floats(90, 110), st.floats(0.01, 5),
              st.booleans()),
    min_size=1, max_size=120, unique_by=lambda t: t[0],
)


@settings(max_examples=150, deadline=None)
@given(trades, st.randoms(use_true_random=False), st.integers(1, 6))
def test_any_batching_and_order_equals_a_direct_sum(rows, rnd, n_batches):
    """Split trades into batches, shuffle, add some twice: every window equals a plain sum."""
    ids = np.array([r[0] for r in rows])
    minute = np.array([r[1] for r in rows])
    px = np.array([r[2] for r in rows])
    qty = np.array([r[3] for r in rows])
    sell = np.array([float(r[4]) for r in rows])
    order = list(range(len(rows)))
    rnd.shuffle(order)
    chunks = np.array_split(np.array(order), n_batches)
    p = RollingProfile(1.0, window_min=120)
    for c in [*chunks, chunks[0]]:
        if c.size:
            p.add(ids[c], px[c], qty[c], minute[c] * NS_PER_MIN, sell[c])
    newest = minute.max()
    for w in p.windows:
        # a trade counts if its minute is inside the final window, unless it arrived after its
        # minute had already left the longest window (late, dropped)
        keep = minute > newest - w
        arrived_late = np.zeros(len(rows), bool)
        seen_newest = -1
        for c in chunks:
            for j in c:
                if minute[j] <= seen_newest - p.window_min:
                    arrived_late[j] = True
            if c.size:
                seen_newest = max(seen_newest, int(minute[c].max()))
        keep &= ~arrived_late
        want_buy = {}
        for j in np.flatnonzero(keep):
            k = int(bucket_keys(px[j : j + 1], 1.0)[0])  # the bucketing rule is tested on its own
            b, s_ = want_buy.get(k, (0.0, 0.0))
            want_buy[k] = (b + (0 if sell[j] else qty[j]), s_ + (qty[j] if sell[j] else 0))
        got_px, got_buy, got_sell = p.arrays(w)
        assert got_px.tolist() == [float(k) for k in sorted(want_buy)]
        assert np.allclose(got_buy, [want_buy[k][0] for k in sorted(want_buy)], atol=1e-9)
        assert np.allclose(got_sell, [want_buy[k][1] for k in sorted(want_buy)], atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 300), max_size=30), max_size=10))
def test_id_intervals_behave_like_a_set(groups):
    iv = IdIntervals()
    seen: set[int] = set()
    for g in groups:
        arr = np.array(g, dtype=np.int64)
        if arr.size:
            assert iv.contains(arr).tolist() == [x in seen for x in g]
        iv.add(arr)
        seen |= set(g)
    assert np.all(iv.starts[1:] > iv.ends[:-1] + 1)
    probe = np.arange(-1, 302)
    assert iv.contains(probe).tolist() == [x in seen for x in probe.tolist()]

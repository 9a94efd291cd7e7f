"""The rolling profile counts every trade once, in any batch order, and keeps each window exact."""

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.aggregator.profile import FORMAT_VERSION, NS_PER_MIN, IdIntervals, RollingProfile
from depthflow.common.checkpoint import IncompatibleState
from depthflow.common.pricing import bucket_keys


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


def readonly(a):
    """``a`` as the handlers pass it: a read-only ``np.frombuffer`` view."""
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=a.dtype)


@st.composite
def deliveries(draw):
    """A trade stream cut into batches and delivered roughly in order: minutes advance by 0, 1,
    across window edges and by long gaps; some batches come late (merged into held minutes or
    dropped), some twice, some as read-only views; the profile is checkpointed once midway."""
    n = draw(st.integers(1, 60))
    steps = st.sampled_from([0, 0, 0, 1, 1, 2, 59, 60, 61, 239, 240, 241, 1439, 1441, 3000])
    minute = np.cumsum(draw(st.lists(steps, min_size=n, max_size=n)))
    # mostly around 100, some far apart: a batch then spans a grid too wide for the counting sort
    price = st.one_of(st.floats(90, 110), st.floats(90, 110), st.floats(1, 20_000))
    px = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    qty = np.array(draw(st.lists(st.floats(0.01, 5), min_size=n, max_size=n)))
    sell = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), float)
    cuts = sorted(draw(st.lists(st.integers(1, n), max_size=12)))
    chunks = [c for c in np.split(np.arange(n), cuts) if c.size]
    rnd = draw(st.randoms(use_true_random=False))
    for i in range(len(chunks) - 1):
        if rnd.random() < 0.3:
            chunks[i], chunks[i + 1] = chunks[i + 1], chunks[i]
    for _ in range(rnd.randrange(3)):
        chunks.insert(rnd.randrange(len(chunks) + 1), rnd.choice(chunks))
    views = [rnd.random() < 0.3 for _ in chunks]
    window_min = draw(st.sampled_from([3, 61, 300, 1500, 2880]))
    checkpoint_at = draw(st.integers(0, len(chunks)))
    return minute, px, qty, sell, chunks, views, window_min, checkpoint_at


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_every_window_equals_a_direct_sum_after_every_batch(case):
    """After each batch, every window holds exactly the applied trades of its minutes."""
    minute, px, qty, sell, chunks, views, window_min, checkpoint_at = case
    ids = np.arange(1, minute.size + 1)
    ts = minute * NS_PER_MIN + 1_000_000
    p = RollingProfile(1.0, window_min=window_min)
    applied: set[int] = set()
    newest, late, duplicates = -1, 0, 0
    for step, (c, view) in enumerate(zip(chunks, views, strict=True)):
        if step == checkpoint_at:
            p = RollingProfile.from_bytes(p.to_bytes())
        batch = [a[c] for a in (ids, px, qty, ts, sell)]
        got = p.add(*(map(readonly, batch) if view else batch))
        fresh = [j for j in c if j + 1 not in applied]
        newest = max([newest, *(int(minute[j]) for j in fresh)])
        kept = [j for j in fresh if minute[j] > newest - window_min]
        applied |= {j + 1 for j in kept}
        late += len(fresh) - len(kept)
        duplicates += c.size - len(fresh)
        assert got == len(kept)
        assert (p.late, p.duplicates) == (late, duplicates)
        for w in p.windows:
            inside = [j for j in sorted(applied) if minute[j - 1] > newest - w]
            want: dict[int, list[float]] = {}
            for j in inside:
                k = int(bucket_keys(px[j - 1 : j], 1.0)[0])
                want.setdefault(k, [0.0, 0.0])[int(sell[j - 1])] += qty[j - 1]
            got_px, got_buy, got_sell = p.arrays(w)
            assert got_px.tolist() == [float(k) for k in sorted(want)]
            assert np.allclose(got_buy, [want[k][0] for k in sorted(want)], rtol=0, atol=1e-9)
            assert np.allclose(got_sell, [want[k][1] for k in sorted(want)], rtol=0, atol=1e-9)
            if w == window_min:
                assert p.trades_in_window == len(inside)
    assert p.last_trade_id == max(applied, default=-1)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 10**7), min_size=1, max_size=50),
    st.sampled_from([(0.01, 100), (0.005, 1000), (0.5, 10), (1.0, 1)]),
)
def test_buckets_follow_the_bucketing_edge_rule(ticks, size_and_scale):
    """Prices on and between bucket edges land where ``bucket_keys`` puts them."""
    size, scale = size_and_scale
    px = np.array([t / scale for t in ticks])  # decimal prices, many exactly on an edge
    p = RollingProfile(size, max_buckets=10**8)  # ranges far wider than a market's: no cap here
    p.add(np.arange(px.size), px, np.ones(px.size), np.zeros(px.size, np.int64), np.zeros(px.size))
    assert p.arrays()[0].tolist() == (np.unique(bucket_keys(px, size)) * size).tolist()


def test_a_checkpoint_restores_the_whole_state():
    p = RollingProfile(0.5, window_min=300)
    p.add(*batch(1, 5, minute=100, px=100.2))
    p.add(*batch(6, 3, minute=340, px=101.7, sell=1.0))
    p.add(*batch(20, 2, minute=30))  # late
    p.add(*batch(1, 2, minute=100))  # duplicates
    q = RollingProfile.from_bytes(p.to_bytes())
    for r in (p, q):
        r.add(*batch(30, 4, minute=420, px=99.9))  # minute 100 leaves every window
    for w in p.windows:
        assert [x.tolist() for x in q.arrays(w)] == [x.tolist() for x in p.arrays(w)]
    assert (q.late, q.duplicates, q.last_trade_id, q.trades_in_window) == (2, 2, 33, 7)


def test_a_checkpoint_of_another_format_version_is_refused():
    blob = msgspec.msgpack.decode(RollingProfile(1.0).to_bytes())
    newer = FORMAT_VERSION + 1
    blob["version"] = newer
    with pytest.raises(IncompatibleState, match=f"format version {newer}.*reads version {FORMAT_VERSION}"):
        RollingProfile.from_bytes(msgspec.msgpack.encode(blob))
    del blob["version"]  # the first format had no version field
    with pytest.raises(IncompatibleState, match=f"format version 1.*reads version {FORMAT_VERSION}"):
        RollingProfile.from_bytes(msgspec.msgpack.encode(blob))


def test_a_batch_with_one_bad_trade_changes_nothing_and_its_retry_applies_the_good_ones():
    """The NaN price once made the whole batch vanish: its ids were recorded before the kernel
    raised, so the retry saw duplicates (5 good + 1 NaN -> 0 applied)."""
    p = RollingProfile(1.0, window_min=10)
    ids, px, qty, ts, side = batch(1, 6)
    for field, bad in (("px", np.nan), ("px", -5.0), ("px", np.inf), ("qty", np.nan), ("qty", -1e6)):
        poisoned = {"px": px.copy(), "qty": qty.copy()}
        poisoned[field][5] = bad
        before = p.to_bytes()
        with pytest.raises(ValueError, match=f"trade {'price' if field == 'px' else 'quantity'}\\[5\\]"):
            p.add(ids, poisoned["px"], poisoned["qty"], ts, side)
        assert p.to_bytes() == before  # no id recorded, no volume, no counter moved
    assert p.add(ids[:5], px[:5], qty[:5], ts[:5], side[:5]) == 5  # the good trades, sent again


def test_the_dense_totals_never_exceed_max_buckets():
    """Two trades at 10 and 3e6 once allocated 183 MB; over the cap the batch is refused whole."""
    p = RollingProfile(1.0, window_min=10, max_buckets=1000)
    p.add(*batch(1, 1, px=60_000.0))
    before = p.to_bytes()
    with pytest.raises(ValueError, match="over max_buckets 1000"):
        p.add(*batch(2, 1, px=3e6))
    with pytest.raises(ValueError, match="over max_buckets 1000"):
        p.add(*batch(2, 1, px=10.0))
    assert p.to_bytes() == before
    p.add(*batch(2, 1, px=60_900.0))  # within the cap: accepted
    assert p.totals.shape[1] <= 1000
    assert p.arrays()[0].tolist() == [60_000.0, 60_900.0]


def test_prices_that_left_the_window_stop_costing_buckets():
    """The totals cover the held minutes' prices, so a market that moves far keeps a bounded width."""
    p = RollingProfile(1.0, window_min=3, max_buckets=500)
    for i in range(20):  # every 5 minutes the price moves 300 buckets: the window never spans 500
        p.add(*batch(1 + i, 1, minute=5 * i, px=100.0 + 300 * i))
        assert p.totals.shape[1] <= 500
    assert p.arrays()[0].tolist() == [100.0 + 300 * 19]


def test_a_poisoned_checkpoint_is_refused_so_the_state_is_rebuilt_from_the_stream():
    """Totals saved with a NaN before inputs were validated would taint 48 h of profiles."""
    p = RollingProfile(1.0, window_min=10)
    p.add(*batch(1, 5))
    p.totals[0, 0, 0] = np.nan
    with pytest.raises(IncompatibleState, match="non-finite or negative totals"):
        RollingProfile.from_bytes(p.to_bytes())


def test_emptied_buckets_of_huge_quantities_leave_no_residue_in_the_profile():
    """Quantities of a sub-cent coin run to 1e9 a trade: the float residue of taking two minutes
    of them out of a window total (here 1.2e-7) is no volume, so the bucket is not listed once
    its minutes left the window. Why relative to the window's volumes: an absolute 1e-12 listed it."""
    p = RollingProfile(1e-8, window_min=120)
    for tid, qty, minute, px in [(1, 1e9 + 0.7, 0, 0.00000101), (2, 1e9 + 0.1, 1, 0.00000101),
                                 (3, 1e9 + 0.7, 62, 0.00000205)]:
        p.add(np.array([tid]), np.array([px]), np.array([qty]), np.array([minute * NS_PER_MIN]), np.zeros(1))
    px, buy, _ = p.arrays(60)  # minutes 0 and 1 have left the 60-minute window
    assert px.tolist() == [0.00000205]
    assert buy.tolist() == [1e9 + 0.7]
    assert p.arrays()[0].tolist() == [0.00000101, 0.00000205]  # both still in the 120-minute one

"""Point of control, value area, volume nodes and vacuums on known answers (the wave peaks and
walls are ``test_wave_peaks.py``'s)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.common.pricing import bucket_edges, bucket_keys
from depthflow.peaks.levels import point_of_control, value_area, volume_nodes
from depthflow.peaks.vacuums import vacuums

# --- point of control -------------------------------------------------------------------------------


def test_point_of_control_ties_go_to_the_middle():
    px = np.arange(10, dtype=float)
    vol = np.array([5, 1, 1, 1, 5, 1, 1, 1, 1, 5], dtype=float)
    assert point_of_control(px, vol) == 4


def test_point_of_control_equally_near_the_middle_goes_to_the_heavier_side():
    px = np.arange(10, dtype=float)  # middle 4.5: rows 4 and 5 are equally near
    vol = np.array([1, 1, 1, 1, 9, 9, 1, 1, 1, 3], dtype=float)
    assert point_of_control(px, vol) == 5
    assert point_of_control(px, vol[::-1].copy()) == 4


def test_point_of_control_equally_near_and_balanced_goes_to_the_lower_price():
    px = np.arange(10, dtype=float)
    vol = np.array([1, 1, 1, 1, 9, 9, 1, 1, 1, 1], dtype=float)
    assert point_of_control(px, vol) == 4


def test_point_of_control_uses_prices_not_positions():
    px = np.array([100.0, 101.0, 102.0, 150.0, 200.0])  # middle 150
    vol = np.array([7.0, 1.0, 1.0, 7.0, 7.0])
    assert point_of_control(px, vol) == 3


def test_point_of_control_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        point_of_control(np.array([]), np.array([]))


# --- value area -------------------------------------------------------------------------------------

# CBOT's example (purebytes amibroker archive 2007, msg07856): total 555, 70 % = 388, POC 106 (150)
CBOT_PX = np.arange(101, 111, dtype=float)
CBOT_VOL = np.array([10, 15, 20, 60, 70, 150, 90, 80, 50, 10], dtype=float)


def test_value_area_one_row_reproduces_the_worked_example():
    poc = point_of_control(CBOT_PX, CBOT_VOL)
    assert CBOT_PX[poc] == 106
    lo, hi = value_area(CBOT_VOL, poc, 0.70, rows=1)
    # +90 (107) = 240, +80 (108) = 320, +70 (105) = 390 >= 388: three steps, 105 to 108
    assert (CBOT_PX[lo], CBOT_PX[hi]) == (105, 108)
    assert CBOT_VOL[lo : hi + 1].sum() == 390


def test_value_area_two_rows_on_the_same_profile():
    poc = point_of_control(CBOT_PX, CBOT_VOL)
    lo, hi = value_area(CBOT_VOL, poc, 0.70, rows=2)
    # 107+108 = 170 beats 105+104 = 130 (320); then 130 beats 109+110 = 60 (450)
    assert (CBOT_PX[lo], CBOT_PX[hi]) == (104, 108)


@pytest.mark.parametrize("rows", [1, 2])
def test_value_area_ties_go_up(rows):
    vol = np.array([1.0, 5.0, 1.0])
    assert value_area(vol, 1, 0.8, rows) == (1, 2)
    assert value_area(vol, 1, 0.9, rows) == (0, 2)


def test_value_area_of_a_dominant_poc_is_the_poc():
    vol = np.array([1.0, 1.0, 100.0, 1.0])
    assert value_area(vol, 2, 0.7) == (2, 2)


def test_value_area_rejects_a_poc_outside_the_profile():
    with pytest.raises(ValueError, match="outside"):
        value_area(np.ones(3), 3)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=200),
    st.floats(0.1, 1.0),
    st.integers(1, 4),
)
def test_value_area_holds_the_fraction_and_contains_the_poc(values, fraction, rows):
    vol = np.array(values)
    px = np.arange(vol.size, dtype=float)
    poc = point_of_control(px, vol)
    assert vol[poc] == vol.max()
    lo, hi = value_area(vol, poc, fraction, rows)
    assert 0 <= lo <= poc <= hi < vol.size
    target, slack = fraction * vol.sum(), 1e-9 * max(1.0, vol.sum())
    assert vol[lo : hi + 1].sum() >= target - slack
    # and no wider than needed: without the rows its last step added, at one end, it falls short
    if (lo, hi) != (poc, poc):
        shorter = []
        if hi > poc:
            shorter.append(vol[lo : hi + 1 - min(rows, hi - poc)].sum())
        if lo < poc:
            shorter.append(vol[lo + min(rows, poc - lo) : hi + 1].sum())
        assert min(shorter) < target + slack, "the value area is wider than the fraction needs"


# --- volume nodes -----------------------------------------------------------------------------------


def test_volume_nodes_are_the_tops_of_humps_and_the_bottom_of_the_trough():
    x = np.arange(100, dtype=float)
    vol = 10 + 50 * np.exp(-0.5 * ((x - 25) / 5) ** 2) + 40 * np.exp(-0.5 * ((x - 70) / 6) ** 2)
    vol[45:50] = [3.0, 2.0, 1.0, 2.0, 3.0]  # a thin band between the humps
    hvn, lvn = volume_nodes(vol)
    assert hvn.tolist() == [25, 70]
    assert lvn.tolist() == [47]


@pytest.mark.parametrize("base", [5.0, 40.0, 400.0])
def test_volume_nodes_of_a_noisy_profile_are_its_humps_and_troughs_not_its_wiggles(base):
    # traded volume is Poisson around its shape: every few buckets a local extremum of noise,
    # which the threshold form reported as nodes by the hundred
    rng = np.random.default_rng(5)
    x = np.arange(2400, dtype=float)
    humps = (300, 900, 1500, 2100)
    shape = base + sum(10 * base * np.exp(-0.5 * ((x - c) / 40) ** 2) for c in humps)
    hvn, lvn = volume_nodes(rng.poisson(shape).astype(float))
    assert len(hvn) == len(humps)
    assert all(abs(h - c) <= 15 for h, c in zip(hvn, humps, strict=True))
    troughs = (600, 1200, 1800)  # half-way between humps, in a flat low ~360 buckets wide
    assert len(lvn) == len(troughs)
    assert all(abs(t - c) <= 180 for t, c in zip(lvn, troughs, strict=True))
    flat_hvn, flat_lvn = volume_nodes(rng.poisson(np.full(2400, base)).astype(float))
    assert flat_hvn.size == flat_lvn.size == 0


def test_volume_nodes_of_a_flat_profile_are_empty():
    hvn, lvn = volume_nodes(np.full(30, 4.0))
    assert hvn.size == lvn.size == 0


# --- vacuums --------------------------------------------------------------------------------------


def test_vacuum_is_a_run_of_thin_buckets_inside_the_range():
    px = np.arange(100.0, 111.0)
    vol = np.full(px.size, 10.0)
    vol[4:7] = [0.0, 2.0, 1.0]  # 104..106: at most 0.2 x the median of 10
    vol[8] = 2.5  # one thin bucket alone is no vacuum
    assert vacuums(px, vol, 1.0, 100.0, 111.0, alpha=0.2, min_run=3) == [(104.0, 107.0)]
    assert vacuums(px, vol, 1.0, 100.0, 111.0, alpha=0.2, min_run=4) == []


def test_missing_buckets_inside_the_range_are_empty_but_nothing_outside_is():
    px = np.array([100.0, 101.0, 102.0, 106.0, 107.0, 108.0])  # 103..105 absent
    vol = np.full(px.size, 5.0)
    # the snapshot covers only 100..109: the prices below and above are unknown, not empty
    assert vacuums(px, vol, 1.0, 100.0, 109.0) == [(103.0, 106.0)]
    # a wider known range makes the absent prices beyond the data known-empty
    assert vacuums(px, vol, 1.0, 96.0, 112.0) == [(96.0, 100.0), (103.0, 106.0), (109.0, 112.0)]


def test_vacuums_are_clipped_to_the_known_range_and_skip_partial_buckets():
    px = np.arange(100.0, 121.0)
    vol = np.full(px.size, 5.0)
    vol[2:19] = 0.0  # 102..118 thin
    out = vacuums(px, vol, 1.0, 104.5, 110.2)
    assert out == [(105.0, 110.0)]  # buckets 104 and 110 are only partly inside the range


def test_vacuums_over_a_huge_range_do_not_build_a_grid():
    px = np.array([10.0, 11.0, 5e8])
    vol = np.array([3.0, 3.0, 3.0])
    out = vacuums(px, vol, 1.0, 0.0, 1e9)
    assert out == [(0.0, 10.0), (12.0, 5e8), (5e8 + 1, 1e9)]


def test_vacuums_put_each_level_in_its_own_bucket_by_the_aggregators_rule():
    # a thousand consecutive cent buckets at BTC prices, labelled as the aggregator labels them;
    # the former rule (round to 9 decimals of a bucket) put 40 of them one bucket too low, which
    # left their own bucket empty: a vacuum that is not there
    keys = np.arange(6_000_000, 6_001_000)
    px = bucket_edges(keys, 0.01)
    assert vacuums(px, np.ones(px.size), 0.01, px[0], px[-1] + 0.01, alpha=0.2, min_run=1) == []


def test_vacuums_on_degenerate_input_are_empty():
    assert vacuums(np.array([]), np.array([]), 1.0, 5.0, 5.0) == []
    assert vacuums(np.array([1.0]), np.array([1.0]), 0.0, 0.0, 10.0) == []
    assert vacuums(np.array([1.0]), np.array([1.0]), 1.0, 10.0, 0.0) == []
    assert vacuums(np.array([1.0]), np.array([1.0]), 1.0, float("nan"), 10.0) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.floats(0, 100, allow_nan=False)), max_size=60),
    st.floats(-5, 70),
    st.floats(0, 40),
    st.floats(0.0, 1.0),
    st.integers(1, 5),
    st.booleans(),
)
def test_vacuums_stay_inside_the_known_range_and_match_a_dense_reference(rows, lo, width, alpha, run, raw):
    """``raw``: the rows as drawn (any order, keys repeated: summed); else one per key, ascending."""
    size = 0.5
    if not raw:
        rows = sorted(dict(rows).items())
    keys = [k for k, _ in rows]
    px = np.array(keys, dtype=float) * size
    vol = np.array([q for _, q in rows], dtype=float)
    hi = lo + width
    got = vacuums(px, vol, size, lo, hi, alpha, run)
    for a, b in got:
        assert lo <= a < b <= hi
    # reference on a dense grid of the buckets wholly inside [lo, hi]
    k0, k1 = int(bucket_keys(lo, size)), int(bucket_keys(hi, size)) - 1
    k0 += bool(bucket_edges(k0, size) < lo)  # the bucket holding lo is inside only from its edge
    if k1 < k0:
        assert got == []
        return
    dense = np.zeros(k1 - k0 + 1)
    for k, q in zip(keys, vol, strict=True):
        if k0 <= k <= k1:
            dense[k - k0] += q
    thin = dense <= alpha * np.median(dense)
    want, start = [], None
    for i, t in enumerate([*thin.tolist(), False]):
        if t and start is None:
            start = i
        elif not t and start is not None:
            if i - start >= run:
                want.append((max(bucket_edges(k0 + start, size), lo), min(bucket_edges(k0 + i, size), hi)))
            start = None
    assert len(got) == len(want)
    assert np.allclose(np.ravel(got), np.ravel(want))

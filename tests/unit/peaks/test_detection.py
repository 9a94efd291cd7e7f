"""Peak detectors, point of control, value area, volume nodes and vacuums on known answers.

Besides hand-made profiles, each spec'd detector is checked against a few-line numpy reference of
its formula on arbitrary profiles, so the numba kernels cannot drift from the definitions.
"""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from depthflow.common.pricing import bucket_edges, bucket_keys
from depthflow.peaks.detectors import (
    Peak,
    combined_peaks,
    detect,
    normal_peaks,
    ratio_peaks,
    robust_peaks,
)
from depthflow.peaks.levels import point_of_control, value_area, volume_nodes
from depthflow.peaks.params import PeakParams
from depthflow.peaks.vacuums import vacuums

volumes = hnp.arrays(
    np.float64,
    st.integers(0, 300),
    elements=st.one_of(st.just(0.0), st.floats(0, 1e6, allow_nan=False, allow_infinity=False)),
)


def plateau_maxima(v: np.ndarray) -> list[tuple[int, int]]:
    """Reference local maxima as (index, plateau start): strictly above the left neighbour, not
    below the right one, edges as -inf, a plateau once at its middle (left of centre)."""
    out = []
    i, n = 0, v.size
    while i < n:
        j = i
        while j + 1 < n and v[j + 1] == v[i]:
            j += 1
        if (i == 0 or v[i - 1] < v[i]) and (j == n - 1 or v[j + 1] < v[i]):
            out.append(((i + j) // 2, i))
        i = j + 1
    return out


def local_maxima(v: np.ndarray) -> list[int]:
    return [c for c, _ in plateau_maxima(v)]


# --- normal ---------------------------------------------------------------------------------------


def test_planted_peaks_are_found_with_their_zone():
    vol = np.ones(100)
    vol[30:33] = [10, 20, 10]
    vol[70] = 30
    peaks = normal_peaks(vol, z_min=1.5, min_relative_volume=2.0)
    assert [p.index for p in peaks] == [31, 70]
    assert (peaks[0].low_index, peaks[0].high_index) == (30, 32)
    assert all(0.5 <= p.confidence <= 1.0 for p in peaks)


def test_flat_or_tiny_profiles_have_no_peaks():
    for detector in (normal_peaks, ratio_peaks, robust_peaks, combined_peaks):
        assert detector(np.ones(50)) == []
        assert detector(np.zeros(50)) == []
        assert detector(np.array([1.0, 9.0])) == []
        assert detector(np.array([])) == []


def test_the_volume_floor_is_relative_to_the_profiles_own_volume():
    vol = np.full(50, 0.1)
    vol[10] = 4.0  # 22.5x the mean non-empty bucket (0.178)
    for detector in (normal_peaks, robust_peaks):
        assert detector(vol, z_min=1.5, min_relative_volume=23.0) == []
        assert [p.index for p in detector(vol, z_min=1.5, min_relative_volume=22.0)] == [10]
    # the same book in other units (5 BTC is not 5 DOT): the same peaks, the same confidences
    for detector in (normal_peaks, ratio_peaks, robust_peaks, combined_peaks):
        want = detector(vol)
        assert want, detector
        for scale in (1e-6, 1e3):
            got = detector(vol * scale)
            assert [p[:1] + p[2:4] for p in got] == [p[:1] + p[2:4] for p in want], (detector, scale)
            assert [p.confidence for p in got] == pytest.approx([p.confidence for p in want], rel=1e-6)


def test_weights_make_the_statistics_local():
    # a thick far region inflates the unweighted mean; weighting the near region finds the peak
    vol = np.concatenate((np.full(50, 1.0), np.full(50, 40.0)))
    vol[20] = 12.0
    assert 20 not in [p.index for p in normal_peaks(vol)]
    weights = np.concatenate((np.ones(50), np.full(50, 1e-6)))
    assert 20 in [p.index for p in normal_peaks(vol, weights)]


def test_weights_must_match_the_profile():
    with pytest.raises(ValueError, match="differ in length"):
        normal_peaks(np.ones(10), np.ones(9))


@settings(max_examples=200, deadline=None)
@given(volumes, st.floats(0.0, 3.0), st.booleans())
def test_normal_matches_its_formula(vol, z_min, weighted):
    w = np.linspace(1.0, 0.1, vol.size) if weighted else np.ones(vol.size)
    peaks = normal_peaks(vol, w if weighted else None, z_min, 0.0)
    if vol.size < 3:
        assert peaks == []
        return
    mu = (w * vol).sum() / w.sum()
    sd = np.sqrt((w * (vol - mu) ** 2).sum() / w.sum())
    if sd <= 1e-9 * max(1.0, abs(mu)):
        return  # rounding decides whether a flat profile has a spread at all
    z = (vol - mu) / sd
    want = [i for i in local_maxima(vol) if z[i] >= z_min + 1e-9]
    got = {p.index: p.score for p in peaks}
    assert set(want) <= set(got)
    assert set(got) <= {i for i in local_maxima(vol) if z[i] >= z_min - 1e-9}
    for i, s in got.items():
        assert s == pytest.approx(z[i], rel=1e-6, abs=1e-9)


# --- ratio ----------------------------------------------------------------------------------------


def test_ratio_needs_twice_the_neighbours_and_the_minimum_volume():
    vol = np.full(20, 2.0)
    vol[5] = 5.0  # 2.5x its neighbours
    vol[12] = 3.9  # 1.95x: not enough
    vol[16] = 4.5  # 2.25x, but under the minimum volume: 1.95x the mean non-empty bucket (2.37)
    peaks = ratio_peaks(vol, ratio=2.0, min_relative_volume=1.95, neighbours=2)
    assert [p.index for p in peaks] == [5]
    assert peaks[0].score == pytest.approx(2.5)


def test_ratio_treats_a_wall_next_to_nothing_as_infinitely_high():
    vol = np.zeros(9)
    vol[4] = 6.0
    (peak,) = ratio_peaks(vol)
    assert peak.index == 4
    assert peak.score == np.inf
    assert peak.confidence == 1.0


@settings(max_examples=200, deadline=None)
@given(volumes, st.floats(1.0, 4.0), st.integers(1, 4))
def test_ratio_matches_its_formula(vol, ratio, nb):
    got = {p.index for p in ratio_peaks(vol, ratio, 0.0, nb)}
    if vol.size < 3:
        assert got == set()
        return
    sure, maybe = set(), set()  # clearly over the ratio; within rounding of it
    for c, start in plateau_maxima(vol):
        lo = max(0, c - nb)
        window = vol[lo : c + nb + 1]
        if vol[c] < window.max() or (vol[lo:start] == vol[c]).any():
            continue  # not the (first) highest within the neighbourhood
        mean = np.delete(window, c - lo).mean()
        with np.errstate(over="ignore"):
            r = vol[c] / mean if mean > 0 else (np.inf if vol[c] > 0 else 0.0)
        if r >= ratio * (1 + 1e-9):
            sure.add(c)
        if r >= ratio * (1 - 1e-9):
            maybe.add(c)
    assert sure <= got <= maybe


# --- robust ---------------------------------------------------------------------------------------


def test_robust_sees_a_peak_that_a_giant_wall_hides_from_the_normal_method():
    vol = 1.0 + (np.arange(100) % 3)  # median 2, MAD 1
    vol[20] = 1000.0
    vol[60] = 12.0
    assert [p.index for p in normal_peaks(vol, z_min=1.5)] == [20]
    peaks = robust_peaks(vol, z_min=3.5)
    assert [p.index for p in peaks] == [20, 60]
    assert peaks[1].score == pytest.approx(0.6745 * (12 - 2) / 1)


def test_robust_falls_back_to_the_mean_absolute_deviation_when_the_mad_is_zero():
    vol = np.ones(100)
    vol[50] = 20.0
    vol[10] = 3.0
    mean_ad = (19 + 2) / 100
    peaks = robust_peaks(vol, z_min=3.5, min_relative_volume=0)
    assert [p.index for p in peaks] == [10, 50]
    assert peaks[1].score == pytest.approx(19 / (1.253314 * mean_ad))
    assert [p.index for p in robust_peaks(vol, z_min=3.5, min_relative_volume=3.0)] == [50]


@settings(max_examples=200, deadline=None)
@given(volumes, st.floats(0.5, 6.0))
def test_robust_matches_its_formula(vol, z_min):
    got = {p.index: p.score for p in robust_peaks(vol, z_min, 0.0)}
    if vol.size < 3:
        assert got == {}
        return
    med = np.median(vol)
    mad = np.median(np.abs(vol - med))
    scale = mad / 0.6745 if mad > 0 else 1.253314 * np.abs(vol - med).mean()
    if scale <= 0:
        assert got == {}
        return
    with np.errstate(over="ignore"):
        m = (vol - med) / scale
    assert {i for i in local_maxima(vol) if m[i] > z_min * (1 + 1e-9)} <= set(got)
    for i, s in got.items():
        assert s == pytest.approx(m[i], rel=1e-6)


# --- combined ---------------------------------------------------------------------------------------


def noisy_profile(seed: int, n: int = 600) -> tuple[np.ndarray, list[int]]:
    """A thick, trending baseline of Poisson trade counts with five planted peaks of various widths."""
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=float)
    lam = 40 + 30 * x / n
    planted = [60, 150, 290, 300, 480]  # 290/300: a close pair
    for c, w, a in zip(planted, (1.0, 3.0, 1.5, 1.5, 4.0), (60, 50, 70, 70, 45), strict=True):
        lam += a * np.exp(-0.5 * ((x - c) / w) ** 2)
    return rng.poisson(lam).astype(float), planted


@pytest.mark.parametrize("seed", range(5))
def test_combined_finds_planted_peaks_in_noise_and_nothing_else(seed):
    vol, planted = noisy_profile(seed)
    found = [p.index for p in combined_peaks(vol)]
    assert len(found) == len(planted)
    for want, got in zip(planted, found, strict=True):
        assert abs(want - got) <= 2


def test_combined_finds_a_one_bucket_wall_despite_smoothing():
    vol = np.full(200, 0.2)
    vol[100] = 10.0
    (peak,) = combined_peaks(vol)
    assert peak.index == 100
    assert peak.low_index <= 100 <= peak.high_index
    # the volume floor applies to the raw bucket, not to the smoothed profile: 10 is 40x the mean
    assert combined_peaks(vol, params=PeakParams(min_relative_volume=39.0))
    assert combined_peaks(vol, params=PeakParams(min_relative_volume=41.0)) == []


def test_combined_confidence_uses_the_weights():
    vol, _ = noisy_profile(1)
    near_first = np.exp(-np.arange(vol.size) / 50.0)
    params = PeakParams(z_min=5.0)  # so that the z-score's confidence is not capped at 1
    a = {p.index: p for p in combined_peaks(vol, None, params)}
    b = {p.index: p for p in combined_peaks(vol, near_first, params)}
    assert a.keys() == b.keys()  # weights shape the confidence, not what is found
    assert any(a[i].confidence != b[i].confidence for i in a)


def test_detect_dispatches_on_the_method_name():
    vol, _ = noisy_profile(2)
    for method, fn in (("normal", normal_peaks), ("ratio", ratio_peaks), ("robust", robust_peaks)):
        assert detect(vol, None, PeakParams(method=method)) == fn(vol)
    assert detect(vol) == combined_peaks(vol)
    with pytest.raises(ValueError, match="unknown peak method"):
        detect(vol, None, PeakParams(method="magic"))


def _between_two_walls() -> np.ndarray:
    # smoothed, the top between walls at 33 and 36 falls on the empty buckets 34-35; a near-zero
    # noise scale (one subnormal bucket) lets that top pass the prominence test
    vol = np.zeros(44)
    vol[[0, 32, 33, 36, 42]] = [3.34625854e-44, 5.0, 11161.0, 5716.0, 105842.0]
    return vol


@settings(max_examples=200, deadline=None)
@given(volumes, st.sampled_from(["normal", "ratio", "robust", "combined"]), st.floats(0.0, 3.0))
@example(_between_two_walls(), "combined", 2.5)
def test_every_detector_returns_sane_peaks_on_any_profile(vol, method, smooth):
    params = replace(PeakParams(method=method, min_relative_volume=0.0), smooth=smooth)
    peaks = detect(vol, None, params)
    assert all(isinstance(p, Peak) for p in peaks)
    assert [p.index for p in peaks] == sorted({p.index for p in peaks})
    for p in peaks:
        assert 0 <= p.low_index <= p.index <= p.high_index < vol.size
        assert 0.0 <= p.confidence <= 1.0
        assert vol[p.low_index : p.high_index + 1].max() > 0


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
    assert vol[lo : hi + 1].sum() >= fraction * vol.sum() - 1e-9 * max(1.0, vol.sum())


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

"""``find_wave_peaks``: wave peaks and walls of one profile, its input checks, and its
properties (volume scale and price shift change nothing else; a one-bucket spike is a wall)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from depthflow.peaks import PeakParams, find_wave_peaks


def hump(n: int, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((np.arange(n) - centre) / width) ** 2)


def book_side(seed: int, n: int = 900) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """A decaying book background (thick near the mid, thin far away) with multiplicative noise,
    three humps of different widths and two walls, one beside a hump."""
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=float)
    background = 400.0 * np.exp(-x / 250.0) + 4.0
    clean = background.copy()
    humps = [(120, 2.0), (400, 4.0), (700, 8.0)]
    for c, w in humps:
        clean += 3.0 * background[c] * hump(n, c, w)
    vol = clean * rng.lognormal(-0.045, 0.3, n)  # noise proportional to the level
    walls = [300, 400 + 16]  # the second stands beside the hump at 400, clear of its flank
    for w in walls:
        vol[w] = 15.0 * background[w]
    return 10_000.0 + 0.5 * x, vol, humps, walls


@pytest.mark.parametrize("seed", range(6))
def test_humps_are_wave_peaks_and_spikes_are_walls_on_multiplicative_noise(seed):
    px, vol, humps, walls = book_side(seed)
    found = find_wave_peaks(px, vol)
    assert len(found.peaks) == len(humps)
    for (want, width), got in zip(humps, found.peaks, strict=True):
        assert abs(got.index - want) <= max(3.0, width)  # a wide hump's top is found within its width
        assert got.low <= got.price < got.high
        assert got.price == px[got.index]
    found_walls = [w.index for w in found.walls]
    assert set(walls) <= set(found_walls)
    # strong multiplicative noise makes walls of its own (wall precision is the accuracy bench's
    # figure), but each is a spike in the data: twice its 20-bucket neighbourhood or more
    for i in found_walls:
        assert vol[i] >= 2.0 * vol[max(i - 10, 0) : i + 10].mean(), f"wall at {i} is no spike"
    assert all(abs(p.index - w) > 1 for p in found.peaks for w in walls)
    for w in found.walls:
        if w.index in walls:  # one bucket, lower edge to upper
            assert (w.low, w.high) == (px[w.index], px[w.index] + 0.5)
        assert 0.0 <= w.confidence <= 1.0


def test_a_hump_with_a_noisy_top_is_one_peak_and_two_humps_are_two():
    n = 300
    rng = np.random.default_rng(3)
    vol = 50.0 + 400.0 * hump(n, 100, 6.0) + rng.normal(0.0, 3.0, n)
    vol[97:104] += [9.0, -9.0, 9.0, -9.0, 9.0, -9.0, 9.0]  # ragged top: several local maxima
    vol += 300.0 * (hump(n, 200, 3.0) + hump(n, 218, 3.0))  # a double hump, a clear dip between
    found = find_wave_peaks(np.arange(n, dtype=float), vol)
    idx = [p.index for p in found.peaks]
    assert len(idx) == 3
    assert abs(idx[0] - 100) <= 3
    assert abs(idx[1] - 200) <= 1
    assert abs(idx[2] - 218) <= 1
    assert found.walls == []


def test_a_bump_on_a_humps_top_is_that_hump_and_a_narrow_hump_beside_it_is_its_own():
    n = 300
    x = np.arange(n).astype(float)

    def with_bump(centre: float, height: float) -> list:
        rng = np.random.default_rng(3)
        vol = 50 + 1000 * hump(n, 100, 6.0) + height * hump(n, centre, 1.0) + rng.normal(0.0, 3.0, n)
        return list(find_wave_peaks(x, vol).peaks)

    # a narrow bump near the top of a broad hump, or a small one on its flank, makes a second
    # maximum, prominent on its own, inside the hump's half-prominence zone with no dip below
    # half its height between them: one hump, reported once
    for centre, height in ((102, 800.0), (107, 300.0)):
        (peak,) = with_bump(centre, height)
        assert peak.low_index <= 100 <= peak.high_index
        assert peak.low_index <= centre <= peak.high_index
    # a narrow hump standing far out on the flank, the profile dipping below half its height
    # between it and the top: the smaller of a close pair, reported as its own (narrow) wave
    broad, narrow = with_bump(107, 800.0)
    assert broad.low_index <= 100 <= broad.high_index
    assert (narrow.index, narrow.low_index, narrow.high_index) == (107, 106, 107)


def test_noise_that_grows_with_the_level_is_judged_by_the_level():
    # a thin floor then a thick shelf (100x), noise proportional to the volume: the blocks near the
    # step pool the thin side's small noise with the thick side's, and without scaling the noise
    # with the level the thick side's noise maxima there pass for peaks (27 waves in these 20
    # profiles; 34 with the narrow waves, which scale their noise the same way)
    n = 800
    x = np.arange(n)

    def found(**kw) -> int:
        total = 0
        for seed in range(20):
            vol = np.where(x < 400, 20.0, 2000.0) * np.random.default_rng(seed).lognormal(-0.08, 0.4, n)
            total += len(find_wave_peaks(x.astype(float), vol, **kw).peaks)
        return total

    assert found(narrow_z=0.0) <= 10
    assert 2 * found() <= found(level_noise=0.0)


def test_the_docstring_example():
    prices = 100.0 + 0.5 * np.arange(60)
    volumes = np.full(60, 10.0)
    volumes[20:25] += [15, 40, 60, 40, 15]
    volumes[45] = 90.0
    found = find_wave_peaks(prices, volumes)
    assert [(p.index, p.price) for p in found.peaks] == [(22, 111.0)]
    assert [(w.index, w.price) for w in found.walls] == [(45, 122.5)]
    assert (found.peaks[0].low, found.peaks[0].high) == (109.5, 113.0)  # buckets 19-25


@pytest.mark.parametrize("seed", range(5))
def test_a_lone_level_under_the_wall_rule_is_neither_wall_nor_wave(seed):
    rng = np.random.default_rng(seed)
    vol = rng.poisson(100.0, 300).astype(float)
    vol[150] = 1600.0  # 16x its neighbours, ~60 noise units over them: a wall only below wall_z 60
    px = 10_000.0 + 0.5 * np.arange(300.0)
    found = find_wave_peaks(px, vol, wall_z=100.0)
    assert (len(found.peaks), len(found.walls)) == (0, 0)
    # the spike test alone (the clump test, top_share, would drop its hump too)
    found = find_wave_peaks(px, vol, wall_z=100.0, top_share=1.0)
    assert (len(found.peaks), len(found.walls)) == (0, 0)
    kept = find_wave_peaks(px, vol, wall_z=100.0, spike_ratio=0.0, top_share=1.0)  # without either: a wave
    assert [p.index for p in kept.peaks] == [150]


@pytest.mark.parametrize("seed", range(5))
def test_a_clump_of_two_big_levels_is_no_wave_and_a_hump_of_as_much_volume_is(seed):
    # a sparse stretch (a level every few ticks) where two adjacent levels hold big orders: the
    # smoothing makes them a hump, but they hold most of its zone's volume (a clump of orders,
    # not volume accepted over a range), and the bigger holds more than half of its three levels
    # (no narrow wave either); the same volume spread over a hump is a wave
    rng = np.random.default_rng(seed)
    n = 300
    vol = np.where(rng.random(n) < 0.5, rng.lognormal(0.0, 0.5, n), 0.0)
    vol[100:102] = [70.0, 50.0]
    vol += 120.0 * hump(n, 200, 2.0) / hump(n, 200, 2.0).sum()  # 120 spread over a hump
    px = 10_000.0 + 0.5 * np.arange(float(n))
    found = find_wave_peaks(px, vol, wall_z=100.0)
    assert [p.index for p in found.peaks] == [200]
    kept = find_wave_peaks(px, vol, wall_z=100.0, top_share=1.0)  # without the test: a wave too
    assert [p.index for p in kept.peaks] in ([100, 200], [101, 200])


def test_a_narrow_hump_is_a_wave_only_where_it_stands_out_of_the_lumps_around_it():
    # three levels shaped as a hump (half width 1, 4 noise deviations at the top) on a Poisson
    # floor, 30 draws: the wave search's smoothing leaves it under its bar in most (found in 7),
    # the narrow look finds it in 14; among lumps as big as itself (every 12 buckets) it is one
    # more lump, and it is never reported
    n = 400
    px = 10_000.0 + 0.5 * np.arange(float(n))

    def hits(vol: np.ndarray, **kw) -> bool:
        return any(abs(p.index - 200) <= 2 for p in find_wave_peaks(px, vol, **kw).peaks)

    found = alone = among_lumps = 0
    for seed in range(30):
        vol = np.random.default_rng(seed).poisson(100.0, n).astype(float)
        vol[199:202] += [20.0, 40.0, 20.0]
        found += hits(vol)
        alone += hits(vol, narrow_z=0.0)
        if hits(vol) and not hits(vol, narrow_z=0.0):  # the narrow look's: a narrow zone
            (p,) = [p for p in find_wave_peaks(px, vol).peaks if abs(p.index - 200) <= 2]
            assert 197 <= p.low_index <= p.index <= p.high_index <= 203
            assert p.high_index - p.low_index <= 4
            assert 0.5 <= p.confidence <= 1.0
        lumpy = vol.copy()
        for c in range(26, n - 20, 12):
            lumpy[c - 1 : c + 2] += [20.0, 40.0, 20.0]
        among_lumps += hits(lumpy)
    assert (found, alone, among_lumps) == (14, 7, 0)


def test_a_humps_own_height_raises_its_noise_bar_only_so_far():
    # a shelf of levels (alternating 0.4 / 1.6: a known noise scale) in an empty stretch, a
    # narrow hump on it: the local mean level counts the empty buckets, so the hump stands many
    # times over it; uncapped, the level factor (ratio ** level_noise) made its own height its
    # noise bar, and a hump 8x the shelf was not prominent enough
    n = 400
    x = np.arange(n)
    vol = np.where((x >= 140) & (x < 260), 1.0 + 0.6 * (-1.0) ** x, 0.0) + 8.0 * hump(n, 200, 2.0)
    px = x.astype(float)
    wide = {"prominence_z": 2.5, "narrow_z": 0.0}  # the wave search's bar (the narrow look has its own)
    assert [p.index for p in find_wave_peaks(px, vol, **wide).peaks] == [200]
    assert find_wave_peaks(px, vol, **wide, level_cap=0.0).peaks == []


def test_a_two_bucket_wall_is_one_wall():
    vol = np.full(100, 10.0) + np.sin(np.arange(100))
    vol[50:52] = [200.0, 180.0]
    (wall,) = find_wave_peaks(np.arange(100.0), vol).walls
    assert (wall.index, wall.low_index, wall.high_index) == (50, 50, 51)


def test_tiny_flat_and_empty_profiles_have_nothing():
    for vol in (np.ones(50), np.zeros(50), np.array([1.0, 9.0]), np.empty(0)):
        found = find_wave_peaks(np.arange(vol.size, dtype=float), vol)
        assert (len(found.peaks), len(found.walls)) == (0, 0)


def test_overrides_are_named_like_the_params_and_unknown_names_are_refused():
    px, vol, _, _ = book_side(1)
    assert len(find_wave_peaks(px, vol, prominence_z=1e9, narrow_z=1e9).peaks) == 0
    assert len(find_wave_peaks(px, vol, wall_z=1e9).walls) == 0
    assert find_wave_peaks(px, vol, params=PeakParams(), wall_z=1e9).walls == []
    with pytest.raises(TypeError, match="prominance_z, walls_z"):
        find_wave_peaks(px, vol, prominance_z=3.0, walls_z=2.0)


@pytest.mark.parametrize(("override", "message"), [
    ({"level_cap": 0.5}, r"level_cap must be 0 \(no cap\) or at least 1, was 0\.5"),
    ({"level_noise": -0.5}, r"level_noise must not be negative, was -0\.5"),
])
def test_a_level_factor_that_would_shrink_the_noise_is_refused(override, message):
    # the candidate prefilters bound a noise scale by the block's: a factor under 1 breaks them
    px, vol, _, _ = book_side(1)
    with pytest.raises(ValueError, match=message):
        find_wave_peaks(px, vol, **override)
    for fine in ({"level_cap": 0.0}, {"level_cap": 1.0}, {"level_noise": 0.0}):
        find_wave_peaks(px, vol, **fine)


def test_the_config_refuses_a_level_cap_under_1_naming_it():
    from depthflow.common.config import ConfigError, load_config
    from depthflow.peaks.config import PeaksConfig

    env = {"DEPTHFLOW_NATS_URL": "nats://127.0.0.1:1", "DEPTHFLOW_PEAKS_DETECTION__LEVEL_CAP": "0.5"}
    with pytest.raises(ConfigError, match=r"level_cap must be 0 \(no cap\) or at least 1"):
        load_config(PeaksConfig, "peaks", env)
    env["DEPTHFLOW_PEAKS_DETECTION__LEVEL_CAP"] = "2"
    assert load_config(PeaksConfig, "peaks", env).params().level_cap == 2.0


@pytest.mark.parametrize(
    ("prices", "volumes", "message"),
    [
        ([1.0, 2.0, 4.0], [1.0, 1.0, 1.0], "equally spaced"),
        ([3.0, 2.0, 1.0], [1.0, 1.0, 1.0], "strictly ascending"),
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], "strictly ascending"),
        ([1.0, np.nan, 3.0], [1.0, 1.0, 1.0], r"prices must be finite, prices\[1\]"),
        ([1.0, 2.0, 3.0], [1.0, -1.0, 1.0], r"volumes must be finite and >= 0, volumes\[1\]"),
        ([1.0, 2.0, 3.0], [1.0, np.inf, 1.0], "volumes must be finite"),
        ([1.0, 2.0, 3.0], [1.0, 1.0], "differ in length"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_a_profile_that_is_not_one_is_refused_saying_why(prices, volumes, message):
    with pytest.raises(ValueError, match=message):
        find_wave_peaks(np.array(prices), np.array(volumes))


# --- properties -------------------------------------------------------------------------------------


@st.composite
def profiles(draw: st.DrawFn) -> np.ndarray:
    """Anything from a noisy book side with humps and spikes to arbitrary non-negative volumes."""
    if draw(st.booleans()):  # normal floats: a subnormal volume scaled down is lost, not scaled
        return draw(hnp.arrays(np.float64, st.integers(0, 300),
                               elements=st.one_of(st.just(0.0), st.floats(1e-200, 1e6))))
    n = draw(st.integers(50, 600))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    level = 10 ** draw(st.floats(-3, 6))
    x = np.arange(n)
    clean = level * (np.exp(-x / draw(st.floats(20, 500))) + draw(st.floats(0.0, 1.0)))
    for _ in range(draw(st.integers(0, 4))):
        clean += level * draw(st.floats(0.5, 5)) * hump(n, draw(st.floats(0, n)), draw(st.floats(0.5, 10)))
    return clean * rng.lognormal(0.0, draw(st.floats(0.0, 0.8)), n)


def signature(found) -> tuple:
    return tuple((p.index, p.low_index, p.high_index) for p in found.peaks), tuple(
        (w.index, w.low_index, w.high_index) for w in found.walls
    )


@settings(max_examples=150, deadline=None)
@given(profiles(), st.sampled_from([1e-9, 1e-3, 0.37, 3.0, 1024.0, 7.7e5, 1e9]))
def test_scaling_the_volumes_changes_nothing(vol, factor):
    px = np.arange(vol.size, dtype=float)
    want, got = find_wave_peaks(px, vol), find_wave_peaks(px, vol * factor)
    assert signature(got) == signature(want)
    for a, b in ((want.peaks, got.peaks), (want.walls, got.walls)):
        np.testing.assert_allclose(b.confidences, a.confidences, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.scores, a.scores, rtol=1e-9)


@settings(max_examples=150, deadline=None)
@given(profiles(), st.sampled_from([0.01, 0.5, 1.0]), st.floats(-1e4, 1e6))
def test_shifting_the_prices_shifts_peaks_and_walls_and_nothing_else(vol, step, shift):
    px = 1e4 + step * np.arange(vol.size)
    want, got = find_wave_peaks(px, vol), find_wave_peaks(px + shift, vol)
    assert signature(got) == signature(want)
    for a, b in ((want.peaks, got.peaks), (want.walls, got.walls)):
        for p, q in zip(a, b, strict=True):
            want_px = [p.price + shift, p.low + shift, p.high + shift]
            np.testing.assert_allclose([q.price, q.low, q.high], want_px, rtol=1e-12, atol=1e-6 * step)
            assert (q.confidence, q.score) == (p.confidence, p.score)


@settings(max_examples=150, deadline=None)
@given(profiles(), st.floats(0.05, 0.95), st.floats(20.0, 1e3))
def test_a_one_bucket_spike_is_a_wall_not_a_peak(vol, where, height):
    n = vol.size
    if n < 30 or not vol.max() > 0:
        return
    i = int(where * (n - 20)) + 10
    around = np.median(vol[i - 10 : i + 11])
    assume(max(vol[i - 1], vol[i + 1]) <= 1.2 * around)  # a wall's neighbours lie near the background
    spiked = vol.copy()
    nonzero = vol[vol > 0].mean()  # so that the spike clears the volume floor, a multiple of it
    spiked[i] = height * max(vol[max(i - 10, 0) : i + 11].max(), nonzero)
    before = {p.index for p in find_wave_peaks(np.arange(n, dtype=float), vol).peaks}
    found = find_wave_peaks(np.arange(n, dtype=float), spiked)
    assert i in [w.index for w in found.walls]
    assert {p.index for p in found.peaks if abs(p.index - i) <= 1} <= before  # no peak came with it


@pytest.mark.parametrize("width", [1, 2])
def test_a_clear_but_small_order_is_neither_wall_nor_peak_and_a_big_one_is_a_wall(width):
    """A level standing far out of the noise (here ~6 noise units) but holding 3x the mean of the
    other levels is a lone level: no wall, and no wave either (it is taken out of the wave search,
    or the smoothing makes a two-bucket one a hump). At 5x it is a wall; ``wall_min_relative``
    is what decides."""
    rng = np.random.default_rng(11)
    base = rng.poisson(20.0, 400).astype(np.float64)
    px = np.arange(400, dtype=np.float64)
    at = list(range(200, 200 + width))
    for times, is_wall in ((3.0, False), (5.0, True)):
        v = base.copy()
        v[at] = times * base.mean()
        found = find_wave_peaks(px, v)
        assert ([w.index for w in found.walls] == [200]) is is_wall
        assert not [p.index for p in found.peaks if 195 <= p.index <= 206]
        if not is_wall:
            assert [w.index for w in find_wave_peaks(px, v, wall_min_relative=2.0).walls] == [200]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 300), elements=st.one_of(st.just(0.0), st.floats(0, 1e6))),
       st.sampled_from([0.0, 0.7, 3.0]), st.sampled_from([3, 81]))
def test_any_profile_gives_sane_peaks_and_walls(vol, smooth, window):
    found = find_wave_peaks(np.arange(vol.size, dtype=float), vol, smooth=smooth, window=window,
                            min_relative_volume=0.0)
    for items in (found.peaks, found.walls):
        idx = [p.index for p in items]
        assert idx == sorted(set(idx))
        for p in items:
            assert 0 <= p.low_index <= p.index <= p.high_index < vol.size
            assert 0.0 <= p.confidence <= 1.0
            assert vol[p.low_index : p.high_index + 1].max() > 0
    walls = {i for w in found.walls for i in range(w.low_index, w.high_index + 1)}
    for p in found.peaks:  # a wall is never also a wave peak (a wider hump may centre on one)
        assert p.index not in walls or p.high_index - p.low_index >= 3


@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0, 5.0])
@pytest.mark.parametrize("n", [1, 2, 5, 10, 18, 19, 31, 200])
def test_the_smoothing_is_scipys_gaussian_on_any_length(sigma, n):
    # a profile shorter than two radii once left outputs unwritten (garbage, a different answer
    # per call): the shift property caught it as two identical calls disagreeing
    from scipy.ndimage import gaussian_filter1d

    from depthflow.peaks.kernels import smooth_gaussian

    y = np.random.default_rng(n).random(n) * 100
    want = gaussian_filter1d(y, sigma, mode="nearest", truncate=np.ceil(3 * sigma) / sigma)
    for offset in range(4):  # copies at other addresses: the same answer
        buf = np.empty(n + 4)
        buf[offset : offset + n] = y
        got = smooth_gaussian(buf[offset : offset + n], sigma)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)

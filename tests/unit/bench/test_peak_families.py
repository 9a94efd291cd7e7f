"""The labelled peak families of ``bench.peak_families`` keep their label rules, and the accuracy
bench's scorer matches detections to labels one to one.

Why test a benchmark: its figures decide the detector's defaults; a label off its hump, a wall
three buckets wide or a scorer that counts one detection twice would move them silently.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from bench.peak_families import (
    FAMILIES,
    REAL_BLOCK,
    REAL_REACH,
    Labelled,
    dataset,
    real_background,
    real_noise,
    tolerance,
    wall_rule,
)
from bench.peaks_accuracy import background_relative, match, scipy_raw, scipy_smoothed

COUNT = 12


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest) -> list[Labelled]:
    return dataset(request.param, count=COUNT)


def test_every_family_has_labels_and_sizes_in_range(family):
    assert sum(len(p.peaks) for p in family) >= COUNT
    for p in family:
        assert 200 <= p.volumes.size <= 3000
        assert p.prices.size == p.volumes.size == p.clean.size
        step = np.diff(p.prices)
        assert (step > 0).all()
        assert np.allclose(step, step[0], rtol=1e-9)
        assert np.isfinite(p.volumes).all()
        assert (p.volumes >= 0).all()


def test_peak_labels_sit_on_planted_humps(family):
    """Each label is a local maximum of the noise-free profile within its hump's half width of a
    planted centre (the compound_poisson family: within 2 buckets, its old rule), with that half
    width; no two labels share a tolerance window."""
    for p in family:
        for i, hw in p.peaks:
            assert 0 < i < p.clean.size - 1
            assert p.clean[i] > p.clean[i - 1] or p.family == "compound_poisson"
            assert p.clean[i] >= p.clean[i - 1]
            assert p.clean[i] >= p.clean[i + 1]
            reach = 2 if p.family == "compound_poisson" else hw
            assert any(abs(i - c) <= reach + 0.5 and h == hw for c, h in p.planted), (p.family, i, hw)
        if p.family != "compound_poisson":  # its close pairs are the old generator's own
            idx = [i for i, _ in p.peaks]
            tol = [tolerance(hw) for _, hw in p.peaks]
            for k in range(len(idx) - 1):
                assert idx[k + 1] - idx[k] > tol[k] + tol[k + 1]


def test_a_planted_hump_without_label_makes_no_maximum(family):
    """A hump is unlabelled only when the noise-free profile has no local maximum near it."""
    for p in family:
        if p.family == "compound_poisson":
            continue
        labelled = {i for i, _ in p.peaks}
        for c, hw in p.planted:
            near = range(max(round(c) - hw, 1), min(round(c) + hw + 1, p.clean.size - 1))
            if not any(abs(i - c) <= hw + 0.5 for i in labelled):
                y = p.clean
                assert not any(y[j] > y[j - 1] and y[j] >= y[j + 1] and y[j] == y[near].max() for j in near)


def test_walls_are_one_or_two_buckets_standing_alone(family):
    for p in family:
        walls = sorted(p.walls)
        spans: list[list[int]] = []
        for w in walls:
            if spans and w == spans[-1][-1] + 1:
                spans[-1].append(w)
            else:
                spans.append([w])
        for span in spans:
            assert len(span) <= 2, (p.family, span)
            a, b = span[0], span[-1]
            top = p.volumes[a : b + 1].max()
            ring = np.r_[p.volumes[max(a - 12, 0) : max(a - 2, 0)], p.volumes[b + 3 : b + 13]]
            assert top >= 3 * np.median(ring), (p.family, span)
            if a > 0:
                assert p.volumes[a - 1] < top
            if b + 1 < p.volumes.size:
                assert p.volumes[b + 1] < top
            for i, hw in p.peaks:  # never within a peak's reach
                assert min(abs(a - i), abs(b - i)) > tolerance(hw)


@pytest.mark.parametrize("name", ["walls", "real_books", "real_trades"])
def test_families_with_walls_have_walls(name):
    assert sum(len(p.walls) for p in dataset(name, count=COUNT)) > COUNT


@pytest.mark.parametrize("name", FAMILIES)
def test_generators_are_deterministic_per_seed(name):
    a, b = dataset(name, count=3, seed=5), dataset(name, count=3, seed=5)
    other = dataset(name, count=3, seed=6)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.volumes, y.volumes)
        assert np.array_equal(x.prices, y.prices)
        assert x.peaks == y.peaks
        assert x.walls == y.walls
    assert any(
        x.volumes.size != y.volumes.size or not np.array_equal(x.volumes, y.volumes)
        for x, y in zip(a, other, strict=True)
    )


def _profile(peaks: list[tuple[int, int]], walls: tuple[int, ...] = ()) -> Labelled:
    n = 40
    return Labelled("hand", np.arange(n, dtype=np.float64), np.ones(n), np.ones(n), tuple(peaks), walls)


def test_scorer_matches_one_to_one():
    # two detections on one label: one true, one false positive beside it
    c = match([10, 11], _profile([(10, 1)]))
    assert (c.tp, c.fp, c.fn, c.fp_beside) == (1, 1, 0, 1)
    # one detection between two labels finds one of them, not both
    c = match([12], _profile([(10, 2), (14, 2)]))
    assert (c.tp, c.fp, c.fn) == (1, 0, 1)


def test_scorer_finds_the_largest_matching():
    # a wide label (10, half width 10: 0..20) and a narrow one (12: 10..14). Giving the wide one
    # its nearest or leftmost detection (11) would leave the narrow one unmatched.
    c = match([11, 19], _profile([(10, 10), (12, 1)]))
    assert (c.tp, c.fp, c.fn) == (2, 0, 0)


def test_scorer_counts_wall_hits_and_scores_reported_walls():
    prof = _profile([(10, 2)], walls=(30, 31))
    c = match([10, 30], prof, walls_found=[31, 5])
    assert (c.tp, c.fp, c.fn, c.fp_wall) == (1, 1, 0, 1)
    # a two-bucket wall is one wall: one reported wall finds it, one was no wall
    assert (c.wall_tp, c.wall_fp, c.wall_fn) == (1, 1, 0)


@pytest.mark.parametrize("make", [scipy_raw, scipy_smoothed], ids=["scipy", "scipy_smoothed"])
def test_threshold_sweep_equals_calling_find_peaks(make):
    """Filtering a configuration's candidates by a threshold gives what ``find_peaks`` called
    with that threshold gives (distance is applied before prominence and after height)."""
    method = make()
    profiles = [p for name in ("walls", "bursty") for p in dataset(name, count=4)]
    for cfg in method.configs[:: max(1, len(method.configs) // 6)]:
        for prof in profiles:
            idx, score, _ = method.candidates(prof, cfg)
            for th in method.thresholds[::7]:
                if method.name == "scipy":
                    v = prof.volumes
                    kw = {"distance": cfg["distance"], "prominence": th * (float(v.max() - v.min()) or 1.0)}
                    if cfg["width"]:
                        kw["width"] = cfg["width"]
                    direct = find_peaks(v, **kw)[0]
                else:
                    z = background_relative(prof.volumes, cfg["transform"], cfg["smooth"], cfg["window"])
                    direct = find_peaks(
                        z,
                        height=th,
                        distance=cfg["distance"],
                        prominence=cfg["min_prominence"],
                        wlen=cfg["window"],
                    )[0]
                assert idx[score >= th].tolist() == direct.tolist()


def test_scorer_tells_false_positives_on_a_thick_background():
    clean = np.ones(40)
    clean[15:30] = 5.0  # the top quarter of the noise-free profile
    prof = Labelled("hand", np.arange(40.0), clean.copy(), clean, ((5, 1),), ())
    c = match([5, 25, 35], prof)
    assert (c.tp, c.fp, c.fp_high) == (1, 2, 1)


# --- recorded profiles: the recorded shape without its humps, its own noise, its walls by rule ---

RECORDED = ["real_books", "real_trades"]


def _humps_of(p: Labelled) -> np.ndarray:
    assert p.background is not None
    return p.clean - p.background


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_background_has_no_hump_of_the_planted_size(name):
    """No local maximum of the background is as narrow as twice the widest planted hump (width
    at half its prominence under 4 half widths) unless it is under a third of the smallest
    planted height (0.1 of the background): the recorded side's own humps are gone."""
    for p in dataset(name, count=COUNT):
        bg = p.background
        assert bg is not None
        assert (bg > 0).all()
        widest = max(hw for _, hw in p.planted)
        idx, props = find_peaks(bg, prominence=0.0, width=0.0, rel_height=0.5)
        for i, w, prom in zip(idx, props["widths"], props["prominences"], strict=True):
            assert w >= 4 * widest or prom < 0.1 * bg[i], (p.volumes.size, i, w, prom / bg[i])


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_noise_free_profile_is_background_plus_planted_humps(name):
    """Away from every planted hump the noise-free profile is the background; each planted hump
    adds at least 30 % of the background at its centre (0.74 of that a bucket off its centre:
    the narrowest triangle half a bucket off)."""
    for p in dataset(name, count=COUNT):
        added = _humps_of(p)
        assert p.background is not None
        far = np.ones(p.clean.size, dtype=bool)
        for c, hw in p.planted:
            far[max(0, round(c) - 8 * hw - 2) : round(c) + 8 * hw + 3] = False
            top = added[max(0, round(c) - 1) : round(c) + 2].max()  # a bucket's centre is off by <= 0.5
            assert top >= 0.3 * p.background[round(c)] * 0.74
        assert (added >= -1e-12 * p.background).all()
        assert np.all(np.abs(added[far]) <= 1e-6 * p.background[far])


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_walls_keep_planted_humps_away(name):
    for p in dataset(name, count=COUNT):
        for c, hw in p.planted:
            for w in p.walls:
                assert abs(w - c) > tolerance(hw) + 4 + 3 * hw


def test_wall_rule_finds_single_and_double_spikes_only():
    rng = np.random.default_rng(1)
    v = rng.uniform(0.5, 1.5, 300)
    v[100] = 30.0  # one bucket
    v[200], v[201] = 25.0, 20.0  # two buckets
    v[150:157] += 30.0 * np.exp(-0.5 * ((np.arange(150, 157) - 153) / 1.5) ** 2)  # a hump
    v[50] = 6.0  # under 8x its ring
    assert wall_rule(v) == [100, 200, 201]


def test_real_background_removes_a_recorded_hump_and_ignores_walls():
    x = np.arange(600, dtype=np.float64)
    raw = 10.0 + 5 * x / 600
    raw = raw + 30.0 * np.exp(-0.5 * ((x - 300) / 4.0) ** 2)  # the book's own hump
    raw[450] = 500.0  # a wall
    bg = real_background(raw, [450], 40.0)
    idx, props = find_peaks(bg, prominence=0.0, width=0.0, rel_height=0.5)
    for i, w, prom in zip(idx, props["widths"], props["prominences"], strict=True):
        assert w >= 40 or prom < 0.1 * bg[i]
    assert bg[440:460].max() < 1.05 * (10.0 + 5 * 460 / 600)  # the wall is not smeared in


def test_real_noise_is_local_blocks_of_the_ratios_never_from_walls():
    n = 500
    ratio = np.arange(n, dtype=np.float64) + 10.0  # each value tells where it came from
    keep = np.zeros(n, dtype=bool)
    keep[[100, 300, 301]] = True
    out = real_noise(np.random.default_rng(3), ratio, keep)
    sources = np.where(keep, 1.0, ratio)
    for s in range(0, n, REAL_BLOCK):
        block = out[s : s + REAL_BLOCK]
        starts = [u for u in range(n - block.size + 1) if np.array_equal(sources[u : u + block.size], block)]
        assert starts, s
        assert any(abs(u - s) <= REAL_REACH for u in starts)
    assert not np.isin(ratio[keep], out).any()
    assert sorted(set(np.round(out - 10).astype(int).tolist()) - {-9}) != list(range(n))  # resampled

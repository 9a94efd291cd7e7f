"""The oracle of ``bench.peaks_ceiling`` is told the right background for each profile, leaves
the profiles as ``peaks_accuracy`` scores them, and its statistic is a calibrated test.

Why test it: its figures say how far the issue's accuracy goal is from what knowing the answer's
context allows; a background paired with the wrong profile, or a statistic off its scale, would
move that ceiling silently.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.peak_families import dataset, tolerance
from bench.peaks_ceiling import (
    FAMILIES,
    HALF_WIDTHS,
    LOG_FAMILIES,
    detect,
    known_profiles,
    matched_statistic,
    residuals,
    width_statistic,
)

COUNT = 4


@pytest.mark.parametrize("family", FAMILIES)
def test_the_oracle_sees_the_same_profiles_each_with_its_own_background(family):
    known = known_profiles(family, count=COUNT)
    plain = dataset(family, count=COUNT)
    assert len(known) == COUNT
    for k, p in zip(known, plain, strict=True):
        np.testing.assert_array_equal(k.profile.volumes, p.volumes)  # recording changes no draw
        assert k.log == (family in LOG_FAMILIES)
        assert np.all(k.sd > 0)
        # the noise-free profile is the background plus humps: never below it, and equal to it
        # away from every planted hump (6 half widths off, beyond any gaussian's reach that matters)
        assert np.all(k.profile.clean >= k.background * (1 - 1e-9))
        far = np.ones(k.background.size, dtype=bool)
        for c, hw in k.profile.planted:
            far[max(0, int(c - 6 * hw - 3)) : int(c + 6 * hw + 4)] = False
        far[list(k.profile.walls)] = False  # walls are added after the humps, onto the background
        assert far.any()
        np.testing.assert_allclose(k.profile.clean[far], k.background[far], rtol=1e-3)


def test_a_noise_free_hump_is_found_once_at_its_centre_and_a_bare_background_gives_nothing():
    n = 600
    x = np.arange(n, dtype=np.float64)
    bg = 50.0 + 0.05 * x
    sd = np.sqrt(bg)
    hump = 40.0 * np.exp(-0.5 * ((x - 300) / (3 / 1.1774)) ** 2)  # half width 3
    t, hw = matched_statistic(bg + hump, bg, sd, log=False)
    found = detect(t, hw, 4.0)
    assert len(found) == 1
    assert abs(found[0] - 300) <= tolerance(3)
    assert hw[found[0]] in (2, 3, 4)  # the filter that fits is the hump's own width, about
    t0, hw0 = matched_statistic(bg, bg, sd, log=False)
    assert detect(t0, hw0, 0.5) == []
    # a labelled wall is the background to the oracle: a spike there is not seen
    spiked = bg.copy()
    spiked[100] *= 30
    ts, hws = matched_statistic(spiked, bg, sd, log=False, walls=(100,))
    assert detect(ts, hws, 0.5) == []


@pytest.mark.parametrize("log", [False, True])
def test_on_pure_noise_every_width_gives_a_standard_normal_score(log):
    rng = np.random.default_rng(5)
    n = 100_000
    bg = np.full(n, 20.0)
    if log:  # the families' LogNormal: clean x exp(N(-s^2/2, s)), deviation clean x sqrt(e^(s^2) - 1)
        s = 0.5
        v = bg * np.exp(rng.normal(-0.5 * s**2, s, n))
        sd = bg * np.sqrt(np.expm1(s**2))
    else:
        sd = np.full(n, 3.0)
        v = bg + rng.normal(0.0, 3.0, n)
    r, var = residuals(v, bg, sd, log)
    for hw in HALF_WIDTHS:
        t = width_statistic(r, var, hw)[100:-100]  # the ends see a truncated filter
        assert abs(t.mean()) < 0.05, (hw, t.mean())
        assert abs(t.std() - 1.0) < 0.05, (hw, t.std())
    best, _ = matched_statistic(v, bg, sd, log)
    assert np.all(best >= width_statistic(r, var, 1) - 1e-12)  # the best of the widths


def test_detections_keep_the_stronger_of_two_within_reach():
    t = np.zeros(100)
    hw = np.full(100, 2)
    t[40], t[45], t[60] = 9.0, 7.0, 6.0  # 45 is within 3 x 2 + 2 of 40; 60 is not
    assert detect(t, hw, 5.0) == [40, 60]
    assert detect(t, hw, 8.0) == [40]

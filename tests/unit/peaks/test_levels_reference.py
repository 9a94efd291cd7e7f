"""The production levels and vacuums (numba kernels) agree with their plain-numpy re-derivation
(``levels_reference``) on seeded profiles of several shapes and on hypothesis' profiles."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.peaks.levels import point_of_control, value_area, volume_nodes
from depthflow.peaks.vacuums import vacuums
from tests.unit.peaks import levels_reference as reference


def shaped(rng: np.random.Generator, shape: str, n: int) -> np.ndarray:
    """A profile of ``n`` buckets: noise, humps, walls on a flat book, sparse levels, or ties."""
    x = np.arange(n)
    if shape == "noise":
        return rng.exponential(1.0, n)
    if shape == "humps":
        centres = rng.uniform(0, n, 4)
        base = sum(rng.uniform(5, 50) * np.exp(-0.5 * ((x - c) / rng.uniform(2, 15)) ** 2) for c in centres)
        return base + rng.exponential(1.0, n)
    if shape == "walls":
        v = np.full(n, 1.0)
        v[rng.integers(0, n, 5)] = rng.uniform(10, 100, 5)
        return v
    if shape == "sparse":
        return np.where(rng.random(n) < 0.1, rng.uniform(0.1, 10, n), 0.0)
    return rng.integers(0, 4, n).astype(np.float64)  # "ties": few distinct values


SHAPES = ["noise", "humps", "walls", "sparse", "ties"]


def check(px: np.ndarray, v: np.ndarray, rows: int, smooth: float, window: int) -> None:
    poc = point_of_control(px, v)
    assert poc == reference.point_of_control(px, v)
    assert value_area(v, poc, 0.7, rows) == reference.value_area(v, poc, 0.7, rows)
    hvn, lvn = volume_nodes(v, smooth, 6.0, window)
    assert (hvn.tolist(), lvn.tolist()) == reference.volume_nodes(v, smooth, 6.0, window)


@pytest.mark.parametrize("shape", SHAPES)
def test_levels_agree_on_seeded_profiles(shape):
    rng = np.random.default_rng(SHAPES.index(shape))
    for trial in range(40):
        n = int(rng.integers(1, 400))
        v = shaped(rng, shape, n)
        if not v.any():
            continue
        px = (1000 + np.arange(n)) * 0.5
        check(px, v, rows=1 + trial % 3, smooth=[0.0, 0.7, 1.5][trial % 3], window=[201, 21, 5][trial % 3])


@pytest.mark.parametrize("shape", SHAPES)
def test_vacuums_agree_on_seeded_books(shape):
    rng = np.random.default_rng(100 + SHAPES.index(shape))
    for trial in range(40):
        n = int(rng.integers(1, 300))
        size = [1.0, 0.01, 0.5][trial % 3]
        v = shaped(rng, shape, n)
        px = (5000 + np.arange(n)) * size
        keep = rng.random(n) < 0.8  # sparse input: missing buckets are zeros
        px, v = px[keep], v[keep]
        order = rng.permutation(px.size) if trial % 2 else np.arange(px.size)  # any order
        lo = (5000 + rng.uniform(-5, n / 2)) * size
        hi = lo + rng.uniform(0, n) * size
        args = (px[order], v[order], size, lo, hi, [0.2, 0.5, 1.0][trial % 3], 1 + trial % 4)
        assert vacuums(*args) == reference.vacuums(*args)


volume = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 40.0]) | st.floats(0, 100)  # ties, zeros and any
volumes = st.lists(volume, min_size=1, max_size=120)


@settings(max_examples=150, deadline=None)
@given(volumes, st.integers(1, 3), st.sampled_from([0.0, 0.7]), st.sampled_from([3, 11, 201]))
def test_levels_agree_on_any_profile(vol, rows, smooth, window):
    v = np.array(vol)
    if v.any():
        check(np.arange(v.size) * 0.25, v, rows, smooth, window)


@settings(max_examples=150, deadline=None)
@given(volumes, st.floats(-5, 60), st.floats(0, 80), st.sampled_from([0.2, 1.0]), st.integers(1, 5))
def test_vacuums_agree_on_any_book(vol, lo, width, alpha, min_run):
    v = np.array(vol)
    px = np.arange(v.size) * 0.5
    args = (px, v, 0.5, lo, lo + width, alpha, min_run)
    assert vacuums(*args) == reference.vacuums(*args)

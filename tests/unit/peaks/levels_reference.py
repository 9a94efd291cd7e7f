"""Point of control, value area, volume nodes and vacuums re-derived in plain numpy and Python.

The oracle of ``test_levels_reference.py`` and the levels of ``zones_reference.py``. Written from
the definitions in the docstrings of ``depthflow.peaks.levels`` and ``depthflow.peaks.vacuums``
(domain.md §4), not from their kernels, and imports none of them: a wrong kernel shows up as a
disagreement instead of being checked against itself. Clarity over speed: whole-array numpy or
plain loops, a dense grid where that is simplest. Only the bucket edge rule is shared
(``depthflow.common.pricing``), since it is the definition of which bucket a price is in.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from depthflow.common.pricing import MAX_INDEX, bucket_edges, bucket_index


def point_of_control(px: np.ndarray, vol: np.ndarray) -> int:
    """The highest bucket; ties: nearest the middle of the range (within a relative 1e-9), then
    the side of the midpoint holding more volume, then the lower price."""
    px, vol = np.asarray(px, dtype=np.float64), np.asarray(vol, dtype=np.float64)
    tops = np.flatnonzero(vol == vol.max())
    middle = 0.5 * (px[0] + px[-1])
    tol = 1e-9 * max(abs(px[-1] - px[0]), 1e-300)
    below = vol[px < middle - tol].sum()
    above = vol[px > middle + tol].sum()
    dist = np.abs(px[tops] - middle)
    nearest = [int(i) for i, d in zip(tops, dist, strict=True) if d <= dist.min() + tol]
    if above > below:
        return nearest[-1]
    return nearest[0]  # the lower side is heavier, or the sides balance: the lower one


def value_area(vol: np.ndarray, poc: int, fraction: float, rows: int) -> tuple[int, int]:
    """Grow ``[poc, poc]`` by the heavier of the next ``rows`` rows above and below (ties up; a
    side past the end is missing) until it holds ``fraction`` of the volume or the whole profile."""
    v = np.asarray(vol, dtype=np.float64)
    n, rows = v.size, max(int(rows), 1)
    lo = hi = poc
    held = v[poc]
    while held < fraction * v.sum() and (lo > 0 or hi < n - 1):
        up = v[hi + 1 : hi + 1 + rows].sum() if hi < n - 1 else -1.0
        down = v[max(lo - rows, 0) : lo].sum() if lo > 0 else -1.0
        if up >= down:
            held, hi = held + up, min(hi + rows, n - 1)
        else:
            held, lo = held + down, max(lo - rows, 0)
    return lo, hi


def root(v: np.ndarray) -> np.ndarray:
    """The square root, taken in single precision (as the detector does: 7 digits are ample)."""
    return np.sqrt(np.asarray(v, dtype=np.float32)).astype(np.float64)


def noise_scale(y: np.ndarray) -> float:
    """Bucket noise sigma: the mean of ``|diff(y)|``, twice trimmed of what exceeds 3x the mean;
    the untrimmed mean when trimming leaves zero; times ``sqrt(pi) / 2`` (normal noise)."""
    d = np.abs(np.diff(y))
    if d.size == 0:
        return 0.0
    first = m = d.mean()
    for _ in range(2):
        kept = d[d <= 3.0 * m]
        if kept.size == 0:
            break
        m = kept.mean()
    if m <= 0.0:
        m = first
    return float(m * math.sqrt(math.pi) / 2.0)


def smooth(y: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter, radius ceil(3 sigma), the end values repeated outwards (scipy "nearest")."""
    if sigma <= 0.0 or y.size == 0:
        return y.copy()
    r = math.ceil(3.0 * sigma)
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return np.convolve(np.pad(y, r, mode="edge"), taps / taps.sum(), mode="valid")


def prominence(ys: np.ndarray, i: int, half: int) -> float:
    """SciPy's prominence of the maximum ``ys[i]`` within ``half`` buckets either side: on each
    side the minimum before a higher bucket or the window's edge; the higher minimum is the base."""
    top = ys[i]

    def side_min(seq: np.ndarray) -> float:
        higher = np.flatnonzero(seq > top)
        return float(min(seq[: higher[0]].min(initial=top) if higher.size else seq.min(initial=top), top))

    left = ys[max(i - half, 0) : i][::-1]
    right = ys[i + 1 : i + half + 1]
    return float(top - max(side_min(left), side_min(right)))


def maxima(ys: np.ndarray) -> list[int]:
    """Interior local maxima; a flat top counts once, at its middle, if it falls on both sides."""
    out = []
    i = 1
    while i < ys.size - 1:
        j = i
        while j + 1 < ys.size and ys[j + 1] == ys[i]:
            j += 1
        if ys[i - 1] < ys[i] and j + 1 < ys.size and ys[j + 1] < ys[i]:
            out.append((i + j) // 2)
        i = j + 1
    return out


def prominent_maxima(ys: np.ndarray, half: int, cut: float) -> list[int]:
    """The interior maxima whose prominence (window ``2 half + 1``) is at least ``cut`` and > 0."""
    return [i for i in maxima(ys) if (p := prominence(ys, i, half)) >= cut and p > 0.0]


def volume_nodes(vol: np.ndarray, smooth_sigma: float, prominence_z: float, window: int) -> tuple[list, list]:
    """HVN: non-empty humps of the smoothed root rising ``prominence_z`` noise units (noise of the
    unsmoothed root) within ``window`` buckets. LVN: the lowest (first lowest) bucket between two
    neighbouring HVNs when it lies that far below the lower of the two."""
    v = np.asarray(vol, dtype=np.float64)
    if v.size < 3:
        return [], []
    y = root(v)
    sigma = noise_scale(y)
    if not sigma > 0.0:
        return [], []
    ys = smooth(y, smooth_sigma)
    cut = prominence_z * sigma
    hvn = [i for i in prominent_maxima(ys, max(max(int(window), 3) // 2, 1), cut) if v[i] > 0.0]
    lvn = []
    for a, b in itertools.pairwise(hvn):
        low = a + 1 + int(np.argmin(ys[a + 1 : b]))
        if min(ys[a], ys[b]) - ys[low] >= cut:
            lvn.append(low)
    return hvn, lvn


def vacuums(
    px: np.ndarray,
    vol: np.ndarray,
    size: float,
    known_low: float,
    known_high: float,
    alpha: float,
    min_run: int,
) -> list[tuple[float, float]]:
    """Bands of >= ``min_run`` buckets lying wholly inside ``[known_low, known_high]`` whose depth
    is <= ``alpha`` x the median over every bucket of that range (missing and bad ones are zeros),
    clipped to the range."""
    if not (size > 0 and math.isfinite(known_low) and math.isfinite(known_high) and known_high > known_low):
        return []
    k0f, k1f = bucket_index(np.array([known_low, known_high]), size)
    k0f += bucket_edges(np.array([k0f]), size)[0] < known_low  # inside only from its lower edge
    k1f -= 1  # the last bucket whose upper edge is <= known_high
    if not (abs(k0f) < MAX_INDEX and abs(k1f) < MAX_INDEX):
        return []
    k0, k1 = int(k0f), int(k1f)
    total = k1 - k0 + 1
    min_run = max(int(min_run), 1)
    if total < min_run:
        return []
    p = np.asarray(px, dtype=np.float64)
    q = np.asarray(vol, dtype=np.float64)
    p, q = p[np.isfinite(p)], q[np.isfinite(p)]
    q = np.where(np.isfinite(q) & (q > 0), q, 0.0)
    keys = bucket_index(p, size)
    inside = (keys >= k0f) & (keys <= k1f)
    depth: dict[int, float] = {}
    for k, x in zip(keys[inside].astype(np.int64).tolist(), q[inside].tolist(), strict=True):
        depth[k] = depth.get(k, 0.0) + x
    present = np.sort(np.array(list(depth.values()), dtype=np.float64))
    zeros = total - present.size  # the median's sorted list: these zeros, then `present`

    def ranked(r: int) -> float:
        return 0.0 if r < zeros else float(present[r - zeros])

    median = ranked(total // 2) if total % 2 else 0.5 * (ranked(total // 2 - 1) + ranked(total // 2))
    deep = sorted(k for k, x in depth.items() if x > alpha * median)
    out = []
    for a, b in zip([k0 - 1, *deep], [*deep, k1 + 1], strict=True):  # the shallow runs lie between
        if b - a - 1 >= min_run:
            lo, hi = bucket_edges(np.array([a + 1, b]), size)
            out.append((max(float(lo), known_low), min(float(hi), known_high)))
    return out

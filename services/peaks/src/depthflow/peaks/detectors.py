"""Wave peaks of a volume profile: where volume stands out from its neighbourhood.

Pure functions over one dense volume array (a bucket per price row); no I/O. Definitions follow
``docs/reference/domain.md`` §4. This module is the home of the wave-peak detector: a later
``find_wave_peaks(prices, volumes)`` replaces the four below and :func:`detect` here.

Four peak detectors, each a pure function with its parameters as arguments:

* :func:`normal_peaks`: local maxima whose (optionally weighted) z-score against the whole profile
  is at least ``z_min``. Cheap and easy to explain; blind to baseline trends.
* :func:`ratio_peaks`: local maxima holding at least ``ratio`` times the mean volume of their
  ``neighbours`` buckets on each side: the "wall" test traders use on books. Scale-free, but one
  ratio cannot serve a thin tail (noise spikes of 5x) and a thick middle (real peaks of 1.5x).
* :func:`robust_peaks`: the Iglewicz-Hoaglin modified z-score (median/MAD), which large peaks
  cannot inflate the way they inflate the mean and standard deviation.
* :func:`combined_peaks`: the default, a score fusion: peaks are found by their prominence on the
  variance-stabilised (square-root), lightly smoothed profile, measured in units of the bucket
  noise (a robust, trimmed estimate) and floored relative to the profile's own volume; their
  confidence fuses that prominence with the (weighted) z-score. See ``bench/peaks_accuracy.py``
  for why this and not a two-of-three vote of the methods above: on the held-out split the vote
  scored below both the fusion and a tuned ``scipy.signal.find_peaks``, because the three share
  one blind spot (a global threshold on raw volume), so agreeing among themselves does not fix it.

Every threshold is relative: scores are dimensionless, and the volume floor
(``min_relative_volume``) is a multiple of the profile's mean non-empty bucket, so multiplying
every volume by a constant finds the same peaks with the same confidences.

Conventions: volumes are finite and non-negative (callers sanitise; :mod:`depthflow.peaks.zones`
does); indices refer to the array passed in; a profile with fewer than three buckets has no peaks;
a flat profile has none either (nothing stands out).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from depthflow.peaks.jit import kernel
from depthflow.peaks.kernels import (
    as_f64,
    noise_scale,
    nonzero_mean,
    prominence,
    prominent_candidates,
    root32,
    smooth_gaussian,
    weighted_moments,
)
from depthflow.peaks.params import DEFAULT, PeakParams

__all__ = [
    "Peak",
    "combined_peaks",
    "detect",
    "detect_arrays",
    "normal_peaks",
    "ratio_peaks",
    "robust_peaks",
]

_EMPTY_F = np.empty(0, dtype=np.float64)
_MAD_TO_SIGMA = 1.0 / 0.6745  # MAD of a normal sample is 0.6745 sigma (Iglewicz & Hoaglin)
_MEANAD_TO_SIGMA = 1.253314  # mean absolute deviation of a normal sample is sigma / 1.253314


class Peak(NamedTuple):
    """A bucket whose volume stands out, and the zone of buckets around it.

    ``score`` is the method's statistic (z, ratio, modified z, or prominence in noise units);
    ``confidence`` maps it into [0, 1]: 0.5 at the method's threshold, 1.0 at twice it.
    ``low_index``/``high_index`` are the zone edges (inclusive).

    Why a NamedTuple and not a frozen dataclass: both are immutable records, but a frozen
    dataclass costs ~1-2 us to build (``object.__setattr__`` per field) against ~0.2 us, and a
    3000-bucket profile yields tens of peaks: the objects alone would break the 25 us budget.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the peak bucket
    score: float
    low_index: int
    high_index: int
    confidence: float


@kernel
def _local_maxima(v: np.ndarray, order: int) -> np.ndarray:
    """Indices of local maxima; a plateau counts once, at its middle (left of centre if even).

    A candidate must rise above the bucket before its plateau and fall after it; the edges of the
    array count as lower than anything (a wall at the first bucket is a peak). With ``order`` > 1
    it must also be the highest within ``order`` buckets on each side (the first of equal ones).

    Why two passes: the first flags "higher than the left, not lower than the right" without a
    data-dependent branch (noise makes such branches unpredictable, which cost more than the
    arithmetic); only the few flagged buckets are then checked for plateaus and ``order``.
    """
    n = v.size
    flags = np.empty(n, dtype=np.int64)
    k = 0
    if n == 1:
        flags[0] = 0
        k = 1
    elif n > 1:
        flags[k] = 0
        k += v[0] >= v[1]
        left = v[: n - 2]  # views indexed from 0: no negative-index checks in the loop
        here = v[1 : n - 1]
        right = v[2:]
        for t in range(n - 2):
            flags[k] = t + 1
            k += (here[t] > left[t]) & (here[t] >= right[t])
        flags[k] = n - 1
        k += v[n - 1] > v[n - 2]
    out = np.empty(k, dtype=np.int64)
    m = 0
    for t in range(k):
        i = flags[t]
        j = i
        while j + 1 < n and v[j + 1] == v[i]:
            j += 1
        if j > i and j + 1 < n and v[j + 1] > v[i]:
            continue  # a shelf on the way up, not a peak
        c = (i + j) // 2
        if order > 1:
            ok = True
            for u in range(max(0, c - order), min(n - 1, c + order) + 1):
                if v[u] > v[c] or (v[u] == v[c] and u < i):
                    ok = False
                    break
            if not ok:
                continue
        out[m] = c
        m += 1
    return out[:m]


_MAX_ZONE_REACH = 25  # buckets each side: past that the half-volume rule traces the baseline


@kernel
def _half_zone(v: np.ndarray, i: int) -> tuple[int, int]:
    """The contiguous buckets around ``i`` holding at least half its volume, at most
    ``_MAX_ZONE_REACH`` each side (a weak peak on a thick baseline would otherwise span the
    profile, and cost a walk across it)."""
    half = v[i] / 2.0
    lo = i
    stop = max(i - _MAX_ZONE_REACH, 0)
    while lo > stop and v[lo - 1] >= half:
        lo -= 1
    hi = i
    stop = min(i + _MAX_ZONE_REACH, v.size - 1)
    while hi < stop and v[hi + 1] >= half:
        hi += 1
    return lo, hi


@kernel
def _collect(v, cand, score, keep, threshold):
    """Pack the kept candidates as (index, score, low, high, confidence) arrays."""
    m = 0
    for t in range(cand.size):
        if keep[t]:
            m += 1
    idx = np.empty(m, dtype=np.int64)
    sc = np.empty(m, dtype=np.float64)
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    conf = np.empty(m, dtype=np.float64)
    k = 0
    for t in range(cand.size):
        if keep[t]:
            i = cand[t]
            idx[k] = i
            sc[k] = score[t]
            a, b = _half_zone(v, i)
            lo[k] = a
            hi[k] = b
            conf[k] = min(1.0, max(0.0, score[t] / (2.0 * threshold))) if threshold > 0 else 1.0
            k += 1
    return idx, sc, lo, hi, conf


@kernel
def _normal_kernel(v, w, z_min, min_rel, order):
    floor = min_rel * nonzero_mean(v)
    mu, sd = weighted_moments(v, w)
    cand = _local_maxima(v, order)
    score = np.empty(cand.size, dtype=np.float64)
    keep = np.zeros(cand.size, dtype=np.bool_)
    if sd > 0.0:
        for t in range(cand.size):
            i = cand[t]
            score[t] = (v[i] - mu) / sd
            keep[t] = score[t] >= z_min and v[i] >= floor
    return _collect(v, cand, score, keep, z_min)


@kernel
def _ratio_kernel(v, ratio, min_rel, neighbours):
    floor = min_rel * nonzero_mean(v)
    n = v.size
    cand = _local_maxima(v, neighbours)
    score = np.empty(cand.size, dtype=np.float64)
    keep = np.zeros(cand.size, dtype=np.bool_)
    for t in range(cand.size):
        i = cand[t]
        s = 0.0
        c = 0
        for j in range(max(0, i - neighbours), min(n, i + neighbours + 1)):
            if j != i:
                s += v[j]
                c += 1
        mean = s / c if c > 0 else 0.0
        score[t] = v[i] / mean if mean > 0.0 else (np.inf if v[i] > 0.0 else 0.0)
        keep[t] = score[t] >= ratio and v[i] >= floor
    return _collect(v, cand, score, keep, ratio)


@kernel
def _robust_scale(x: np.ndarray) -> tuple[float, float]:
    """(median, sigma estimate): MAD / 0.6745, or 1.253314 * MeanAD when the MAD is zero."""
    med = np.median(x)
    dev = np.abs(x - med)
    mad = np.median(dev)
    if mad > 0.0:
        return med, mad * _MAD_TO_SIGMA
    return med, _MEANAD_TO_SIGMA * dev.mean()


@kernel
def _robust_kernel(v, z_min, min_rel, order):
    floor = min_rel * nonzero_mean(v)
    med, scale = _robust_scale(v)
    cand = _local_maxima(v, order)
    score = np.empty(cand.size, dtype=np.float64)
    keep = np.zeros(cand.size, dtype=np.bool_)
    if scale > 0.0:
        for t in range(cand.size):
            i = cand[t]
            score[t] = (v[i] - med) / scale  # == 0.6745 (v - med) / MAD
            keep[t] = score[t] > z_min and v[i] >= floor
    return _collect(v, cand, score, keep, z_min)


@kernel
def _combined_kernel(v, w, smooth, prominence_z, window, min_rel, z_min):
    """Prominence of the smoothed square-root profile, in units of its bucket noise.

    Why the square root: traded (and resting) volume is a sum over a Poisson number of trades, so
    its variance grows with its level; the square root makes the noise roughly equal everywhere,
    so one threshold fits the thin tails and the thick middle alike. Edges are never peaks (a
    prominence needs both sides).
    """
    n = v.size
    y = root32(v)
    mu, sd = weighted_moments(v, w)
    sigma = noise_scale(y)
    ys = smooth_gaussian(y, smooth)
    floor = min_rel * nonzero_mean(v)
    half = max(window // 2, 1)
    cut_abs = prominence_z * sigma
    cand = prominent_candidates(ys, half, cut_abs) if sigma > 0.0 else np.empty(0, dtype=np.int64)
    m = cand.size
    score = np.zeros(m, dtype=np.float64)
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    keep = np.zeros(m, dtype=np.bool_)
    kept = 0
    for t in range(m):
        i = cand[t]
        top = ys[i]
        prom = prominence(ys, i, half)
        if prom < cut_abs or prom <= 0.0:
            continue
        # zone: where the smoothed profile stays above half the prominence (peak_widths-like)
        cut = top - 0.5 * prom
        a = i
        while a > 0 and i - a < half and ys[a - 1] >= cut:
            a -= 1
        b = i
        while b < n - 1 and b - i < half and ys[b + 1] >= cut:
            b += 1
        # the floor applies to the raw volume: smoothing spreads a one-bucket wall over three;
        # and a zone must hold some: between two walls the smoothed top can fall on empty buckets
        biggest = 0.0
        for u in range(a, b + 1):
            biggest = max(biggest, v[u])
        if biggest < floor or not biggest > 0.0:
            continue
        score[t] = prom / sigma
        keep[t] = True
        kept += 1
        lo[t] = a
        hi[t] = b
    idx = np.empty(kept, dtype=np.int64)
    sc = np.empty(kept, dtype=np.float64)
    zl = np.empty(kept, dtype=np.int64)
    zh = np.empty(kept, dtype=np.int64)
    conf = np.empty(kept, dtype=np.float64)
    if kept == 0:
        return idx, sc, zl, zh, conf
    # confidence folds in the (weighted) z-score of the peak bucket: near-mid context when weighted
    k = 0
    for t in range(m):
        if keep[t]:
            i = cand[t]
            idx[k] = i
            sc[k] = score[t]
            zl[k] = lo[t]
            zh[k] = hi[t]
            c_prom = min(1.0, score[t] / (2.0 * prominence_z)) if prominence_z > 0 else 1.0
            z = (v[i] - mu) / sd if sd > 0.0 else 0.0
            c_z = min(1.0, max(0.0, z / (2.0 * z_min))) if z_min > 0 else 1.0
            conf[k] = 0.5 * (c_prom + c_z)
            k += 1
    return idx, sc, zl, zh, conf


def _as_peaks(arrays: tuple[np.ndarray, ...]) -> list[Peak]:
    """Kernel output (five parallel arrays) as Peak records; ``tuple.__new__`` is the cheap path."""
    idx, sc, lo, hi, conf = arrays
    new = tuple.__new__
    return [
        new(Peak, row)
        for row in zip(idx.tolist(), sc.tolist(), lo.tolist(), hi.tolist(), conf.tolist(), strict=True)
    ]


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return _EMPTY_F
    w = as_f64(weights)
    if w.size != n:
        raise ValueError(f"weights and volumes differ in length ({w.size} != {n})")
    return w


# --- peak detectors ---------------------------------------------------------------------------------


def normal_peaks(
    vol: np.ndarray,
    weights: np.ndarray | None = None,
    z_min: float = 1.5,
    min_relative_volume: float = 0.5,
    order: int = 1,
) -> list[Peak]:
    """Local maxima with weighted z-score ``(v - mu) / sigma >= z_min`` and ``v >=
    min_relative_volume`` x the mean non-empty bucket (the profile's own volume scale).

    ``mu = sum(w v) / sum(w)``, ``sigma^2 = sum(w (v - mu)^2) / sum(w)``; weights that decay with
    distance from the mid make the statistics describe the book where it matters. ``order`` > 1
    asks for the highest bucket within ``order`` on each side, which stops noise on one broad peak
    from reporting it several times. The zone holds the contiguous buckets with >= half its volume.
    """
    v = as_f64(vol)
    if v.size < 3:
        return []
    w = _weights(weights, v.size)
    return _as_peaks(_normal_kernel(v, w, z_min, min_relative_volume, max(order, 1)))


def ratio_peaks(
    vol: np.ndarray, ratio: float = 2.0, min_relative_volume: float = 0.5, neighbours: int = 2
) -> list[Peak]:
    """Buckets holding ``>= ratio`` x the mean of their ``neighbours`` buckets on each side.

    The candidate must also be the highest within ``neighbours`` buckets (so a wall and its
    shoulder are one peak) and hold at least ``min_relative_volume`` x the mean non-empty bucket.
    Score: the ratio itself.
    """
    v = as_f64(vol)
    if v.size < 3:
        return []
    return _as_peaks(_ratio_kernel(v, ratio, min_relative_volume, max(int(neighbours), 1)))


def robust_peaks(
    vol: np.ndarray, z_min: float = 3.5, min_relative_volume: float = 0.5, order: int = 1
) -> list[Peak]:
    """Local maxima with modified z-score ``M = 0.6745 (v - median) / MAD > z_min``.

    Iglewicz & Hoaglin's test: the median and the MAD ignore the peaks they are looking for, so
    one very large wall does not hide the others (it would inflate the standard deviation). When
    more than half the buckets are equal (MAD = 0) it falls back to ``1.253314 * MeanAD``.
    """
    v = as_f64(vol)
    if v.size < 3:
        return []
    return _as_peaks(_robust_kernel(v, z_min, min_relative_volume, max(order, 1)))


def combined_peaks(
    vol: np.ndarray, weights: np.ndarray | None = None, params: PeakParams | None = None
) -> list[Peak]:
    """The default detector: a score fusion tuned on the accuracy benchmark's training split.

    1. ``y = sqrt(v)`` stabilises the variance of count-like volume; the noise scale ``s`` is a
       trimmed mean of the first differences of ``y`` (see :func:`noise_scale`);
    2. ``y`` is smoothed with a gaussian of ``params.smooth`` buckets, so noise on a broad peak does
       not split it into many local maxima;
    3. a local maximum is a peak when its prominence (SciPy's definition, within ``params.window``
       buckets, which keeps a baseline trend local) is at least ``params.prominence_z * s`` and
       its zone holds a bucket of at least ``params.min_relative_volume`` x the mean non-empty
       bucket (raw volume: smoothing spreads a one-bucket wall over its neighbours).

    Score: prominence in noise units. Confidence: the mean of the prominence's and the (weighted)
    z-score's confidences, each 0.5 at its threshold and 1.0 at twice it. The zone spans the
    buckets within half the prominence of the top (``peak_widths(rel_height=0.5)``-like).
    """
    p = params or DEFAULT
    v = as_f64(vol)
    if v.size < 3:
        return []
    w = _weights(weights, v.size)
    return _as_peaks(
        _combined_kernel(
            v, w, p.smooth, p.prominence_z, max(int(p.window), 3), p.min_relative_volume, p.z_min
        )
    )


@kernel
def detect_arrays(v, w, kp):
    """Run the detector ``kp.method`` names: ``(index, score, low, high, confidence)`` arrays.

    The kernel form of :func:`detect`, for callers that stay in arrays (``depthflow.peaks.zones``):
    five arrays cost one boxing each, where a ``Peak`` per peak cost a Python object each.
    """
    if v.size < 3:
        none = np.empty(0, dtype=np.int64)
        return none, np.empty(0, dtype=np.float64), none, none, np.empty(0, dtype=np.float64)
    method = int(kp.method)
    if method == 1:
        return _normal_kernel(v, w, kp.z_min, kp.min_relative_volume, 1)
    if method == 2:
        return _ratio_kernel(v, kp.ratio, kp.min_relative_volume, max(int(kp.neighbours), 1))
    if method == 3:
        return _robust_kernel(v, kp.robust_z, kp.min_relative_volume, 1)
    window = max(int(kp.window), 3)
    return _combined_kernel(v, w, kp.smooth, kp.prominence_z, window, kp.min_relative_volume, kp.z_min)


def detect(
    vol: np.ndarray, weights: np.ndarray | None = None, params: PeakParams | None = None
) -> list[Peak]:
    """Run the detector ``params.method`` names with its parameters from ``params``."""
    p = params or DEFAULT
    v = as_f64(vol)
    return _as_peaks(detect_arrays(v, _weights(weights, v.size), p.kernel))


def _warm() -> None:
    """Compile (or load from cache) every kernel now, with the argument types used later, so the
    first message a service handles does not pay seconds of JIT time."""
    v = np.array([1.0, 3.0, 9.0, 3.0, 1.0, 0.0, 2.0, 8.0, 2.0, 1.0])
    normal_peaks(v, np.ones(v.size))
    normal_peaks(v)
    ratio_peaks(v)
    robust_peaks(v)
    combined_peaks(v)
    combined_peaks(v, np.ones(v.size))


_warm()

"""Volume-by-price analysis: wave peaks, point of control, value area, volume nodes and vacuums.

Pure functions over ascending bucket arrays; no I/O. Definitions follow
``docs/reference/domain.md`` §4. The numeric cores are numba kernels (``@njit(cache=True)``),
compiled or loaded from the on-disk cache and run once at import (:func:`_warm`), so the first
message a service handles does not pay seconds of JIT time.

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
  noise (a robust, trimmed estimate) and floored by ``min_volume``; their confidence fuses that
  prominence with the (weighted) z-score. See ``bench/peaks_accuracy.py`` for why this and not a
  two-of-three vote of the methods above: on the held-out split the vote scored below both the
  fusion and a tuned ``scipy.signal.find_peaks``, because the three share one blind spot (a global
  threshold on raw volume), so agreeing among themselves does not fix it.

Conventions: volumes are finite and non-negative (callers sanitise; :mod:`depthflow.peaks.zones`
does); indices refer to the array passed in; a profile with fewer than three buckets has no peaks;
a flat profile has none either (nothing stands out).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = [
    "METHODS",
    "KernelParams",
    "Peak",
    "PeakParams",
    "combined_peaks",
    "detect",
    "normal_peaks",
    "point_of_control",
    "ratio_peaks",
    "robust_peaks",
    "vacuums",
    "value_area",
    "volume_nodes",
    "zscore_peaks",
]

_EMPTY_F = np.empty(0, dtype=np.float64)
_MAD_TO_SIGMA = 1.0 / 0.6745  # MAD of a normal sample is 0.6745 sigma (Iglewicz & Hoaglin)
_MEANAD_TO_SIGMA = 1.253314  # mean absolute deviation of a normal sample is sigma / 1.253314
# reassociation (vectorised sums) without the flags that assume no NaN/inf (zero-volume ratios are inf)
_FAST = {"reassoc", "contract", "arcp", "nsz"}


@dataclass(frozen=True)
class PeakParams:
    """Every detection threshold in one place, so a config maps onto it one field per field.

    Defaults of the spec'd methods are the issue's (z 1.5, volume 5, ratio 2, modified z 3.5). The
    combined detector's (``smooth``, ``prominence_z``, ``window``) sit at the optimum of the
    accuracy benchmark's grid search on its training split (``python -m bench --only
    peaks_accuracy``), which is flat there: ``peaks_params_combined`` shows what the search picks,
    ``peaks_f1_combined_defaults`` what these defaults score on the test split. ``window`` stays at
    41 when the search prefers 21, because real high-volume nodes can be wider than the
    generator's, and a window shorter than a peak's flanks understates its prominence.
    """

    method: str = "combined"  # combined | normal | ratio | robust
    z_min: float = 1.5
    min_volume: float = 5.0
    ratio: float = 2.0
    neighbours: int = 2
    robust_z: float = 3.5
    smooth: float = 0.7  # combined: gaussian sigma (buckets) applied to sqrt(volume) first
    prominence_z: float = 3.75  # combined: minimum prominence in units of bucket noise
    window: int = 41  # combined: prominence window (buckets), like find_peaks(wlen=...)
    value_area_fraction: float = 0.70
    two_rows: bool = True
    node_prominence_z: float = 6.0  # volume nodes: minimum prominence in bucket-noise units
    node_window: int = 201  # volume nodes: prominence window (buckets)
    vacuum_alpha: float = 0.2
    vacuum_min_run: int = 3
    resonance_tolerance: float = 2.0  # in buckets
    max_zones: int = 5
    weight_scale: float = 0.005  # weights exp(-|p - mid| / (weight_scale * mid)); <= 0: uniform
    max_buckets: int = 20_000  # dense grid cap per profile (buckets nearest the mid are kept)


    @cached_property
    def kernel(self) -> KernelParams:
        """These parameters as the kernels take them (built once per instance; frozen, so safe)."""
        return _kernel_params(self)


METHODS = ("combined", "normal", "ratio", "robust")
"""The peak detectors by name; a kernel knows a method by its index here."""

KernelParams = NamedTuple(  # type: ignore[misc]
    "KernelParams", [(f.name, float) for f in dataclasses.fields(PeakParams)]
)
KernelParams.__doc__ = """``PeakParams`` as numba takes them: every field a float (the method as its index in
``METHODS``, counts and flags as 0.0/1.0 ...), kernels convert back with ``int()``.

Why derived from ``PeakParams`` field for field: one list of thresholds, never two to keep in
step. Why all floats: numba's dispatcher types a tuple of one type ~6x faster than a mixed one
(1 us against 7 us a call, measured), and numba compiles one specialisation per argument type,
so a config that says ``z_min: 2`` (an int) must not reach it as an int."""


def _kernel_params(p: PeakParams) -> KernelParams:
    if p.method not in METHODS:
        raise ValueError(f"unknown peak method {p.method!r} ({', '.join(METHODS)})")
    fields = dataclasses.fields(p)
    values = (METHODS.index(p.method) if f.name == "method" else getattr(p, f.name) for f in fields)
    return KernelParams(*(float(v) for v in values))


_DEFAULT = PeakParams()  # built once: a frozen dataclass of 18 fields costs microseconds to build


class Peak(NamedTuple):
    """A bucket whose volume stands out, and the zone of buckets around it.

    ``score`` is the method's statistic (z, ratio, modified z, or prominence in noise units);
    ``confidence`` maps it into [0, 1]: 0.5 at the method's threshold, 1.0 at twice it.
    ``low_index``/``high_index`` are the zone edges (inclusive).

    Why a NamedTuple and not a frozen dataclass: both are immutable records, but a frozen
    dataclass costs ~1-2 us to build (``object.__setattr__`` per field) against ~0.2 us, and a
    3000-bucket profile yields tens of peaks: the objects alone would break the 25 us budget.
    """

    index: int
    score: float
    low_index: int
    high_index: int
    confidence: float

    @property
    def z(self) -> float:
        """The score under its old name; kept until every caller reads ``score``."""
        return self.score


# --- kernels --------------------------------------------------------------------------------------


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _collect(v, cand, score, keep, threshold):  # type: ignore[no-untyped-def]
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


@njit(cache=True, fastmath=_FAST)
def _weighted_moments(v: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``v`` under weights ``w`` (uniform when ``w`` is empty).

    Two passes (mean, then squared deviations) rather than sum of squares, which cancels badly
    when the mean is large against the spread; ``fastmath`` lets each pass vectorise.
    """
    n = v.size
    sw = 0.0
    swv = 0.0
    if w.size == n:
        for i in range(n):
            sw += w[i]
            swv += w[i] * v[i]
    else:
        sw = float(n)
        for i in range(n):
            swv += v[i]
    if sw <= 0.0:
        return 0.0, 0.0
    mu = swv / sw
    ss = 0.0
    if w.size == n:
        for i in range(n):
            d = v[i] - mu
            ss += w[i] * d * d
    else:
        for i in range(n):
            d = v[i] - mu
            ss += d * d
    return mu, math.sqrt(max(ss / sw, 0.0))


@njit(cache=True)
def _normal_kernel(v, w, z_min, min_volume, order):  # type: ignore[no-untyped-def]
    mu, sd = _weighted_moments(v, w)
    cand = _local_maxima(v, order)
    score = np.empty(cand.size, dtype=np.float64)
    keep = np.zeros(cand.size, dtype=np.bool_)
    if sd > 0.0:
        for t in range(cand.size):
            i = cand[t]
            score[t] = (v[i] - mu) / sd
            keep[t] = score[t] >= z_min and v[i] >= min_volume
    return _collect(v, cand, score, keep, z_min)


@njit(cache=True)
def _ratio_kernel(v, ratio, min_volume, neighbours):  # type: ignore[no-untyped-def]
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
        keep[t] = score[t] >= ratio and v[i] >= min_volume
    return _collect(v, cand, score, keep, ratio)


@njit(cache=True)
def _robust_scale(x: np.ndarray) -> tuple[float, float]:
    """(median, sigma estimate): MAD / 0.6745, or 1.253314 * MeanAD when the MAD is zero."""
    med = np.median(x)
    dev = np.abs(x - med)
    mad = np.median(dev)
    if mad > 0.0:
        return med, mad * _MAD_TO_SIGMA
    return med, _MEANAD_TO_SIGMA * dev.mean()


@njit(cache=True)
def _robust_kernel(v, z_min, min_volume, order):  # type: ignore[no-untyped-def]
    med, scale = _robust_scale(v)
    cand = _local_maxima(v, order)
    score = np.empty(cand.size, dtype=np.float64)
    keep = np.zeros(cand.size, dtype=np.bool_)
    if scale > 0.0:
        for t in range(cand.size):
            i = cand[t]
            score[t] = (v[i] - med) / scale  # == 0.6745 (v - med) / MAD
            keep[t] = score[t] > z_min and v[i] >= min_volume
    return _collect(v, cand, score, keep, z_min)


@njit(cache=True, fastmath=_FAST)
def _smooth(y: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter with edge replication (scipy ``mode="nearest"``), radius ceil(3 sigma).

    Why it is written this way: loops over views indexed from 0 need no negative-index checks, so
    numba compiles them to SIMD; up to radius 3 (sigma <= 1, the tuned range) all taps go in one
    pass, which is ~3x faster than a pass per tap; wider kernels take a pass per tap pair.
    """
    n = y.size
    if sigma <= 0.0 or n == 0:
        return y.copy()
    r = math.ceil(3.0 * sigma)
    k = np.zeros(max(r, 3) + 1, dtype=np.float64)
    s = 0.0
    for t in range(r + 1):
        k[t] = math.exp(-0.5 * (t / sigma) ** 2)
        s += k[t] if t == 0 else 2.0 * k[t]
    k /= s
    out = np.empty(n, dtype=np.float64)
    if r <= 3:
        r = 3  # taps past the true radius are zero
        m = n - 6
        if m > 0:
            o = out[3 : 3 + m]
            a3, a2, a1, c = y[0:m], y[1 : 1 + m], y[2 : 2 + m], y[3 : 3 + m]
            b1, b2, b3 = y[4 : 4 + m], y[5 : 5 + m], y[6 : 6 + m]
            k0, k1, k2, k3 = k[0], k[1], k[2], k[3]
            for i in range(m):
                o[i] = k0 * c[i] + k1 * (a1[i] + b1[i]) + k2 * (a2[i] + b2[i]) + k3 * (a3[i] + b3[i])
    else:
        m = n - 2 * r
        if m > 0:
            o = out[r : r + m]
            c = y[r : r + m]
            k0 = k[0]
            for i in range(m):
                o[i] = k0 * c[i]
            for t in range(1, r + 1):
                kt = k[t]
                lo = y[r - t : r - t + m]
                hi = y[r + t : r + t + m]
                for i in range(m):
                    o[i] += kt * (lo[i] + hi[i])
    for e in range(min(2 * r, n)):  # the edges, with the end values repeated outwards
        i = e if e < r else n - 2 * r + e
        if i < 0 or (r <= i < n - r):
            continue
        acc = k[0] * y[i]
        for t in range(1, r + 1):
            acc += k[t] * (y[max(i - t, 0)] + y[min(i + t, n - 1)])
        out[i] = acc
    return out


@njit(cache=True, fastmath=_FAST)
def _noise_scale(y: np.ndarray) -> float:
    """Bucket noise sigma of ``y`` from its first differences: a trimmed mean of ``|y[i+1] - y[i]|``.

    Why differences: they cancel the profile's shape, so they measure bucket-to-bucket noise and
    not the spread of the profile (which the peaks themselves inflate). Why a trimmed mean and not
    the MAD: differences above 3x the mean (the flanks of peaks) are dropped twice, which makes it
    as robust here as the MAD (equal F1 on the benchmark's training split) at a third of the cost:
    three vectorised passes instead of a selection. For normal noise ``E|d| = 2 sigma / sqrt(pi)``.
    When all but a few differences are zero (a flat profile with walls) the trimmed mean is zero;
    then the plain mean is used, as Iglewicz and Hoaglin fall back from the MAD to the MeanAD.
    """
    n = y.size
    if n < 2:
        return 0.0
    s = 0.0
    for i in range(n - 1):
        s += abs(y[i + 1] - y[i])
    m = first = s / (n - 1)
    for _ in range(2):
        cut = 3.0 * m
        s = 0.0
        c = 0.0
        for i in range(n - 1):
            a = abs(y[i + 1] - y[i])
            k = 1.0 if a <= cut else 0.0
            s += a * k
            c += k
        if c <= 0.0:
            break
        m = s / c
    if m <= 0.0:  # noise-free apart from a few steps (the MAD = 0 case): fall back to the plain mean
        m = first
    return m * math.sqrt(math.pi) / 2.0


@njit(cache=True, fastmath=_FAST)
def _window_floor(ys: np.ndarray, half: int) -> np.ndarray:
    """A lower bound on ``min(ys[i - half : i + half + 1])`` for every ``i`` (exact inside).

    Sparse-table doubling: ``m`` holds the minimum over ``2^L`` buckets starting at each index,
    built by ``L`` vectorised passes; two overlapping spans of ``2^L <= 2 half + 1`` cover a window
    exactly. Near the ends the spans are clamped into the array and may reach past the window,
    which only lowers the bound.
    """
    n = ys.size
    width = 2 * half + 1
    span = 1
    while span * 2 <= min(width, n):
        span *= 2
    m = ys.copy()
    nxt = np.empty(n, dtype=np.float64)
    s = 1
    while s < span:
        cnt = n - 2 * s + 1
        a = m[0:cnt]
        b = m[s : s + cnt]
        o = nxt[0:cnt]
        for i in range(cnt):
            x = a[i]
            z = b[i]
            o[i] = x if x < z else z
        m, nxt = nxt, m
        s *= 2
    last = n - span  # the last valid start of a span
    out = np.empty(n, dtype=np.float64)
    lo_i = half
    hi_i = n - 1 - half
    if hi_i >= lo_i and half - span + 1 + hi_i <= last:
        cnt = hi_i - lo_i + 1
        a = m[0:cnt]
        b = m[2 * half - span + 1 : 2 * half - span + 1 + cnt]
        o = out[lo_i : lo_i + cnt]
        for i in range(cnt):
            x = a[i]
            z = b[i]
            o[i] = x if x < z else z
    else:
        lo_i, hi_i = n, n - 1  # no interior: every index is an edge
    for e in range(min(lo_i, n) + max(n - 1 - hi_i, 0)):  # the edges only
        i = e if e < min(lo_i, n) else hi_i + 1 + e - min(lo_i, n)
        s1 = min(max(i - half, 0), last)
        s2 = max(min(i + half, n - 1) - span + 1, 0)
        out[i] = min(m[s1], m[min(s2, last)])
    return out


@njit(cache=True, fastmath=_FAST)
def _prominent_candidates(ys: np.ndarray, half: int, cut: float) -> np.ndarray:
    """Local maxima of ``ys`` that rise at least ``cut`` above the minimum of their window.

    Why: a noisy profile has a local maximum every few buckets, and walking out from each to
    measure its prominence was most of the detector's time. ``prominence <= top - min(window)``
    (both sides' minima lie in the window), so dropping maxima with ``top - min < cut`` changes
    nothing. The test is one vectorised pass into a byte mask, read 8 bytes at a time, so the
    few survivors are found without a branch per bucket. Plateaus count once, at their middle,
    as in :func:`_local_maxima`; the two ends never count (a prominence needs both sides).
    """
    n = ys.size
    words = (n + 7) // 8
    mask = np.zeros(words * 8, dtype=np.uint8)
    if n < 3:
        return np.empty(0, dtype=np.int64)
    floor = _window_floor(ys, half)
    left = ys[0 : n - 2]
    here = ys[1 : n - 1]
    right = ys[2:n]
    fl = floor[1 : n - 1]
    mk = mask[1 : n - 1]
    for t in range(n - 2):
        h = here[t]
        mk[t] = (h > left[t]) & (h >= right[t]) & (h - fl[t] >= cut)
    packed = mask.view(np.uint64)
    out = np.empty(n, dtype=np.int64)
    k = 0
    for w in range(words):
        if packed[w] == 0:
            continue
        for i in range(w * 8, w * 8 + 8):
            if mask[i] == 0:
                continue
            j = i
            while j + 1 < n and ys[j + 1] == ys[i]:
                j += 1
            if j + 1 >= n or ys[j + 1] > ys[i]:
                continue  # a shelf on the way up, or a plateau running into the edge: no peak
            out[k] = (i + j) // 2
            k += 1
    return out[:k]


@njit(cache=True, fastmath=_FAST)
def _sqrt(v: np.ndarray) -> np.ndarray:
    """``sqrt(v)``, rooted in single precision.

    Why single precision: the detector compares prominences with a few noise units, for which 7
    significant digits are ample, and the float32 root is ~2.5x cheaper (it was a sixth of the
    detector's time).
    """
    y = np.empty(v.size, dtype=np.float64)
    for i in range(v.size):
        y[i] = np.float64(np.sqrt(np.float32(v[i])))
    return y


@njit(cache=True, inline="always")
def _prominence(ys: np.ndarray, i: int, half: int) -> float:
    """Prominence of the local maximum ``ys[i]`` within ``half`` buckets either side: SciPy's
    definition with ``wlen = 2 half + 1`` (walk out until higher signal or the window's edge; the
    higher of the two sides' minima is the base)."""
    n = ys.size
    top = ys[i]
    j = i - 1
    lmin = top
    stop = max(0, i - half)
    while j >= stop and ys[j] <= top:
        lmin = min(lmin, ys[j])
        j -= 1
    j = i + 1
    rmin = top
    stop = min(n - 1, i + half)
    while j <= stop and ys[j] <= top:
        rmin = min(rmin, ys[j])
        j += 1
    return top - max(lmin, rmin)


@njit(cache=True)
def _combined_kernel(v, w, smooth, prominence_z, window, min_volume, z_min):  # type: ignore[no-untyped-def]
    """Prominence of the smoothed square-root profile, in units of its bucket noise.

    Why the square root: traded (and resting) volume is a sum over a Poisson number of trades, so
    its variance grows with its level; the square root makes the noise roughly equal everywhere,
    so one threshold fits the thin tails and the thick middle alike. Edges are never peaks (a
    prominence needs both sides).
    """
    n = v.size
    y = _sqrt(v)
    mu, sd = _weighted_moments(v, w)
    sigma = _noise_scale(y)
    ys = _smooth(y, smooth)
    half = max(window // 2, 1)
    cut_abs = prominence_z * sigma
    cand = _prominent_candidates(ys, half, cut_abs) if sigma > 0.0 else np.empty(0, dtype=np.int64)
    m = cand.size
    score = np.zeros(m, dtype=np.float64)
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    keep = np.zeros(m, dtype=np.bool_)
    kept = 0
    for t in range(m):
        i = cand[t]
        top = ys[i]
        prom = _prominence(ys, i, half)
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
        if biggest < min_volume or not biggest > 0.0:
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


def _f64(vol: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vol, dtype=np.float64)


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return _EMPTY_F
    w = _f64(weights)
    if w.size != n:
        raise ValueError(f"weights and volumes differ in length ({w.size} != {n})")
    return w


# --- peak detectors ---------------------------------------------------------------------------------


def normal_peaks(
    vol: np.ndarray,
    weights: np.ndarray | None = None,
    z_min: float = 1.5,
    min_volume: float = 5.0,
    order: int = 1,
) -> list[Peak]:
    """Local maxima with weighted z-score ``(v - mu) / sigma >= z_min`` and ``v >= min_volume``.

    ``mu = sum(w v) / sum(w)``, ``sigma^2 = sum(w (v - mu)^2) / sum(w)``; weights that decay with
    distance from the mid make the statistics describe the book where it matters. ``order`` > 1
    asks for the highest bucket within ``order`` on each side, which stops noise on one broad peak
    from reporting it several times. The zone holds the contiguous buckets with >= half its volume.
    """
    v = _f64(vol)
    if v.size < 3:
        return []
    return _as_peaks(_normal_kernel(v, _weights(weights, v.size), z_min, min_volume, max(order, 1)))


def zscore_peaks(vol: np.ndarray, z_min: float = 1.5, min_volume: float = 5.0) -> list[Peak]:
    """:func:`normal_peaks` with uniform weights, under the name the first handler imported."""
    return normal_peaks(vol, None, z_min, min_volume)


def ratio_peaks(
    vol: np.ndarray, ratio: float = 2.0, min_volume: float = 5.0, neighbours: int = 2
) -> list[Peak]:
    """Buckets holding ``>= ratio`` x the mean of their ``neighbours`` buckets on each side.

    The candidate must also be the highest within ``neighbours`` buckets (so a wall and its
    shoulder are one peak) and hold at least ``min_volume``. Score: the ratio itself.
    """
    v = _f64(vol)
    if v.size < 3:
        return []
    return _as_peaks(_ratio_kernel(v, ratio, min_volume, max(int(neighbours), 1)))


def robust_peaks(vol: np.ndarray, z_min: float = 3.5, min_volume: float = 5.0, order: int = 1) -> list[Peak]:
    """Local maxima with modified z-score ``M = 0.6745 (v - median) / MAD > z_min``.

    Iglewicz & Hoaglin's test: the median and the MAD ignore the peaks they are looking for, so
    one very large wall does not hide the others (it would inflate the standard deviation). When
    more than half the buckets are equal (MAD = 0) it falls back to ``1.253314 * MeanAD``.
    """
    v = _f64(vol)
    if v.size < 3:
        return []
    return _as_peaks(_robust_kernel(v, z_min, min_volume, max(order, 1)))


def combined_peaks(
    vol: np.ndarray, weights: np.ndarray | None = None, params: PeakParams | None = None
) -> list[Peak]:
    """The default detector: a score fusion tuned on the accuracy benchmark's training split.

    1. ``y = sqrt(v)`` stabilises the variance of count-like volume; the noise scale ``s`` is a
       trimmed mean of the first differences of ``y`` (see :func:`_noise_scale`);
    2. ``y`` is smoothed with a gaussian of ``params.smooth`` buckets, so noise on a broad peak does
       not split it into many local maxima;
    3. a local maximum is a peak when its prominence (SciPy's definition, within ``params.window``
       buckets, which keeps a baseline trend local) is at least ``params.prominence_z * s`` and
       its zone holds a bucket of at least ``params.min_volume`` (raw volume: smoothing spreads a
       one-bucket wall over its neighbours).

    Score: prominence in noise units. Confidence: the mean of the prominence's and the (weighted)
    z-score's confidences, each 0.5 at its threshold and 1.0 at twice it. The zone spans the
    buckets within half the prominence of the top (``peak_widths(rel_height=0.5)``-like).
    """
    p = params or _DEFAULT
    v = _f64(vol)
    if v.size < 3:
        return []
    w = _weights(weights, v.size)
    return _as_peaks(
        _combined_kernel(v, w, p.smooth, p.prominence_z, max(int(p.window), 3), p.min_volume, p.z_min)
    )


@njit(cache=True)
def detect_arrays(v, w, kp):  # type: ignore[no-untyped-def]
    """Run the detector ``kp.method`` names: ``(index, score, low, high, confidence)`` arrays.

    The kernel form of :func:`detect`, for callers that stay in arrays (``depthflow.peaks.zones``):
    five arrays cost one boxing each, where a ``Peak`` per peak cost a Python object each.
    """
    if v.size < 3:
        none = np.empty(0, dtype=np.int64)
        return none, np.empty(0, dtype=np.float64), none, none, np.empty(0, dtype=np.float64)
    method = int(kp.method)
    if method == 1:
        return _normal_kernel(v, w, kp.z_min, kp.min_volume, 1)
    if method == 2:
        return _ratio_kernel(v, kp.ratio, kp.min_volume, max(int(kp.neighbours), 1))
    if method == 3:
        return _robust_kernel(v, kp.robust_z, kp.min_volume, 1)
    return _combined_kernel(v, w, kp.smooth, kp.prominence_z, max(int(kp.window), 3), kp.min_volume, kp.z_min)


def detect(
    vol: np.ndarray, weights: np.ndarray | None = None, params: PeakParams | None = None
) -> list[Peak]:
    """Run the detector ``params.method`` names with its parameters from ``params``."""
    p = params or _DEFAULT
    v = _f64(vol)
    return _as_peaks(detect_arrays(v, _weights(weights, v.size), p.kernel))


# --- point of control, value area, nodes, vacuums -----------------------------------------------------


@njit(cache=True)
def _poc_kernel(px: np.ndarray, vol: np.ndarray) -> int:
    n = vol.size
    top = vol.max()
    ties = 0
    for i in range(n):  # branch-free: vectorises
        ties += vol[i] == top
    if ties == 1:  # the usual case: no tie to break, so no sums either side of the middle
        return int(np.argmax(vol))
    middle = 0.5 * (px[0] + px[n - 1])
    tol = 1e-9 * max(abs(px[n - 1] - px[0]), 1e-300)
    below = 0.0
    above = 0.0
    for i in range(n):
        if px[i] < middle - tol:
            below += vol[i]
        elif px[i] > middle + tol:
            above += vol[i]
    best = -1
    best_d = np.inf
    for i in range(n):
        if vol[i] != top:
            continue
        d = abs(px[i] - middle)
        # equally near the middle (within tol): the side of the midpoint with more volume; when
        # the sides balance, the first (lower) one stays
        tie = best >= 0 and abs(d - best_d) <= tol
        if best < 0 or d < best_d - tol:
            best, best_d = i, d
        elif tie and ((above > below and px[i] > px[best]) or (below > above and px[i] < px[best])):
            best = i
    return best


def point_of_control(px: np.ndarray, vol: np.ndarray) -> int:
    """Index of the highest-volume bucket; ties: nearest the middle of the range, then the side of
    the midpoint with more volume, then the lower price (mypivots' rules, domain.md §4).

    Raises ``ValueError`` on an empty profile: it has no point of control.
    """
    v = _f64(vol)
    if v.size == 0:
        raise ValueError("point of control of an empty profile")
    return int(_poc_kernel(_f64(px), v))


@njit(cache=True)
def _value_area_kernel(v: np.ndarray, poc: int, fraction: float, step: int) -> tuple[int, int]:
    n = v.size
    total = 0.0
    for i in range(n):
        total += v[i]
    target = fraction * total
    lo = poc
    hi = poc
    acc = v[poc]
    while acc < target and (lo > 0 or hi < n - 1):
        up = -1.0
        if hi < n - 1:
            up = 0.0
            for i in range(hi + 1, min(hi + step, n - 1) + 1):
                up += v[i]
        dn = -1.0
        if lo > 0:
            dn = 0.0
            for i in range(max(lo - step, 0), lo):
                dn += v[i]
        if up >= dn:  # ties go up
            acc += up
            hi = min(hi + step, n - 1)
        else:
            acc += dn
            lo = max(lo - step, 0)
    return lo, hi


def value_area(vol: np.ndarray, poc: int, fraction: float = 0.70, two_rows: bool = True) -> tuple[int, int]:
    """(low, high) indices of the value area grown from ``poc`` until ``fraction`` of the volume.

    CME/Dalton "method A" (``two_rows``): compare the next two rows above with the next two below
    and add the heavier pair, ties going up; rows past an end count as missing. With ``two_rows``
    false, one row at a time (the CBOT/purebytes worked example). ``vol`` must be dense (one entry
    per price row; a missing row is a zero), or "the next row" is not the next price.
    """
    v = _f64(vol)
    if v.size == 0:
        raise ValueError("value area of an empty profile")
    if not 0 <= poc < v.size:
        raise ValueError(f"poc index {poc} outside the profile (0..{v.size - 1})")
    lo, hi = _value_area_kernel(v, int(poc), float(fraction), 2 if two_rows else 1)
    return int(lo), int(hi)


@njit(cache=True)
def _prominent_maxima(ys: np.ndarray, half: int, cut: float) -> np.ndarray:
    """Interior local maxima of ``ys`` whose prominence (window ``2 half + 1``) is at least ``cut``."""
    cand = _prominent_candidates(ys, half, cut)
    out = np.empty(cand.size, dtype=np.int64)
    k = 0
    for t in range(cand.size):
        prom = _prominence(ys, cand[t], half)
        if prom >= cut and prom > 0.0:
            out[k] = cand[t]
            k += 1
    return out[:k]


@njit(cache=True)
def _volume_nodes_kernel(v, smooth, prominence_z, window):  # type: ignore[no-untyped-def]
    none = np.empty(0, dtype=np.int64)
    if v.size < 3:
        return none, none
    y = _sqrt(v)
    sigma = _noise_scale(y)
    if not sigma > 0.0:
        return none, none
    ys = _smooth(y, smooth)
    half = max(window // 2, 1)
    cut = prominence_z * sigma
    hvn = _prominent_maxima(ys, half, cut)
    hvn = hvn[v[hvn] > 0.0]  # between two walls the smoothed top can fall on an empty bucket
    lvn = np.empty(max(hvn.size - 1, 0), dtype=np.int64)
    k = 0
    for t in range(hvn.size - 1):
        a, b = hvn[t], hvn[t + 1]
        low = a + 1 + np.argmin(ys[a + 1 : b]) if b > a + 1 else a
        if min(ys[a], ys[b]) - ys[low] >= cut:
            lvn[k] = low
            k += 1
    return hvn, lvn[:k]


def volume_nodes(
    vol: np.ndarray, smooth: float = 0.7, prominence_z: float = 6.0, window: int = 201
) -> tuple[np.ndarray, np.ndarray]:
    """(HVN, LVN) indices: the peak form of domain.md §4. HVN: a hump of the profile standing out
    by a prominence of ``prominence_z`` bucket-noise units within ``window`` buckets, measured like
    the combined detector's (square root, light smoothing, noise from first differences). LVN:
    the lowest bucket between two neighbouring HVNs, when it lies that far below the lower of them
    ("LVNs mark the edges between HVNs").

    Why the LVN between humps and not any prominent trough: a wide, flat low between two humps
    has no trough standing out within a window, yet it is exactly the low-volume area a trader
    wants marked; its lowest bucket is as good a level for it as any.

    Why not the threshold form (``v >= mu + z sigma``, ``v <= mu - z sigma``) at local extrema: on
    a 48 h trade profile of ~2400 buckets it gave ~100 HVN and ~200 LVN, every noise wiggle above
    or below a line; a trader reads a handful of humps and the troughs between them. Why a wider
    window than the detector's: nodes are the profile's structure (tens of buckets), peaks are
    walls.
    """
    return _volume_nodes_kernel(_f64(vol), float(smooth), float(prominence_z), max(int(window), 3))


@njit(cache=True)
def profile_levels(px, v, kp):  # type: ignore[no-untyped-def]
    """Point of control, value area (low, high) and volume nodes of one dense, non-empty profile:
    the kernel form of :func:`point_of_control`, :func:`value_area` and :func:`volume_nodes`."""
    poc = _poc_kernel(px, v)
    lo, hi = _value_area_kernel(v, poc, kp.value_area_fraction, 2 if kp.two_rows else 1)
    hvn, lvn = _volume_nodes_kernel(v, kp.smooth, kp.node_prominence_z, max(int(kp.node_window), 3))
    return poc, lo, hi, hvn, lvn


@njit(cache=True)
def _vacuum_runs(keys: np.ndarray, v: np.ndarray, k0: int, k1: int, cut: float, min_run: int) -> np.ndarray:
    """(first, last) bucket keys of runs of >= ``min_run`` buckets with volume <= ``cut`` in
    ``k0..k1``; ``keys`` ascending and unique, and a key missing in between is a zero (low)."""
    out = np.empty((keys.size + 1, 2), dtype=np.int64)
    m = 0
    start = -1
    open_run = False
    nxt = k0  # first bucket not yet examined
    for t in range(keys.size):
        k = keys[t]
        if k > nxt and not open_run:
            start, open_run = nxt, True
        if v[t] <= cut:
            if not open_run:
                start, open_run = k, True
        else:
            if open_run and k - start >= min_run:
                out[m, 0] = start
                out[m, 1] = k - 1
                m += 1
            open_run = False
        nxt = k + 1
    if nxt <= k1 and not open_run:
        start, open_run = nxt, True
    if open_run and k1 + 1 - start >= min_run:
        out[m, 0] = start
        out[m, 1] = k1
        m += 1
    return out[:m]


_MAX_KEY = 2.0**61  # bucket keys beyond this are not kept (a range of them must fit in int64)


@njit(cache=True, inline="always")
def _rounded(q: float) -> float:
    """``np.round(q, 9)``, operation for operation: a price that is a bucket edge up to float error
    gives a whole number of buckets (``0.29 / 0.01`` is ``28.999999999999996``)."""
    return np.rint(q * 1e9) / 1e9


@njit(cache=True)
def _insertion_order(keys: np.ndarray, budget: int) -> tuple[np.ndarray, bool]:
    """The stable ascending order of ``keys`` by insertion, or ``False`` once it has moved
    elements more than ``budget`` places in all (the input is then far from sorted)."""
    n = keys.size
    order = np.arange(n)
    for i in range(1, n):
        x = order[i]
        j = i
        while j > 0 and keys[order[j - 1]] > keys[x]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = x
        budget -= i - j
        if budget < 0:
            return order, False
    return order, True


@njit(cache=True)
def _sum_per_key(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending unique keys with the values of each key summed in input order.

    Why an insertion sort first: the usual input is a book's bids then its asks, two ascending
    runs that share at most the bucket holding the mid, which it sorts in one pass; numba's
    general sorts cost ~10x more on that. It gives way to a merge sort (stable too) once it has
    moved elements more than a few places per key, so any order costs O(n log n), not n^2.
    """
    n = keys.size
    order, done = _insertion_order(keys, 8 * n)
    if not done:
        order = np.argsort(keys, kind="mergesort")
    uk = np.empty(n, dtype=np.int64)
    uv = np.empty(n, dtype=np.float64)
    u = 0
    for t in range(n):
        j = order[t]
        if u > 0 and uk[u - 1] == keys[j]:
            uv[u - 1] += vals[j]
        else:
            uk[u] = keys[j]
            uv[u] = vals[j]
            u += 1
    return uk[:u], uv[:u]


@njit(cache=True)
def _median_with_zeros(vals: np.ndarray, zeros: int) -> float:
    """The median of ``vals`` (all >= 0) together with ``zeros`` extra zeros.

    One selection (O(n)) rather than a sort: numba's sort costs ~60 ns per element and log. For
    an even count, the lower middle is the largest of what the selection put below the upper."""
    total = vals.size + zeros
    hi = total // 2 - zeros  # the upper middle's rank among vals
    if hi < 0:
        return 0.0
    part = np.partition(vals, hi)
    upper = part[hi]
    if total % 2:
        return upper
    lower = part[:hi].max() if hi > 0 else 0.0
    return 0.5 * (lower + upper)


@njit(cache=True)
def vacuum_bands(px, vol, size, known_low, known_high, alpha, min_run):  # type: ignore[no-untyped-def]
    """The kernel of :func:`vacuums`: bands as an ``(n, 2)`` array; see there."""
    none = np.empty((0, 2), dtype=np.float64)
    if not (size > 0 and math.isfinite(known_low) and math.isfinite(known_high)) or known_high <= known_low:
        return none
    k0f = math.ceil(_rounded(known_low / size))
    k1f = math.floor(_rounded(known_high / size)) - 1  # last bucket whose upper edge <= known_high
    if not (abs(k0f) <= _MAX_KEY and abs(k1f) <= _MAX_KEY):  # no int64 grid
        return none
    k0 = np.int64(k0f)
    k1 = np.int64(k1f)
    total = k1 - k0 + 1
    if total < max(min_run, 1):
        return none
    keys = np.empty(px.size, dtype=np.int64)
    vals = np.empty(px.size, dtype=np.float64)
    m = 0
    ordered = True
    for i in range(px.size):
        p = px[i]
        if not math.isfinite(p):
            continue
        k = math.floor(_rounded(p / size))
        if not k0f <= k <= k1f:
            continue
        q = vol[i]
        keys[m] = np.int64(k)
        vals[m] = q if math.isfinite(q) and q > 0.0 else 0.0
        ordered = ordered and (m == 0 or keys[m] > keys[m - 1])
        m += 1
    keys, vals = keys[:m], vals[:m]
    if not ordered:  # unsorted or repeated keys: sum per key, in input order within a key
        keys, vals = _sum_per_key(keys, vals)
    # median over `total` buckets: the present values plus (total - present) zeros
    median = _median_with_zeros(vals, total - keys.size)
    runs = _vacuum_runs(keys, vals, k0, k1, alpha * median, max(min_run, 1))
    out = np.empty((runs.shape[0], 2), dtype=np.float64)
    for j in range(runs.shape[0]):
        out[j, 0] = max(runs[j, 0] * size, known_low)
        out[j, 1] = min((runs[j, 1] + 1) * size, known_high)
    return out


def vacuums(
    px: np.ndarray,
    vol: np.ndarray,
    size: float,
    known_low: float,
    known_high: float,
    alpha: float = 0.2,
    min_run: int = 3,
) -> list[tuple[float, float]]:
    """Price bands ``(low, high)`` of >= ``min_run`` consecutive buckets with ``v <= alpha * median``.

    Only buckets lying wholly inside ``[known_low, known_high]`` (the snapshot's coverage) are
    considered, and bands are clipped to it: beyond the snapshot the book is unknown, not empty.
    ``px``/``vol`` may be sparse (only non-empty buckets) and in any order: a bucket missing inside
    the range is a zero, as is a bad volume (NaN, inf, negative); a non-finite price is skipped.
    The median is over every bucket of the range, zeros included, computed without building the
    dense grid, so a huge range costs no memory.
    """
    bands = vacuum_bands(_f64(px), _f64(vol), float(size), float(known_low), float(known_high),
                         float(alpha), int(min_run))
    return [(a, b) for a, b in bands.tolist()]


# --- warm-up ------------------------------------------------------------------------------------------


def _warm() -> None:
    """Compile (or load from cache) every kernel now, with the argument types used later."""
    v = np.array([1.0, 3.0, 9.0, 3.0, 1.0, 0.0, 2.0, 8.0, 2.0, 1.0])
    px = np.arange(v.size, dtype=np.float64)
    normal_peaks(v, np.ones(v.size))
    normal_peaks(v)
    ratio_peaks(v)
    robust_peaks(v)
    combined_peaks(v)
    combined_peaks(v, np.ones(v.size))
    value_area(v, point_of_control(px, v))
    volume_nodes(v)
    vacuums(px, v, 1.0, 0.0, float(v.size))


_warm()

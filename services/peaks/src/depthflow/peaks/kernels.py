"""Numeric kernels shared by the wave-peak detector and the volume nodes: the volume scale, the
smoothed profile, bucket noise and prominence (SciPy's definition).

Pure functions over float64 arrays, numba kernels (:func:`depthflow.peaks.jit.kernel`, which
keeps their on-disk cache right although other modules compile them into their own kernels).
"""

from __future__ import annotations

import math

import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from depthflow.peaks.jit import FAST, kernel
from depthflow.peaks.params import KernelParams

__all__ = [
    "BLOCK",
    "as_f64",
    "block_candidates",
    "byte_mask",
    "found_arrays",
    "kernel_params",
    "level_growth",
    "marked",
    "masked_maxima",
    "neighbours",
    "noise_scale",
    "nonzero_total",
    "prominence",
    "prominent_maxima",
    "root32",
    "smooth_gaussian",
    "zone_around",
]

BLOCK = 32
"""Buckets per block of the local noise scale: fine enough to follow a book's decay, coarse
enough that a block's trimmed mean is steady (31 differences)."""


_N_PARAMS = len(KernelParams._fields)


@kernel(inline="always")
def kernel_params(a):
    """``PeakParams.kernel_array`` back into the :class:`~depthflow.peaks.params.KernelParams`
    tuple, inside numba: the array crosses from Python cheaply, the kernels read fields by name.
    (``to_fixed_tuple``: numba's array-to-tuple of a length known when compiling.)"""
    return KernelParams(*to_fixed_tuple(a, _N_PARAMS))  # type: ignore[call-arg]  # an intrinsic: numba passes its typing context


def as_f64(vol: np.ndarray) -> np.ndarray:
    """A contiguous float64 array (a copy only when needed)."""
    return np.ascontiguousarray(vol, dtype=np.float64)


@kernel(inline="always")
def byte_mask(n: int) -> np.ndarray:
    """A zeroed byte per bucket, padded to whole 8-byte words: a mask :func:`marked` reads."""
    return np.zeros(((n + 7) // 8) * 8, dtype=np.uint8)


@kernel(inline="always")
def neighbours(y: np.ndarray, mask: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """For buckets ``lo .. hi - 1`` (``1 <= lo``, ``hi <= y.size - 1``): views of their left
    neighbours, themselves and their right neighbours in ``y``, and of their bytes of ``mask``,
    each indexed from 0. Why views: a loop over them needs no negative-index checks, so numba
    vectorises it; every block-by-block mask of the peaks kernels is written over them."""
    m = hi - lo
    return y[lo - 1 : lo - 1 + m], y[lo : lo + m], y[lo + 1 : lo + 1 + m], mask[lo : lo + m]


@kernel(fastmath=FAST)
def nonzero_total(v: np.ndarray) -> tuple[float, float]:
    """Total volume and number of the non-empty buckets: their mean (0 when none) is a profile's
    own volume scale.

    Why non-empty ones: a sparse book (a few levels far apart on a fine grid) has mostly empty
    buckets, whose zeros say how fine the grid is, not how big the volume is.
    """
    s = 0.0
    c = 0.0
    for i in range(v.size):
        x = v[i]
        s += x
        c += 1.0 if x > 0.0 else 0.0
    return s, c


@kernel(fastmath=FAST)
def smooth_gaussian(y: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter with edge replication (scipy ``mode="nearest"``), radius ceil(3 sigma).

    Why it is written this way: loops over views indexed from 0 need no negative-index checks, so
    numba compiles them to SIMD; all taps go in one pass, which is ~3x faster than a pass per tap
    pair: seven taps up to radius 3 (sigma <= 1: the narrow look), nineteen up to radius 9
    (sigma <= 3: the wave search's default; 1.6x faster than a pass per pair, ``make bench``);
    wider kernels take a pass per tap pair.
    """
    n = y.size
    if sigma <= 0.0 or n == 0:
        return y.copy()
    r = math.ceil(3.0 * sigma)
    k = np.zeros(max(r, 9) + 1, dtype=np.float64)
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
    elif r <= 9:
        r = 9  # taps past the true radius are zero
        m = n - 18
        if m > 0:
            o = out[9 : 9 + m]
            c = y[9 : 9 + m]
            a1, b1, a2, b2 = y[8 : 8 + m], y[10 : 10 + m], y[7 : 7 + m], y[11 : 11 + m]
            a3, b3, a4, b4 = y[6 : 6 + m], y[12 : 12 + m], y[5 : 5 + m], y[13 : 13 + m]
            a5, b5, a6, b6 = y[4 : 4 + m], y[14 : 14 + m], y[3 : 3 + m], y[15 : 15 + m]
            a7, b7, a8, b8 = y[2 : 2 + m], y[16 : 16 + m], y[1 : 1 + m], y[17 : 17 + m]
            a9, b9 = y[0:m], y[18 : 18 + m]
            k0, k1, k2, k3, k4 = k[0], k[1], k[2], k[3], k[4]
            k5, k6, k7, k8, k9 = k[5], k[6], k[7], k[8], k[9]
            for i in range(m):
                o[i] = (k0 * c[i] + k1 * (a1[i] + b1[i]) + k2 * (a2[i] + b2[i]) + k3 * (a3[i] + b3[i])
                        + k4 * (a4[i] + b4[i]) + k5 * (a5[i] + b5[i]) + k6 * (a6[i] + b6[i])
                        + k7 * (a7[i] + b7[i]) + k8 * (a8[i] + b8[i]) + k9 * (a9[i] + b9[i]))
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
    # the edges, with the end values repeated outwards: every index outside the interior done
    # above (all of them when the profile is shorter than two radii: once, some stayed unwritten)
    head = min(r, n)
    for e in range(head + n - max(n - r, head)):
        i = e if e < head else max(n - r, head) + e - head
        acc = k[0] * y[i]
        for t in range(1, r + 1):
            acc += k[t] * (y[max(i - t, 0)] + y[min(i + t, n - 1)])
        out[i] = acc
    return out


@kernel(fastmath=FAST)
def noise_scale(y: np.ndarray) -> float:
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


@kernel(inline="always")
def masked_maxima(ys: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The local maxima of ``ys`` marked in ``mask`` (a byte per bucket, padded to whole 8-byte
    words, read with :func:`marked`). A plateau counts once, at its middle; a shelf on the way up
    or a plateau running into the edge never."""
    n = ys.size
    hits = marked(mask)
    out = np.empty(hits.size, dtype=np.int64)
    k = 0
    for i in hits:
        j = i
        while j + 1 < n and ys[j + 1] == ys[i]:
            j += 1
        if j + 1 >= n or ys[j + 1] > ys[i]:
            continue
        out[k] = (i + j) // 2
        k += 1
    return out[:k]


@kernel(fastmath=FAST)
def marked(mask: np.ndarray) -> np.ndarray:
    """The indices of the non-zero bytes of ``mask`` (a byte per bucket, padded to whole
    8-byte words), ascending: read 8 bytes at a time, so the many unmarked buckets of a sparse
    mask cost no branch each. What every mask of the peaks kernels is read back with."""
    packed = mask.view(np.uint64)
    out = np.empty(mask.size, dtype=np.int64)
    k = 0
    for w in range(packed.size):
        if packed[w] == 0:
            continue
        for i in range(w * 8, w * 8 + 8):
            out[k] = i
            k += mask[i] != 0
    return out[:k]


@kernel(fastmath=FAST)
def block_candidates(ys: np.ndarray, sigb: np.ndarray, z: float, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``ys`` that rise ``z`` noise units (their block's) over a lower bound of
    their window's minimum: the only ones whose prominence can reach the threshold.

    The bound is the minimum of the block minima over every block the window touches (a
    superset of the window, so never above its minimum): two short passes instead of a sliding
    minimum. Plateaus count once, at their middle; the two ends never count. A plateau's first
    bucket passes without the bar: its middle, which is the one judged, may lie in another block
    (another scale, another window). Also returns the sum of ``ys`` per block (the same pass),
    for the local mean level. The bar is ``ys - bound >= z sigb``, the very subtraction a
    prominence makes, so a maximum exactly at the threshold is never lost to rounding. Serves
    the wave search (a scale per block) and the volume nodes (one scale)."""
    n = ys.size
    nb = sigb.size
    mask = byte_mask(n)
    bsum = np.zeros(nb, dtype=np.float64)
    if n < 3:
        return np.empty(0, dtype=np.int64), bsum
    bmin = np.empty(nb, dtype=np.float64)
    for b in range(nb):
        seg = ys[min(b * BLOCK, n) : min((b + 1) * BLOCK, n)]
        m = np.inf
        level = 0.0
        for t in range(seg.size):
            m = min(m, seg[t])
            level += seg[t]
        bmin[b] = m
        bsum[b] = level
    reach = half // BLOCK + 1
    for b in range(nb):
        fl = np.inf
        for u in range(max(b - reach, 0), min(b + reach, nb - 1) + 1):
            fl = min(fl, bmin[u])
        lo = max(b * BLOCK, 1)
        hi = min((b + 1) * BLOCK, n - 1)
        if hi <= lo:
            continue
        cut = z * sigb[b]
        left, here, right, mk = neighbours(ys, mask, lo, hi)
        for t in range(mk.size):
            h = here[t]
            r = right[t]
            mk[t] = (h > left[t]) & (h >= r) & ((h - fl >= cut) | (h == r))
    return masked_maxima(ys, mask), bsum


@kernel(fastmath=FAST)
def root32(v: np.ndarray) -> np.ndarray:
    """``sqrt(v)``, rooted in single precision.

    Why single precision: the detector compares prominences with a few noise units, for which 7
    significant digits are ample, and the float32 root is ~2.5x cheaper (it was a sixth of the
    detector's time).
    """
    y = np.empty(v.size, dtype=np.float64)
    for i in range(v.size):
        y[i] = np.float64(np.sqrt(np.float32(v[i])))
    return y


@kernel(inline="always")
def prominence(ys: np.ndarray, i: int, half: int) -> float:
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


@kernel(inline="always")
def _falls(ys: np.ndarray, top: float, j: int, stop: int, step: int, cut: float) -> bool:
    """Whether ``ys``, walked from ``j`` by ``step`` to ``stop`` (included), falls ``cut`` (and
    more than 0) below ``top`` before it rises above it: one side of :func:`_stands`."""
    while (stop - j) * step >= 0:
        drop = top - ys[j]
        if drop < 0.0:
            return False
        if drop >= cut and drop > 0.0:
            return True
        j += step
    return False


@kernel(inline="always")
def _stands(ys: np.ndarray, i: int, half: int, cut: float) -> bool:
    """Whether the local maximum ``ys[i]`` has a :func:`prominence` of at least ``cut`` (and
    above 0) within ``half`` buckets either side, without measuring it: each side's walk stops at
    the first bucket ``cut`` below the top (that side's minimum will do) or the first higher one
    (it never will). Why: a maximum on a hump's flank walked to the window's edge on both sides,
    and on a 48 h trade profile those walks were most of the volume nodes' time."""
    top = ys[i]
    return (_falls(ys, top, i - 1, max(0, i - half), -1, cut)
            and _falls(ys, top, i + 1, min(ys.size - 1, i + half), 1, cut))


@kernel
def prominent_maxima(ys: np.ndarray, half: int, cut: float) -> np.ndarray:
    """Interior local maxima of ``ys`` whose prominence (window ``2 half + 1``) is at least ``cut``:
    the block bound of :func:`block_candidates` with one scale, ``cut``, for every block, then
    :func:`_stands` for the few it leaves (on the analysis bench's 48 h trade profile: 31 -> 17
    us against an exact sliding minimum and full walks)."""
    cand, _ = block_candidates(ys, np.full((ys.size + BLOCK - 1) // BLOCK, cut), 1.0, half)
    out = np.empty(cand.size, dtype=np.int64)
    k = 0
    for t in range(cand.size):
        if _stands(ys, cand[t], half, cut):
            out[k] = cand[t]
            k += 1
    return out[:k]


@kernel(inline="always")
def level_growth(y: float, level: float, gamma: float, cap: float) -> float:
    """The factor a noise scale grows by where ``y`` stands above its neighbourhood's mean
    ``level``: ``max(1, y / level) ** gamma``, the ratio at most ``cap`` when ``cap > 0``; 1 when
    ``gamma`` or ``level`` is 0. Never below 1, so a bound made with the plain scale holds.
    In square-root units Poisson noise is flat and multiplicative noise grows with ``y``."""
    if not (gamma > 0.0 and level > 0.0):
        return 1.0
    ratio = max(1.0, y / level)
    ratio = min(ratio, cap) if cap > 0.0 else ratio
    return math.sqrt(ratio) if gamma == 0.5 else ratio**gamma  # sqrt: the default, ~5x cheaper


@kernel(inline="always")
def zone_around(ys: np.ndarray, i: int, cut: float, reach: int) -> tuple[int, int]:
    """The first and last bucket of the run around ``i`` where ``ys >= cut``, at most ``reach``
    buckets each side."""
    n = ys.size
    a = i
    while a > 0 and i - a < reach and ys[a - 1] >= cut:
        a -= 1
    b = i
    while b < n - 1 and b - i < reach and ys[b + 1] >= cut:
        b += 1
    return a, b


@kernel(inline="always")
def found_arrays(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Room for ``m`` found peaks: index, first and last bucket of the zone, score."""
    return (np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64),
            np.empty(m, dtype=np.float64))

"""Narrow waves: humps one to three buckets wide, which the wave search's smoothing flattens.

Why a second look: the wave search smooths with a gaussian of ``smooth`` (3) buckets, which keeps
a wide hump and averages the noise away, but leaves a hump of half width 1 about a quarter of its
height, under the bar. On the peak benchmark (issue 10) half the labelled humps of half width 1
were missed that way, and they were most of all misses. So the wall-free, lone-level-free profile
(the wave search's input) is read once more, smoothed by :data:`SMOOTH` (1 bucket: about a
narrow hump's own width, its matched filter), and a local maximum there is a narrow wave when:

1. its height over its **flanks** is at least ``narrow_z`` units of the local noise seen
   through that gaussian (the block's scale times ``1 / sqrt(2 sqrt(pi) SMOOTH)``, the share of
   white noise a gaussian keeps), also once that scale is grown with the level as for waves (see
   ``detectors``). The flanks: the wave search's own smoothed profile (gaussian ``smooth``)
   ``3 x smooth`` buckets (at least ``GAP + 1``) to each side, the higher of the two; that is a
   gaussian-weighted mean of the buckets 0 to 6 sigmas away on that side, read at no cost (a
   sum per maximum cost more than the rest of the look). The higher, as a hump rises over both
   sides and the top of a step over one;
2. that height is at least ``narrow_lumpiness`` x the :data:`QUANTILE` quantile of the same
   heights (before the level's growth) of the other local maxima within :data:`REACH` buckets on
   its left, and of those on its right (the higher of the two: at a step from a thin stretch to
   a thick one, the thick side's maxima are the ones to stand out of). Why: on the recorded
   books and trades levels come in lumps of two or three (orders at round steps, runs of empty
   ticks), far more often than the differences' noise scale says; a narrow hump must stand out
   of the lumps around it, not only out of the noise. Measured on the benchmark (a first cut:
   height test alone, no share test, at 5 noise units): the recorded families' F1 fell from
   0.89 to 0.56 (books) and from 0.86 to 0.49 (trades); with this test they held;
3. its top level holds at most :data:`SHARE` of the volume of its three levels (as recorded):
   one big order with two small neighbours is a lone level, not volume over a range;
4. it lies outside every wall widened by :data:`GAP` buckets (a wall's filled-in buckets are no
   hump); inside a wave's zone (widened likewise) it is a second hump beside that wave only when
   it lies more than :data:`GAP` buckets from the wave's peak and the profile dips below half its
   height between them (close pairs: the wave search's smoothing joins them into one zone; on the
   compound-Poisson family most misses were the smaller of such a pair); and no stronger narrow
   wave's zone holds it (one per hump, as for waves).

Its zone is where the narrow look's profile stays above half its height over the flanks (at
most :data:`GAP` buckets each side), its score the height in noise units after the level's
growth. Every test is relative (noise units, quantiles, shares), so scaling volumes changes
nothing. Cost: about one anchor kernel's time on a 3000-bucket profile (``make bench``,
``peaks_3000_us`` with and without ``narrow_z``), most of it the second smoothing and the scan
for maxima.
"""

from __future__ import annotations

import math

import numpy as np

from depthflow.peaks.jit import FAST, kernel
from depthflow.peaks.kernels import BLOCK, found_arrays, level_growth, marked, smooth_gaussian, zone_around

__all__ = ["GAP", "QUANTILE", "REACH", "SHARE", "SMOOTH", "narrow_waves"]

SMOOTH = 1.0
"""Gaussian sigma (buckets) of the narrow look: a half-width-1 hump's own width."""
GAP = 3
"""Buckets each side of a narrow wave: at most its zone's reach, at least its flanks' distance."""
REACH = 100
"""Buckets each side whose local maxima set the lumpiness a narrow wave must stand out of."""
QUANTILE = 0.9
"""The quantile of those maxima's heights that is the lumpiness."""
SHARE = 0.5
"""At most this share of a narrow wave's three levels in its top one."""

_NOISE_KEPT = 1.0 / math.sqrt(2.0 * math.sqrt(math.pi) * SMOOTH)


@kernel(fastmath=FAST)
def _maxima(ys):
    """The local maxima of ``ys``: interior buckets higher than their left neighbour and not
    lower than their right. A branch-free mask, read back by :func:`marked`."""
    n = ys.size
    words = (n + 7) // 8
    mask = np.zeros(words * 8, dtype=np.uint8)
    if n >= 3:
        m = n - 2
        left = ys[0:m]
        here = ys[1 : 1 + m]
        right = ys[2 : 2 + m]
        mk = mask[1 : 1 + m]
        for t in range(m):
            mk[t] = (here[t] > left[t]) & (here[t] >= right[t])
    return marked(mask)


@kernel(fastmath=FAST)
def _flank_heights(ys, idx, sig, wide, reach):
    """Per maximum ``ys[u]``: its background (the higher of ``wide[u - reach]`` and
    ``wide[u + reach]``, each clipped to the profile) and its height over it in units of its
    block's noise as the gaussian keeps it (-inf without a scale)."""
    n = ys.size
    m = idx.size
    base = np.empty(m, dtype=np.float64)
    z = np.empty(m, dtype=np.float64)
    unit = np.empty(sig.size, dtype=np.float64)
    for b in range(sig.size):
        unit[b] = 1.0 / (sig[b] * _NOISE_KEPT) if sig[b] > 0.0 else 0.0
    for t in range(m):
        u = idx[t]
        higher = max(wide[max(u - reach, 0)], wide[min(u + reach, n - 1)])
        k = unit[u // BLOCK]
        base[t] = higher
        z[t] = (ys[u] - higher) * k if k > 0.0 else -np.inf
    return base, z


@kernel
def _quantile(x):
    """The :data:`QUANTILE` quantile of ``x`` (NumPy's linear one); -inf when empty."""
    m = x.size
    if m == 0:
        return -np.inf
    s = np.sort(x)
    pos = QUANTILE * (m - 1)
    lo = int(pos)  # pos >= 0: the floor
    hi = min(lo + 1, m - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@kernel
def _found_already(ys, i, half, wlo, whi, wpk):
    """Whether the maximum ``i`` (of height ``half`` x 2 over its flanks) is part of a wall or
    of a wave found already (rule 4 of the module doc)."""
    for w in range(wlo.size):
        if not wlo[w] - GAP <= i <= whi[w] + GAP:
            continue
        p = wpk[w]
        if p < 0 or abs(i - p) <= GAP:
            return True
        dip = ys[i]
        for u in range(min(i, p), max(i, p) + 1):
            dip = min(dip, ys[u])
        if not dip < half:  # no dip below half its height: the wave's own top
            return True
    return False


@kernel
def narrow_waves(clean, wide, smooth, sig, lev, gamma, cap, raw, z_min, lumpiness, wlo, whi, wpk):
    """Narrow waves of the wall-free square-root profile ``clean`` (see the module doc):
    (index, low, high, score) arrays, ascending. ``sig``: the noise scale per block of
    ``BLOCK`` buckets, ``lev`` the mean level per block, ``gamma`` and ``cap`` the waves'
    ``level_noise`` and ``level_cap``; ``raw``: the volumes as recorded; ``wlo``/``whi``: the
    spans found already (waves' zones and walls), ``wpk`` their peaks (-1 for a wall). The cheap
    tests run first: the height before the level's growth (never below the height after it)
    rejects most maxima. Called with at least 3 buckets and ``z_min > 0`` only."""
    ys = smooth_gaussian(clean, SMOOTH)
    idx = _maxima(ys)
    base, z = _flank_heights(ys, idx, sig, wide, max(round(3.0 * smooth), GAP + 1))
    m = idx.size
    out_i, out_lo, out_hi, out_s = found_arrays(m)
    k = 0
    first = 0  # the first maximum within REACH on the left of the current one (maxima ascend)
    last = 0  # the last maximum within REACH on its right
    for t in range(m):
        i = idx[t]
        if not z[t] >= z_min:
            continue
        if max(raw[i - 1], raw[i], raw[i + 1]) > SHARE * (raw[i - 1] + raw[i] + raw[i + 1]):
            continue
        score = z[t] / level_growth(ys[i], lev[i // BLOCK], gamma, cap)  # as for waves
        if not score >= z_min:
            continue
        half = base[t] + 0.5 * (ys[i] - base[t])
        if _found_already(ys, i, half, wlo, whi, wpk):  # before the lumpiness: no sorting
            continue
        while idx[first] < i - REACH:
            first += 1
        last = max(last, t)
        while last + 1 < m and idx[last + 1] <= i + REACH:
            last += 1
        # the lumpier side's: the top of a step is judged by the step's side
        if z[t] < lumpiness * max(_quantile(z[first:t]), _quantile(z[t + 1 : last + 1])):
            continue
        a, b = zone_around(ys, i, half, GAP)  # above half its height
        out_i[k] = i
        out_lo[k] = a
        out_hi[k] = b
        out_s[k] = score
        k += 1
    return out_i[:k], out_lo[:k], out_hi[:k], out_s[:k]

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
nothing. Cost: under one anchor kernel's time on a 3000-bucket profile (``make bench``,
``peaks_3000_us`` with and without ``narrow_z``), most of it the second smoothing: the maxima
and their heights over the flanks are one branch-free pass, and the lumps around a maximum are
measured only for the few that pass every other test (listing every maximum, then measuring
each, took a third longer).
"""

from __future__ import annotations

import math

import numpy as np

from depthflow.peaks.jit import FAST, kernel
from depthflow.peaks.kernels import (
    BLOCK,
    byte_mask,
    found_arrays,
    level_growth,
    marked,
    neighbours,
    smooth_gaussian,
    zone_around,
)

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
def _units(sig):
    """Per block, one noise unit as the gaussian keeps it, inverted (0: no scale)."""
    unit = np.empty(sig.size, dtype=np.float64)
    for b in range(sig.size):
        unit[b] = 1.0 / (sig[b] * _NOISE_KEPT) if sig[b] > 0.0 else 0.0
    return unit


@kernel(inline="always")
def _flanks(wide, u, reach):
    """The background of the maximum at ``u``: the higher of ``wide[u - reach]`` and
    ``wide[u + reach]``, each clipped to the profile."""
    return max(wide[max(u - reach, 0)], wide[min(u + reach, wide.size - 1)])


@kernel(inline="always")
def _height(ys, wide, unit, u, reach):
    """The height of ``ys[u]`` over its flanks in its block's noise units (-inf without a
    scale)."""
    k = unit[u // BLOCK]
    return (ys[u] - _flanks(wide, u, reach)) * k if k > 0.0 else -np.inf


@kernel(inline="always")
def _is_maximum(ys, u):
    """Whether the interior bucket ``u`` is higher than its left neighbour and not lower than
    its right."""
    return ys[u] > ys[u - 1] and ys[u] >= ys[u + 1]


@kernel(fastmath=FAST)
def _standing(ys, wide, unit, reach, z_min):
    """The local maxima of ``ys`` (interior buckets higher than their left neighbour and not
    lower than their right) standing at least ``z_min`` (> 0) noise units over their flanks
    (:func:`_height`). Why one pass for both tests: a noisy profile has a maximum every third
    bucket, and the maxima listed, then measured one by one, were most of the narrow look's
    time; a branch-free mask, read back by :func:`marked`, leaves the few that stand out. The
    buckets whose flanks fall off the profile's ends are tested one by one."""
    n = ys.size
    mask = byte_mask(n)
    a = max(reach, 1)  # the buckets from a to e have both flanks and both neighbours inside
    e = min(n - 1 - reach, n - 2)
    for b in range(unit.size):
        k = unit[b]
        lo = max(b * BLOCK, a)
        hi = min((b + 1) * BLOCK, e + 1)
        if hi <= lo or not k > 0.0:
            continue
        left, here, right, mk = neighbours(ys, mask, lo, hi)
        fl = wide[lo - reach : lo - reach + mk.size]
        fr = wide[lo + reach : lo + reach + mk.size]
        for t in range(mk.size):
            h = here[t]
            mk[t] = (h > left[t]) & (h >= right[t]) & ((h - max(fl[t], fr[t])) * k >= z_min)
    head = min(a - 1, n - 2)  # the buckets 1 .. head, then tail .. n - 2
    tail = max(e + 1, head + 1)
    for u in range(1, head + 1):
        mask[u] = _is_maximum(ys, u) and _height(ys, wide, unit, u, reach) >= z_min
    for u in range(tail, n - 1):
        mask[u] = _is_maximum(ys, u) and _height(ys, wide, unit, u, reach) >= z_min
    return marked(mask)


@kernel
def _heights_between(ys, wide, unit, reach, a, b):
    """:func:`_height` of every local maximum of ``ys`` from bucket ``a`` to ``b`` (clipped to
    the interior): the lumps a narrow wave must stand out of."""
    lo = max(a, 1)
    hi = min(b, ys.size - 2)
    out = np.empty(max(hi - lo + 1, 0), dtype=np.float64)
    k = 0
    for u in range(lo, hi + 1):
        if _is_maximum(ys, u):
            out[k] = _height(ys, wide, unit, u, reach)
            k += 1
    return out[:k]


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
    unit = _units(sig)
    reach = max(round(3.0 * smooth), GAP + 1)
    idx = _standing(ys, wide, unit, reach, z_min)
    m = idx.size
    out_i, out_lo, out_hi, out_s = found_arrays(m)
    k = 0
    for t in range(m):
        i = idx[t]
        if max(raw[i - 1], raw[i], raw[i + 1]) > SHARE * (raw[i - 1] + raw[i] + raw[i + 1]):
            continue
        z = _height(ys, wide, unit, i, reach)
        score = z / level_growth(ys[i], lev[i // BLOCK], gamma, cap)  # as for waves
        if not score >= z_min:
            continue
        base = _flanks(wide, i, reach)
        half = base + 0.5 * (ys[i] - base)
        if _found_already(ys, i, half, wlo, whi, wpk):  # before the lumpiness: no sorting
            continue
        # the lumpier side's: the top of a step is judged by the step's side
        left = _heights_between(ys, wide, unit, reach, i - REACH, i - 1)
        right = _heights_between(ys, wide, unit, reach, i + 1, i + REACH)
        if z < lumpiness * max(_quantile(left), _quantile(right)):
            continue
        a, b = zone_around(ys, i, half, GAP)  # above half its height
        out_i[k] = i
        out_lo[k] = a
        out_hi[k] = b
        out_s[k] = score
        k += 1
    return out_i[:k], out_lo[:k], out_hi[:k], out_s[:k]

"""Wave peaks and walls of one volume-by-price profile: :func:`find_wave_peaks`, the one entry point.

Pure functions over plain float arrays; no I/O. Two kinds of things stand out of a profile:

* a **wave peak**: a hump several buckets wide (volume accepted over a range of prices, the
  profile's own structure), found by its prominence against the *local* background in units of
  the *local* noise;
* a **wall**: one or two buckets standing out while their neighbours on both sides lie near the
  background (one big order at a round price). It is reported as a wall, never as a wave peak.

Why local, and why this way (issue 10, measured on an independent labelled benchmark: the old
global detector lost precision to walls, to one hump reported twice and to noise on a thick
background):

1. ``y = sqrt(v)``: volume is a sum over a random number of trades, so its spread grows with its
   level; the square root removes the Poisson part of that growth;
2. the rest (sizes that scale with the level: noise closer to multiplicative) is left to a
   **local noise scale**: a trimmed mean of ``|y[i+1] - y[i]|`` per block of
   :data:`BLOCK` buckets, pooled over ``noise_window`` buckets, so a thick part of the book is
   judged by its own noise and a thin tail by its own (see :func:`_local_noise`);
3. walls first (:func:`_walls`): a bucket (or two) that stands ``wall_z`` local-noise units over
   both its neighbours and over the median of each side's ring of buckets, with each neighbour
   within ``wall_shoulder`` of its height above that side's background; its buckets are then
   set to their neighbours' level, so the wave search cannot see it. It is reported only when its
   top bucket holds at least ``wall_min_relative`` x the mean of the profile's other non-empty
   buckets (and ``min_relative_volume`` x the mean non-empty bucket); a smaller one is a lone
   level, taken out of the wave search all the same (a clear but small order on a thin stretch
   is no wall to a trader: on the recorded books nearly every isolated order stood out
   statistically, six reported walls for each labelled one);
4. lone levels under the wall rule (:func:`_spikes`: ``spike_ratio`` x each neighbour's volume,
   ``wall_z / 2`` noise units over both) are set to their neighbours' level too: neither a wall
   nor a wave;
5. waves (:func:`_waves`): local maxima of the smoothed, wall-free profile whose
   prominence (SciPy's definition within ``window`` buckets: the local background) is at least
   ``prominence_z`` local-noise units (the scale times ``(y / local mean y) ** level_noise``
   where the profile stands above its neighbourhood's mean: in square-root units Poisson noise is
   flat and multiplicative noise grows with ``y``, and 0.5 sits between them; the ratio capped at
   ``level_cap``: a hump far over its neighbourhood is mostly signal, and uncapped its own height
   raised its bar, most of all for narrow humps on a thin floor), whose zone holds
   a bucket of at least ``min_relative_volume`` x the mean non-empty bucket, whose two biggest
   levels hold at most ``top_share`` of the zone's volume (as recorded, lone levels included: a
   clump of two or three big orders on a sparse stretch is no volume accepted over a range, though
   the smoothing makes it a hump; on the recorded books and trades such clumps were most of the
   false waves), and one per hump: a maximum inside the half-prominence zone of a more prominent
   one is the same hump.

Exact rules where the steps above leave a choice (each checked against a plain-numpy
re-derivation, ``tests/unit/peaks/waves_reference.py``, whose numbered rules say the same): a
wall is two buckets wide only when its two-bucket edge is strictly the larger; its own scale
leaves out the differences at its flanks that are at most the cut of *its* block; no wall starts
on the bucket right after another; lone levels are taken out left to right on the profile as it
is being changed, the ratio tested in square-root units; ``top_share`` reads the raw volumes
(walls and lone levels included), the volume floor the cleaned ones (a wall's own the raw); a
plateau is one maximum at its middle, judged by its middle's block; one per hump compares
scores (ties: the lower index wins) among all waves before any is dropped.

Every threshold is relative: noise units are the profile's own, the volume floor is a multiple of
its own mean, so multiplying every volume by a constant finds the same peaks and walls with the
same confidences, and shifting every price shifts them (the indices stay).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, overload

import numpy as np

from depthflow.peaks.jit import FAST, kernel
from depthflow.peaks.kernels import (
    BLOCK,
    as_f64,
    block_candidates,
    byte_mask,
    found_arrays,
    kernel_params,
    level_growth,
    marked,
    neighbours,
    nonzero_total,
    prominence,
    smooth_gaussian,
    zone_around,
)
from depthflow.peaks.narrow import narrow_waves
from depthflow.peaks.params import DEFAULT, PeakParams

__all__ = ["BLOCK", "Features", "Peak", "WavePeaks", "detect_arrays", "find_wave_peaks"]

_SQRT_PI_2 = math.sqrt(math.pi) / 2.0  # E|d| = 2 sigma / sqrt(pi) for normal differences
_RING = 8  # buckets each side whose median is a wall's local background


class Peak(NamedTuple):
    """One wave peak or wall.

    ``index`` is the peak bucket; ``price`` its price (the label the caller gave it); ``low`` and
    ``high`` bound the zone in price (the lower edge of its first bucket and the upper edge of its
    last, buckets labelled by their lower edge); ``low_index``/``high_index`` the same in buckets
    (inclusive). ``score`` is how far it stands out in local-noise units (a wave's prominence, a
    wall's height over its background); ``confidence`` maps it into [0, 1]: 0.5 at the threshold,
    1.0 at twice it.

    Why a NamedTuple: an immutable record ~5x cheaper to build than a frozen dataclass.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the peak bucket
    price: float
    low: float
    high: float
    confidence: float
    score: float
    low_index: int
    high_index: int


class Features(Sequence[Peak]):
    """The wave peaks (or the walls) of one profile, ascending by index: a sequence of
    :class:`Peak`, built on first access from the kernel's arrays, which stay readable as
    ``indices``, ``low_indices``, ``high_indices``, ``scores`` and ``confidences``.

    Why lazy: the service reads the arrays and needs no object per peak. Why two 2-D arrays
    (index, low, high rows; score, confidence rows) rather than five: each array numba hands
    back to Python costs a few tenths of a microsecond to box, on every call."""

    __slots__ = ("_floats", "_ints", "_items", "_px", "_step")

    def __init__(self, ints: np.ndarray, floats: np.ndarray, px: np.ndarray, step: float) -> None:
        self._ints, self._floats = ints, floats
        self._px = px
        self._step = step
        self._items: list[Peak] | None = None

    @property
    def indices(self) -> np.ndarray:
        return self._ints[0]

    @property
    def low_indices(self) -> np.ndarray:
        return self._ints[1]

    @property
    def high_indices(self) -> np.ndarray:
        return self._ints[2]

    @property
    def scores(self) -> np.ndarray:
        return self._floats[0]

    @property
    def confidences(self) -> np.ndarray:
        return self._floats[1]

    def _build(self) -> list[Peak]:
        if self._items is None:
            px, step = self._px, self._step
            new = tuple.__new__
            ints, floats = self._ints.tolist(), self._floats.tolist()
            self._items = [
                new(Peak, (i, float(px[i]), float(px[a]), float(px[b]) + step, c, s, a, b))
                for i, a, b, s, c in zip(*ints, *floats, strict=True)
            ]
        return self._items

    def __len__(self) -> int:
        return int(self.indices.size)

    @overload
    def __getitem__(self, i: int) -> Peak: ...

    @overload
    def __getitem__(self, i: slice) -> list[Peak]: ...

    def __getitem__(self, i: int | slice) -> Peak | list[Peak]:
        return self._build()[i]

    def __iter__(self) -> Iterator[Peak]:
        return iter(self._build())

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container: unhashable like a list

    def __repr__(self) -> str:
        return f"Features({self._build()!r})"


class WavePeaks(NamedTuple):
    """What :func:`find_wave_peaks` finds: ``peaks`` (waves) and ``walls``, each ascending."""

    peaks: Features
    walls: Features


# --- kernels --------------------------------------------------------------------------------------


@kernel(fastmath=FAST)
def _pooled(s: np.ndarray, c: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``s`` and of ``c`` over blocks ``b - reach .. b + reach`` (clipped). Summed afresh
    per block, not as a running sum: subtracting a thick stretch's sum from a running total would
    leave rounding noise as a thin stretch's scale."""
    nb = s.size
    ps = np.empty(nb, dtype=np.float64)
    pc = np.empty(nb, dtype=np.float64)
    for b in range(nb):
        lo = max(b - reach, 0)
        hi = min(b + reach + 1, nb)
        a = 0.0
        k = 0.0
        for u in range(lo, hi):
            a += s[u]
            k += c[u]
        ps[b] = a
        pc[b] = k
    return ps, pc


@kernel(fastmath=FAST)
def _block_noise(y: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Noise sigma of ``y`` per block of ``BLOCK`` buckets: the trimmed mean absolute first
    difference of the block and ``reach`` blocks each side, x sqrt(pi)/2.

    Why differences: they cancel the profile's shape, so they measure bucket-to-bucket noise and
    not the spread the peaks themselves make. Trimmed twice: differences above 3x their
    neighbourhood's mean (the flanks of peaks and walls) are dropped, then above 3x what is left's
    (a lumpy book's big steps inflate the first mean). Every scale is at least a tenth of the
    profile's overall mean difference: a quiet stretch does not make every wiggle count, and a
    flat background (trimmed mean 0: nothing but a few steps) still has a scale, against which
    the steps stand far out (a lone order on an empty stretch is a wall). Block ``b`` covers
    differences ``y[i+1] - y[i]`` for ``i`` in ``[b BLOCK, (b + 1) BLOCK)``.

    Returns the scale per block and, for :func:`_walls` (which leaves a wall's own flanks out of
    its scale), the pooled trimmed sums and counts, the trimming cut per block and the floor.
    """
    n = y.size
    nb = max((n + BLOCK - 1) // BLOCK, 1)
    out = np.zeros(nb, dtype=np.float64)
    ps = np.zeros(nb, dtype=np.float64)
    pc = np.zeros(nb, dtype=np.float64)
    cuts = np.zeros(nb, dtype=np.float64)
    nd = n - 1
    if nd < 1:
        return out, ps, pc, cuts, 0.0
    d = np.empty(nd, dtype=np.float64)
    s1 = np.zeros(nb, dtype=np.float64)
    c1 = np.zeros(nb, dtype=np.float64)
    for b in range(nb):  # the differences and their block sums in one pass
        a = min(b * BLOCK, nd)
        e = min((b + 1) * BLOCK, nd)
        lo_ = y[a:e]
        hi_ = y[a + 1 : e + 1]
        seg = d[a:e]
        s = 0.0
        for t in range(e - a):
            x = abs(hi_[t] - lo_[t])
            seg[t] = x
            s += x
        s1[b] = s
        c1[b] = e - a
    total = 0.0
    for b in range(nb):
        total += s1[b]
    floor = 0.1 * total / nd * _SQRT_PI_2
    s2 = np.zeros(nb, dtype=np.float64)
    c2 = np.zeros(nb, dtype=np.float64)
    for _ in range(2):  # trimmed twice: a lumpy book's big steps inflate the first cut
        ps, pc = _pooled(s1, c1, reach)
        for b in range(nb):
            cut = 3.0 * (ps[b] / pc[b] if pc[b] > 0.0 else 0.0)
            cuts[b] = cut
            seg = d[min(b * BLOCK, nd) : min((b + 1) * BLOCK, nd)]
            s = 0.0
            c = 0.0
            for t in range(seg.size):
                k = 1.0 if seg[t] <= cut else 0.0
                s += seg[t] * k
                c += k
            s2[b] = s
            c2[b] = c
        s1, s2 = s2, s1
        c1, c2 = c2, c1
    ps, pc = _pooled(s1, c1, reach)
    for b in range(nb):
        m = ps[b] / pc[b] if pc[b] > 0.0 else 0.0
        out[b] = max(m * _SQRT_PI_2, floor)
    return out, ps, pc, cuts, floor


@kernel
def _least_own_scale(noise):
    """Per block, a lower bound of :func:`_own_scale` for any wall of the block: at most three
    differences, each at most the block's cut, are left out (the mean of what stays is then
    at least ``(s - 3 cut) / (c - 3)``, the trimmed mean lying under the cut)."""
    sigb, ps, pc, cuts, floor = noise
    low = np.empty(sigb.size, dtype=np.float64)
    for b in range(sigb.size):
        m = (ps[b] - 3.0 * cuts[b]) / (pc[b] - 3.0) if pc[b] > 3.0 else 0.0
        low[b] = max(m * _SQRT_PI_2, floor)
    return low


@kernel
def _ring_median(y: np.ndarray, a: int, b: int) -> float:
    """Median of ``y[a:b]`` (clipped to the array); NaN when empty."""
    a = max(a, 0)
    b = min(b, y.size)
    if b <= a:
        return np.nan
    return np.median(y[a:b])


@kernel(fastmath=FAST)
def _wall_mask(y: np.ndarray, sigb: np.ndarray, wall_z: float) -> np.ndarray:
    """A byte per bucket (padded to whole 8-byte words): 1 where a one- or two-bucket wall may
    start, i.e. ``y[i]`` (and ``y[i+1]``) stand ``wall_z`` noise units over both neighbours.
    Branch-free, block by block (one cut per block): the rare survivors are checked by
    :func:`_walls`."""
    n = y.size
    mask = byte_mask(n)
    for b in range(sigb.size):
        lo = max(b * BLOCK, 1)
        hi = min((b + 1) * BLOCK, n - 2)  # i + 2 <= n - 1 for the two-bucket test
        if hi <= lo:
            continue
        cut = wall_z * sigb[b]
        left, here, right, mk = neighbours(y, mask, lo, hi)
        right2 = y[lo + 2 : lo + 2 + mk.size]
        for t in range(mk.size):
            h = here[t]
            r = right[t]
            side = max(left[t], r)
            two = min(h, r) - max(left[t], right2[t])
            mk[t] = (h - side >= cut) | (two >= cut)
    if n >= 3:  # the last interior bucket: the one-bucket test only
        i = n - 2
        mask[i] = y[i] - max(y[i - 1], y[i + 1]) >= wall_z * sigb[i // BLOCK]
    return mask


@kernel
def _own_scale(y, noise, b, i, j):
    """Block ``b``'s noise scale without the differences at the flanks of ``y[i..j]`` (a wall's
    own steps are not the noise it is judged against; in a short profile they would be most of
    it)."""
    _, ps, pc, cuts, floor = noise
    s = ps[b]
    c = pc[b]
    for u in range(max(i - 1, 0), min(j + 1, y.size - 1)):
        d = abs(y[u + 1] - y[u])
        if d <= cuts[b]:
            s -= d
            c -= 1.0
    m = s / c if c > 0.0 else 0.0
    return max(m * _SQRT_PI_2, floor)


@kernel
def _walls(y, noise, wall_z, shoulder, floor, relative, v, total, count):
    """Walls of ``y`` (= sqrt of ``v``): one or two buckets ``wall_z`` local-noise units above
    both neighbours and above each side's background (the median of ``_RING`` buckets beyond
    the neighbours), each neighbour within ``shoulder`` of the wall's height above its side's
    background. Returns (first index, last index, score) arrays, and ``y`` and ``v`` with every
    wall set to its neighbours' mean (the wave search's input). Reported only when its top bucket
    also holds at least ``floor`` and ``relative`` x the mean of the profile's other non-empty
    buckets (``total`` and ``count``: all of them; its own left out: on a short or sparse
    profile a wall is much of the mean); one that fails only these is set to its neighbours'
    mean all the same and not reported: a lone level, neither wall nor wave (a statistically
    clear but small order on a thin stretch is no wall to a trader; left in, the smoothing made
    it a hump)."""
    n = y.size
    clean = y.copy()
    vc = v.copy()
    mask = _wall_mask(y, _least_own_scale(noise), wall_z)
    first = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)
    score = np.empty(n, dtype=np.float64)
    k = 0
    nxt = 0  # the first bucket a new wall may start at
    for i in marked(mask):
        if i < nxt:
            continue
        left = y[i - 1]
        e1 = y[i] - max(left, y[i + 1])
        e2 = min(y[i], y[i + 1]) - max(left, y[i + 2]) if i + 2 < n else -np.inf
        width = 1 if e1 >= e2 else 2
        j = i + width - 1
        sig = _own_scale(y, noise, i // BLOCK, i, j)
        top = y[i] if width == 1 else min(y[i], y[j])
        after = y[j + 1]
        bl = _ring_median(y, i - 1 - _RING, i - 1)
        br = _ring_median(y, j + 2, j + 2 + _RING)
        if math.isnan(bl):
            bl = br
        if math.isnan(br):
            br = bl
        if math.isnan(bl):
            bl = br = max(left, after)
        height = top - max(bl, br)
        ok = max(e1, e2) >= wall_z * sig  # over both neighbours, in its own scale too
        ok = ok and height >= wall_z * sig and height > 0.0 and sig > 0.0
        ok = ok and left - bl <= shoulder * height and after - br <= shoulder * height
        if not ok:
            continue
        fill = 0.5 * (left + after)
        for u in range(i, j + 1):
            clean[u] = fill
            vc[u] = fill * fill
        nxt = j + 2  # the bucket after a wall is its neighbour, not another wall
        top_v = max(v[i], v[j])
        own = v[i] + v[j] if j > i else v[i]  # both non-empty: its height is over 0
        others = count - (j - i + 1)
        rest = (total - own) / others if others > 0.0 else 0.0
        if top_v >= floor and top_v >= relative * rest:
            first[k] = i
            last[k] = j
            score[k] = height / sig
            k += 1
    return first[:k], last[:k], score[:k], clean, vc


@kernel(fastmath=FAST)
def _spikes(clean, vc, sigb, ratio, z, ws, we):
    """Single levels of the wall-free profile holding at least ``ratio`` x the volume of each
    neighbour and standing ``z`` local-noise units over both (in square-root units), set in place
    to their neighbours' mean, left to right: a lone big order too small for a wall is neither a
    wall nor a wave (left in, it would be read as a one-bucket hump). Both tests: on a sparse book
    every level stands alone over empty neighbours, but there the noise scale is the levels' own.

    A branch-free pass over the profile as it comes, then the rare hits: setting a level lower
    can only make its right neighbour a spike, so each hit is followed rightwards while the test
    holds (the same result as one left-to-right pass). A wall's buckets and their neighbours
    (``ws``, ``we``: first and last buckets) are left as they are."""
    n = clean.size
    mask = byte_mask(n)
    r = math.sqrt(ratio)
    for b in range(sigb.size):
        lo = max(b * BLOCK, 1)
        hi = min((b + 1) * BLOCK, n - 1)
        if hi <= lo:
            continue
        cut = z * sigb[b]
        left, here, right, mk = neighbours(clean, mask, lo, hi)
        for t in range(mk.size):
            side = max(left[t], right[t])
            h = here[t]
            mk[t] = (h > 0.0) & (h >= r * side) & (h - side >= cut)
    for t in range(ws.size):  # a wall's neighbours stay: its fill, their mean, is then no maximum
        mask[max(ws[t] - 1, 0) : min(we[t] + 2, n)] = 2
    done = 0  # buckets before this one are settled
    for i in marked(mask):
        if mask[i] != 1 or i < done:
            continue
        j = i
        while j < n - 1 and mask[j] != 2:
            side = max(clean[j - 1], clean[j + 1])
            h = clean[j]
            if not (h > 0.0 and h >= r * side and h - side >= z * sigb[j // BLOCK]):
                break
            fill = 0.5 * (clean[j - 1] + clean[j + 1])
            clean[j] = fill
            vc[j] = fill * fill
            j += 1
        done = j


@kernel(inline="always")
def _top_two(v, a, b):
    """The sum of the two biggest of ``v[a..b]``."""
    first = 0.0
    second = 0.0
    for u in range(a, b + 1):
        x = v[u]
        if x > first:
            second = first
            first = x
        elif x > second:
            second = x
    return first + second


@kernel(inline="always")
def _total(v, a, b):
    """The sum of ``v[a..b]``."""
    s = 0.0
    for u in range(a, b + 1):
        s += v[u]
    return s


@kernel
def _waves(ys, sigb, v, raw, z, half, floor, gamma, cap, reach, share):
    """Wave peaks of the smoothed, wall-free ``ys``: (index, low, high, score) arrays, one per
    hump (a maximum inside the half-prominence zone of a more prominent one is dropped), and the
    mean level per block (for :func:`depthflow.peaks.narrow.narrow_waves`). A
    candidate's noise scale is its block's times ``max(1, ys / lev) ** gamma`` (``lev``: the mean
    level of ``ys`` over ``reach`` blocks each side; the ratio at most ``cap`` when ``cap > 0``),
    never less than the block's, so the bound of
    :func:`~depthflow.peaks.kernels.block_candidates` holds."""
    n = ys.size
    cand, bsum = block_candidates(ys, sigb, z, half)
    bcount = np.empty(bsum.size, dtype=np.float64)
    for b in range(bsum.size):
        bcount[b] = min((b + 1) * BLOCK, n) - min(b * BLOCK, n)
    ls, lc = _pooled(bsum, bcount, reach)
    lev = ls / np.maximum(lc, 1.0)
    idx, lo, hi, sc = found_arrays(cand.size)
    k = 0
    for t in range(cand.size):
        i = cand[t]
        sig = sigb[i // BLOCK] * level_growth(ys[i], lev[i // BLOCK], gamma, cap)
        prom = prominence(ys, i, half)
        if prom < z * sig or not (prom > 0.0 and sig > 0.0):  # sig 0: a flat profile's rounding
            continue
        a, b = zone_around(ys, i, ys[i] - 0.5 * prom, half)  # within half the prominence
        biggest = 0.0
        for u in range(a, b + 1):
            biggest = max(biggest, v[u])
        if biggest < floor or not biggest > 0.0:
            continue
        if share < 1.0 and _top_two(raw, a, b) > share * _total(raw, a, b):
            continue  # one or two levels hold the zone: a clump of orders, not volume over a range
        idx[k] = i
        lo[k] = a
        hi[k] = b
        sc[k] = prom / sig
        k += 1
    return _one_per_hump(idx[:k], lo[:k], hi[:k], sc[:k]), lev


@kernel
def _one_per_hump(idx, lo, hi, sc):
    """Drop every peak lying inside the zone of a stronger one (by score; the first of equal
    ones wins); the rest ascending by index."""
    k = idx.size
    keep = np.ones(k, dtype=np.bool_)
    for r in range(k):
        for q in range(k):
            if q != r and lo[q] <= idx[r] <= hi[q] and (sc[q] > sc[r] or (sc[q] == sc[r] and q < r)):
                keep[r] = False
                break
    order = np.argsort(idx[keep], kind="mergesort")
    return idx[keep][order], lo[keep][order], hi[keep][order], sc[keep][order]


@kernel
def detect_arrays(v, kp):
    """Waves and walls of the volumes ``v``: ``(index, low, high, score, confidence)`` arrays
    for each, ascending by index. The kernel of :func:`find_wave_peaks`, for callers that stay
    in arrays (``depthflow.peaks.zones``); ``kp`` is ``PeakParams.kernel``."""
    n = v.size
    none_i = np.empty(0, dtype=np.int64)
    none_f = np.empty(0, dtype=np.float64)
    if n < 3:
        return (none_i, none_i, none_i, none_f, none_f), (none_i, none_i, none_i, none_f, none_f)
    y = np.sqrt(v)
    total, count = nonzero_total(v)
    floor = kp.min_relative_volume * (total / count if count > 0.0 else 0.0)
    reach = max(round(kp.noise_window / (2.0 * BLOCK)), 1)  # blocks pooled each side
    noise = _block_noise(y, reach)
    sigb = noise[0]
    wall_z = kp.wall_z
    relative = kp.wall_min_relative
    ws, we, wsc, clean, vc = _walls(y, noise, wall_z, kp.wall_shoulder, floor, relative, v, total, count)
    wconf = np.empty(ws.size, dtype=np.float64)
    for t in range(ws.size):
        wconf[t] = min(1.0, wsc[t] / (2.0 * wall_z)) if wall_z > 0.0 else 1.0
    if kp.spike_ratio > 0.0:
        _spikes(clean, vc, sigb, kp.spike_ratio, 0.5 * wall_z, ws, we)
    ys = smooth_gaussian(clean, kp.smooth)
    half = max(int(kp.window) // 2, 1)
    pz = kp.prominence_z
    gamma, cap = kp.level_noise, kp.level_cap
    (idx, lo, hi, sc), lev = _waves(ys, sigb, vc, v, pz, half, floor, gamma, cap, reach, kp.top_share)
    k = idx.size
    conf = np.empty(k, dtype=np.float64)
    for t in range(k):
        conf[t] = min(1.0, sc[t] / (2.0 * pz)) if pz > 0.0 else 1.0
    nz = kp.narrow_z
    if nz > 0.0:  # narrow waves, outside the waves' zones and the walls; both kinds in one list
        taken_lo, taken_hi = np.concatenate((lo, ws)), np.concatenate((hi, we))
        taken_pk = np.concatenate((idx, np.full(ws.size, -1, dtype=np.int64)))  # -1: a wall
        lump = kp.narrow_lumpiness
        args = (v, nz, lump, taken_lo, taken_hi, taken_pk)
        found = narrow_waves(clean, ys, kp.smooth, sigb, lev, gamma, cap, *args)
        ni, nlo, nhi, nsc = _one_per_hump(*found)
        if ni.size:  # most profiles have none: nothing to merge
            nconf = np.empty(ni.size, dtype=np.float64)
            for t in range(ni.size):
                nconf[t] = min(1.0, nsc[t] / (2.0 * nz))
            idx, lo, hi = np.concatenate((idx, ni)), np.concatenate((lo, nlo)), np.concatenate((hi, nhi))
            sc, conf = np.concatenate((sc, nsc)), np.concatenate((conf, nconf))
            order = np.argsort(idx, kind="mergesort")
            idx, lo, hi, sc, conf = idx[order], lo[order], hi[order], sc[order], conf[order]
    return (idx, lo, hi, sc, conf), (ws, ws, we, wsc, wconf)


@kernel
def _check_profile(px, v):
    """0 when ``px`` is finite, strictly ascending and equally spaced and ``v`` finite and >= 0;
    else a code naming the first fault (see :func:`_validate`) and the offending index."""
    n = px.size
    bad = False
    for i in range(n):  # branch-free first (it vectorises); the fault is located only if any
        bad |= not (abs(px[i]) < np.inf) or not (0.0 <= v[i] < np.inf)
    if bad:
        for i in range(n):
            if not math.isfinite(px[i]):
                return 1, i
            if not (math.isfinite(v[i]) and v[i] >= 0.0):
                return 2, i
    if n < 2:
        return 0, 0
    step = (px[n - 1] - px[0]) / (n - 1)
    if not step > 0.0:
        return 3, 1
    tol = 1e-6 * step + 8.0 * np.finfo(np.float64).eps * max(abs(px[0]), abs(px[n - 1]))
    off = False
    a = px[0 : n - 1]
    b = px[1:n]
    for i in range(n - 1):
        off |= abs(b[i] - a[i] - step) > tol
    if off:
        for i in range(1, n):
            d = px[i] - px[i - 1]
            if not d > 0.0:
                return 3, i
            if abs(d - step) > tol:
                return 4, i
    return 0, 0


_FAULTS = {
    1: "prices must be finite, prices[{i}] is {p!r}",
    2: "volumes must be finite and >= 0, volumes[{i}] is {q!r}",
    3: "prices must be strictly ascending, prices[{i}] = {p!r} does not rise",
    4: "prices must be equally spaced (one bucket apart), prices[{i}] = {p!r} is off the grid",
}


@kernel(inline="always")
def _stacked(parts):
    """Equal-length 1-D arrays (a tuple) as the rows of one 2-D array: one object to box, not
    several."""
    out = np.empty((len(parts), parts[0].size), dtype=parts[0].dtype)
    for r in range(len(parts)):
        out[r] = parts[r]
    return out


@kernel
def _checked_detect(px, v, params):
    """:func:`_check_profile`, then (when it passes) :func:`detect_arrays`, in one call from
    Python: (fault code, index, waves' index/low/high rows, their score/confidence rows, the
    same two for walls). ``params``: ``PeakParams.kernel_array``. Why one kernel, and an array
    for the parameters: each call from Python into numba costs argument typing (about 2 us for
    the 23-float tuple, 0.1 us for an array), and a 3000-bucket profile takes ~30 us in all."""
    kp = kernel_params(params)
    code, i = _check_profile(px, v)
    none_i = np.empty((3, 0), dtype=np.int64)
    none_f = np.empty((2, 0), dtype=np.float64)
    if code:
        return code, i, none_i, none_f, none_i, none_f
    (wi, wlo, whi, wsc, wcf), (li, llo, lhi, lsc, lcf) = detect_arrays(v, kp)
    return (0, 0, _stacked((wi, wlo, whi)), _stacked((wsc, wcf)),
            _stacked((li, llo, lhi)), _stacked((lsc, lcf)))


_FIELDS = frozenset(f.name for f in dataclasses.fields(PeakParams))


@lru_cache(maxsize=256)
def _params(base: PeakParams, items: tuple[tuple[str, Any], ...]) -> PeakParams:
    unknown = sorted(k for k, _ in items if k not in _FIELDS)
    if unknown:
        raise TypeError(f"find_wave_peaks: unknown parameter(s) {', '.join(unknown)} "
                        f"(the fields of PeakParams: {', '.join(sorted(_FIELDS))})")
    return dataclasses.replace(base, **dict(items)) if items else base


def find_wave_peaks(
    prices: Any, volumes: Any, *, params: PeakParams | None = None, **overrides: Any
) -> WavePeaks:
    """Wave peaks and walls of one volume-by-price profile (see the module doc).

    ``prices``: the buckets' prices (labels: the lower edge, as the aggregator labels them),
    finite, strictly ascending and equally spaced; ``volumes``: finite and >= 0, one per price.
    Anything else raises ``ValueError`` saying what. Fewer than three buckets have no peaks.

    Parameters are the service's defaults (:data:`depthflow.peaks.params.DEFAULT`), or
    ``params``, with ``overrides`` named like :class:`PeakParams`' fields (``prominence_z=4``,
    ``wall_z=6`` ...); an unknown name raises ``TypeError`` naming it.

    >>> import numpy as np
    >>> prices = 100.0 + 0.5 * np.arange(60)
    >>> volumes = np.full(60, 10.0)
    >>> volumes[20:25] += [15, 40, 60, 40, 15]   # a hump: a wave peak
    >>> volumes[45] = 90.0                       # one bucket: a wall
    >>> found = find_wave_peaks(prices, volumes)
    >>> [(p.index, p.price, p.low, p.high) for p in found.peaks]
    [(22, 111.0, 109.5, 113.0)]
    >>> [(w.index, w.price, w.low, w.high) for w in found.walls]
    [(45, 122.5, 122.5, 123.0)]
    """
    p = _params(params or DEFAULT, tuple(sorted(overrides.items()))) if overrides else (params or DEFAULT)
    px, v = as_f64(prices), as_f64(volumes)
    if px.ndim != 1 or v.ndim != 1:
        raise ValueError(f"prices and volumes must be 1-D arrays, were {px.ndim}-D and {v.ndim}-D")
    if px.size != v.size:
        raise ValueError(f"prices and volumes differ in length ({px.size} != {v.size})")
    code, i, wave_i, wave_f, wall_i, wall_f = _checked_detect(px, v, p.kernel_array)
    if code:
        raise ValueError(_FAULTS[code].format(i=i, p=float(px[i]), q=float(v[i])))
    step = float(px[1] - px[0]) if px.size > 1 else 0.0
    return WavePeaks(Features(wave_i, wave_f, px, step), Features(wall_i, wall_f, px, step))


def _warm() -> None:
    """Compile (or load from cache) every kernel now, with the argument types used later, so the
    first message a service handles does not pay seconds of JIT time."""
    v = np.array([1.0, 3.0, 9.0, 3.0, 1.0, 0.0, 2.0, 8.0, 2.0, 1.0])
    find_wave_peaks(np.arange(v.size, dtype=np.float64), v)


_warm()

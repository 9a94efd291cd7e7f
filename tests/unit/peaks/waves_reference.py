"""Wave peaks and walls re-derived in plain numpy and Python: the oracle of
``test_waves_reference.py`` and the peaks of ``zones_reference.py``.

Written from the definitions in the docstrings of ``depthflow.peaks.detectors`` and its kernels,
not from the kernels, and imports none of them (only ``PeakParams`` for the defaults): a wrong
kernel shows up as a disagreement instead of being checked against itself. Clarity over speed:
each quantity is computed by its definition (a block's noise scale from its own pool of
differences, SciPy's prominence, SciPy's gaussian), none of the kernels' speed devices (masks,
packed words, sliding bounds, prefilters) is repeated.

Where the documentation leaves a choice open, the rule the production detector follows was read
from its code and is stated here (numbered; ``test_waves_reference.py`` checks every one):

1. ``y = sqrt(v)`` in double precision; the volume floor is ``min_relative_volume`` x the mean of
   the non-empty buckets. Fewer than three buckets: nothing.
2. Noise scale, per block of ``BLOCK`` (32) buckets: block ``b`` holds the differences
   ``d[i] = |y[i+1] - y[i]|`` with ``i // 32 == b``; its *pool* is the differences of blocks
   ``b - reach .. b + reach``, ``reach = max(round(noise_window / 64), 1)`` (halves round to
   even: 160 gives 2). Trimmed twice: a difference is kept when it is at most its own block's
   cut, the cut being 3x the mean of the pool's differences (first) and 3x the mean of the
   pool's kept ones (second; the second cut is applied to all differences, not only to those
   the first kept). The scale is the mean of the pool's kept differences x sqrt(pi)/2, at least
   ``floor = 0.1 x mean(d) x sqrt(pi)/2`` (an empty pool's mean is 0). A bucket's scale is its
   block's.
3. Walls, on ``y`` as it is (earlier walls do not change the later tests), buckets
   ``i = 1 .. n-2`` from left to right; a wall may not start on the bucket right after the
   previous wall (its neighbour). At ``i``: ``e1 = y[i] - max(y[i-1], y[i+1])`` (one bucket),
   ``e2 = min(y[i], y[i+1]) - max(y[i-1], y[i+2])`` (two buckets; none at ``i = n-2``); the
   wall is two buckets wide when ``e2 > e1`` (ties: one).

   a. *Over both neighbours*: ``max(e1, e2) >= wall_z x`` the wall's own scale (3b). (Until
      this reference was written the code made this test only in its speed prefilter, against a
      lower bound of that scale, so a wall could stand less than ``wall_z`` own units over its
      neighbours; now the kernel tests both.)
   b. *Own scale*: the block's kept differences without the wall's flank differences
      ``d[u]``, ``u = i-1 .. j`` (``j`` the wall's last bucket), each taken out when it is at
      most the cut **of the wall's block** (also when ``d[u]`` lies in the neighbouring block,
      whose own cut decided whether it was kept); mean x sqrt(pi)/2, at least ``floor``.
   c. Background: the median of the 8 buckets left of the left neighbour (``y[i-9 .. i-2]``,
      clipped) and of the 8 right of the right one; an empty side takes the other's; both empty:
      ``max(neighbours)``. ``height = top - max(backgrounds)`` (``top``: the lower of a two-bucket
      wall's buckets) must be > 0 and ``>= wall_z x`` the own scale (> 0); each neighbour within
      ``wall_shoulder x height`` of its side's background (``<=``). Score ``height / own scale``.
   d. Each wall's buckets are then set to the mean of its two neighbours (in ``y``; the volume:
      that mean squared), and the next wall may not start on the bucket after it.
   e. It is reported only when its bigger raw volume is at least the floor (rule 1) and at
      least ``wall_min_relative`` x the mean of the non-empty buckets other than its own (0 when
      there are none); otherwise it is a lone level: set as in d, not reported (nor kept out of
      rule 4's pass).
4. Lone levels (``spike_ratio > 0``): one pass from left to right over ``j = 1 .. n-2`` on the
   wall-free ``y`` *as it is being changed* (a level set lower makes its right neighbour's test
   with the new value), skipping every wall bucket and each wall's two neighbours: when
   ``y[j] > 0``, ``y[j] >= sqrt(spike_ratio) x max(y[j-1], y[j+1])`` (the ratio in volume, tested
   in square-root units) and ``y[j] - max(y[j-1], y[j+1]) >= (wall_z / 2) x`` the block scale
   (rule 2, not a wall's), ``y[j]`` is set to its neighbours' mean (volume: squared).
5. ``ys``: the gaussian of sigma ``smooth`` buckets, radius ``ceil(3 smooth)``, the end values
   repeated outwards (scipy ``mode="nearest"``); ``smooth <= 0``: none.
6. Maxima: interior local maxima of ``ys``; a plateau counts once, at its middle
   (``(first + last) // 2``), when the buckets before and after it are both lower; a plateau
   reaching either end never counts.
7. A maximum is a wave when its prominence (SciPy's, ``wlen = 2 half + 1``,
   ``half = max(window // 2, 1)``) is > 0 and ``>= prominence_z x sig``, ``sig > 0``:
   ``sig`` is the block scale, times ``r ** level_noise`` when ``level_noise > 0`` and the block's
   local mean level is > 0, with ``r = max(1, ys[i] / level)`` capped at ``level_cap`` when
   ``level_cap > 0``; the local mean level is the mean of ``ys`` over the buckets of the same
   pooled blocks as the noise (rule 2). Score ``prominence / sig``.
8. Its zone: the run of buckets around it with ``ys >= ys[i] - prominence / 2`` (``>=``: a bucket
   exactly at half the prominence is in). The code also stops it at ``half`` buckets each side and
   at the ends; neither limit ever binds: each side's minimum lies inside the window, at most
   ``ys[i] - prominence``, so the run ends before it. Kept only when the zone's biggest **wall-
   and spike-free** volume is > 0 and at least the floor, and (``top_share < 1``) the two biggest
   **raw** volumes of the zone (walls and lone levels included) hold at most ``top_share`` of its
   raw volume (summed in index order).
9. One per hump: a wave is dropped when it lies inside the zone of another wave (before this
   rule: a dropped wave still drops others) with a higher score, or an equal score and a lower
   index.
10. Confidence: ``min(1, score / (2 threshold))`` (``prominence_z`` for waves, ``wall_z`` for
    walls, ``narrow_z`` for narrow waves), 1 when the threshold is 0. A wall's ``index`` and
    ``low_index`` are its first bucket.
11. Narrow waves (``narrow_z > 0``, ``depthflow.peaks.narrow``), on the wall- and spike-free
    ``y`` of rule 4: ``y1`` its gaussian of sigma 1 (rule 5's gaussian), ``wide`` the ``ys`` of
    rule 5. A maximum is an interior bucket with ``y1[u] > y1[u-1]`` and ``y1[u] >= y1[u+1]``
    (no plateau rule). Its flanks: ``wide`` at ``u - r`` and ``u + r``, clipped to the ends,
    ``r = max(round(3 smooth), 4)``, the higher of the two; its height ``h = (y1[u] - flank) /
    (scale x k)``, ``k = 1 / sqrt(2 sqrt(pi))`` (rule 2's block scale; ``-inf`` when it is 0).
    A maximum is a narrow wave when ``h >= narrow_z``; it lies outside every wall widened by 3
    buckets, and inside a wave's zone widened by 3 only when more than 3 buckets from that
    wave's index and ``min(y1)`` between the two is below ``flank + (y1[u] - flank) / 2``; its
    three raw volumes' biggest is at most half of their sum; ``score = h / growth >= narrow_z``,
    ``growth`` rule 7's level factor (``r ** level_noise`` with ``y1[u]`` as the level, 1
    without it); and ``h >= narrow_lumpiness x`` the larger of
    the 0.9 quantiles (NumPy's linear) of ``h`` over the other maxima at most 100 buckets left of
    it and over those at most 100 right of it (an empty side: ``-inf``). Its zone: the buckets
    around it with ``y1 >= flank + (y1[u] - flank) / 2``, at most 3 each side. One per hump
    among narrow waves as in rule 9; narrow waves join the waves ascending by index.

Every test against a threshold computed from sums (noise scales, levels, the floor, the
smoothing) is also noted when it lies within a relative ``NEAR`` of the threshold (``near``):
there the kernels' differently ordered sums may decide the other way, and the test skips it.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import peak_prominences

from depthflow.peaks.params import PeakParams

BLOCK = 32
RING = 8
NEAR = 1e-9
_NORMAL = math.sqrt(math.pi) / 2.0  # sigma per mean absolute difference of normal noise


class Found(NamedTuple):
    """One wave peak or wall, in buckets (``low_index``..``high_index`` inclusive)."""

    index: int
    low_index: int
    high_index: int
    score: float
    confidence: float


class Result(NamedTuple):
    peaks: list[Found]
    walls: list[Found]
    near: list[str]  # decisions that lay within NEAR of their threshold (rounding may flip them)


class _Judge:
    """Comparisons that note when they lie within ``NEAR`` (relative) of deciding otherwise."""

    def __init__(self) -> None:
        self.near: list[str] = []

    def ge(self, a: float, b: float, what: str, scale: float = 0.0, ties_exact: bool = False) -> bool:
        gap = abs(a - b)
        if gap <= NEAR * max(abs(a), abs(b), abs(scale)) and not (ties_exact and gap == 0.0):
            self.near.append(what)
        return a >= b


def _order_exact(x: np.ndarray) -> bool:
    """True when every sum of a subset of ``x``, in any order, is exact: all are multiples of the
    finest last bit among them, and their absolute total stays within 53 bits of it."""
    x = np.abs(x[x != 0.0])
    return not x.size or math.fsum(x) <= 2.0**53 * float(np.spacing(x).min())


class _Noise:
    """Rule 2: the block scales, and the wall scales of rule 3b."""

    def __init__(self, y: np.ndarray, reach: int, judge: _Judge) -> None:
        n = y.size
        self.d = d = np.abs(np.diff(y))
        self.nb = nb = -(-n // BLOCK)
        block_of = np.arange(d.size) // BLOCK
        self.pools = [
            slice(max(b - reach, 0) * BLOCK, min((b + reach + 1) * BLOCK, d.size)) for b in range(nb)
        ]
        self.floor = 0.1 * d.sum() / d.size * _NORMAL
        keep = np.ones(d.size, dtype=bool)
        cuts = np.zeros(nb)
        for _ in range(2):
            cuts = np.array([3.0 * self._mean(d[s][keep[s]]) for s in self.pools])
            own = cuts[block_of]
            gap = np.abs(d - own)
            close = (gap <= NEAR * np.maximum(d, own)) & ~((gap == 0.0) & self._exact(keep)[block_of])
            judge.near += ["noise trim"] * int(close.sum())
            keep = d <= own
        self.cuts, self.keep = cuts, keep
        self.exact = self._exact(keep) & _order_exact(d)
        self.scale = np.array([max(self._mean(d[s][keep[s]]) * _NORMAL, self.floor) for s in self.pools])

    def _exact(self, keep: np.ndarray) -> np.ndarray:
        """Per block: its pool's kept differences sum exactly in any order, so a tie with a
        threshold made of their mean is a tie in the kernels too."""
        return np.array([_order_exact(self.d[s][keep[s]]) for s in self.pools])

    @staticmethod
    def _mean(x: np.ndarray) -> float:
        return float(x.mean()) if x.size else 0.0

    def _kept(self, b: int) -> np.ndarray:
        s = self.pools[b]
        return self.d[s][self.keep[s]]

    def own(self, b: int, i: int, j: int) -> float:
        """Rule 3b."""
        kept = self._kept(b)
        out = [x for x in self.d[max(i - 1, 0) : j + 1] if x <= self.cuts[b]]
        c = kept.size - len(out)
        m = (kept.sum() - sum(out)) / c if c > 0 else 0.0
        return max(m * _NORMAL, self.floor)


def _walls(
    y: np.ndarray, v: np.ndarray, noise: _Noise, p: PeakParams, floor: float, judge: _Judge
) -> tuple[list[Found], np.ndarray, np.ndarray]:
    """Rule 3: the walls, and ``y`` and ``v`` with each wall set to its neighbours' level."""
    n = y.size
    clean, vc = y.copy(), v.copy()
    found: list[Found] = []
    start = 1  # the first bucket a wall may start at
    for i in range(1, n - 1):
        if i < start:
            continue
        e1 = y[i] - max(y[i - 1], y[i + 1])
        e2 = min(y[i], y[i + 1]) - max(y[i - 1], y[i + 2]) if i + 2 < n else -math.inf
        b = i // BLOCK
        j = i + 1 if e2 > e1 else i
        sig = noise.own(b, i, j)
        if not judge.ge(
            max(e1, e2), p.wall_z * sig, "wall over neighbours", scale=y[i], ties_exact=noise.exact[b]
        ):
            continue
        top = min(y[i], y[j])
        left, right = y[i - 1], y[j + 1]
        rings = [y[max(i - 1 - RING, 0) : i - 1], y[j + 2 : j + 2 + RING]]
        bl, br = (float(np.median(r)) if r.size else math.nan for r in rings)
        bl, br = (br if math.isnan(bl) else bl), (bl if math.isnan(br) else br)
        if math.isnan(bl):
            bl = br = max(left, right)
        height = top - max(bl, br)
        if not (height > 0.0 and sig > 0.0):
            continue
        if not (left - bl <= p.wall_shoulder * height and right - br <= p.wall_shoulder * height):
            continue
        if not judge.ge(height, p.wall_z * sig, "wall height", scale=top, ties_exact=noise.exact[b]):
            continue
        fill = 0.5 * (left + right)
        clean[i : j + 1] = fill
        vc[i : j + 1] = fill * fill
        start = j + 2
        others = np.delete(v, list(range(i, j + 1)))
        others = others[others > 0]
        rest = float(others.mean()) if others.size else 0.0
        if floor > 0.0 and not judge.ge(max(v[i], v[j]), floor, "wall floor"):
            continue  # rule 3e: a lone level
        if rest > 0.0 and not judge.ge(max(v[i], v[j]), p.wall_min_relative * rest, "wall size"):
            continue  # rule 3e: a lone level
        score = height / sig
        found.append(Found(i, i, j, score, min(1.0, score / (2.0 * p.wall_z)) if p.wall_z > 0 else 1.0))
    return found, clean, vc


def _lone_levels(
    clean: np.ndarray, vc: np.ndarray, noise: _Noise, walls: list[Found], p: PeakParams, judge: _Judge
) -> None:
    """Rule 4, in place."""
    n = clean.size
    fixed = np.zeros(n, dtype=bool)  # walls and their neighbours
    for w in walls:
        fixed[max(w.low_index - 1, 0) : w.high_index + 2] = True
    r = math.sqrt(p.spike_ratio)
    z = 0.5 * p.wall_z
    for j in range(1, n - 1):
        if fixed[j]:
            continue
        h, side, b = clean[j], max(clean[j - 1], clean[j + 1]), j // BLOCK
        bar = z * noise.scale[b]
        if (
            h > 0.0
            and h >= r * side
            and judge.ge(h - side, bar, "lone level", scale=h, ties_exact=noise.exact[b])
        ):
            fill = 0.5 * (clean[j - 1] + clean[j + 1])
            clean[j] = fill
            vc[j] = fill * fill


def smooth(y: np.ndarray, sigma: float) -> np.ndarray:
    """Rule 5."""
    if sigma <= 0.0:
        return y.copy()
    return gaussian_filter1d(y, sigma, mode="nearest", radius=math.ceil(3.0 * sigma))


def _maxima(ys: np.ndarray, judge: _Judge) -> list[int]:
    """Rule 6."""
    n = ys.size
    out = []
    i = 1
    while i < n - 1:
        j = i
        while j + 1 < n and ys[j + 1] == ys[i]:
            j += 1
        judge.ge(ys[i], ys[i - 1], "maximum", ties_exact=True)
        if j + 1 < n:
            judge.ge(ys[i], ys[j + 1], "maximum", ties_exact=True)
        if ys[i - 1] < ys[i] and j + 1 < n and ys[j + 1] < ys[i]:
            out.append((i + j) // 2)
        i = j + 1
    return out


def _waves(
    ys: np.ndarray,
    vc: np.ndarray,
    v: np.ndarray,
    noise: _Noise,
    reach: int,
    p: PeakParams,
    floor: float,
    judge: _Judge,
) -> list[Found]:
    """Rules 7-9."""
    n = ys.size
    half = max(int(p.window) // 2, 1)
    exact = p.smooth <= 0.0  # unsmoothed, ys is the same in the kernels to the last bit
    waves = []
    for i in _maxima(ys, judge):
        sig = noise.scale[i // BLOCK] * _growth(ys[i], _level(ys, i // BLOCK, reach), p)
        with warnings.catch_warnings():  # a plateau wider than the window: prominence 0
            warnings.filterwarnings("ignore", "some peaks have a prominence of 0")
            (prom,), _, _ = peak_prominences(ys, [i], wlen=2 * half + 1)
        window = ys[max(i - half, 0) : i + half + 1]
        for x in window:  # where SciPy's walk stops
            judge.ge(x, ys[i], "prominence walk", ties_exact=True)
        if not (prom > 0.0 and sig > 0.0):
            continue
        if not judge.ge(prom, p.prominence_z * sig, "prominence", scale=ys[i], ties_exact=exact):
            continue
        c = ys[i] - 0.5 * prom
        lo = i
        while lo > 0 and i - lo < half and judge.ge(ys[lo - 1], c, "zone", ties_exact=exact):
            lo -= 1
        hi = i
        while hi < n - 1 and hi - i < half and judge.ge(ys[hi + 1], c, "zone", ties_exact=exact):
            hi += 1
        biggest = vc[lo : hi + 1].max()
        if not biggest > 0.0 or (floor > 0.0 and not judge.ge(biggest, floor, "wave floor")):
            continue
        raw = v[lo : hi + 1]
        if p.top_share < 1.0 and np.sort(raw)[-2:].sum() > p.top_share * float(np.cumsum(raw)[-1]):
            continue
        waves.append(Found(i, lo, hi, prom / sig, 0.0))
    return [
        r._replace(confidence=min(1.0, r.score / (2.0 * p.prominence_z)) if p.prominence_z > 0 else 1.0)
        for r in _one_per_hump(waves, judge)
    ]


def _level(ys: np.ndarray, b: int, reach: int) -> float:
    """Rule 7's local mean level of block ``b``."""
    return float(ys[max(b - reach, 0) * BLOCK : min((b + reach + 1) * BLOCK, ys.size)].mean())


def _growth(level_of: float, level: float, p: PeakParams) -> float:
    """Rule 7's level factor of the noise scale."""
    if not (p.level_noise > 0.0 and level > 0.0):
        return 1.0
    r = max(1.0, level_of / level)
    return (min(r, p.level_cap) if p.level_cap > 0.0 else r) ** p.level_noise


def _one_per_hump(found: list[Found], judge: _Judge) -> list[Found]:
    """Rule 9."""
    kept = []
    for r in found:
        inside = [q for q in found if q is not r and q.low_index <= r.index <= q.high_index]
        for q in inside:
            judge.ge(q.score, r.score, "one per hump", ties_exact=True)
        if not any(q.score > r.score or (q.score == r.score and q.index < r.index) for q in inside):
            kept.append(r)
    return kept


def _narrow(
    clean: np.ndarray,
    ys: np.ndarray,
    v: np.ndarray,
    noise: _Noise,
    reach: int,
    waves: list[Found],
    walls: list[Found],
    p: PeakParams,
    judge: _Judge,
) -> list[Found]:
    """Rule 11."""
    n = clean.size
    y1 = smooth(clean, 1.0)
    r = max(round(3.0 * p.smooth), 4)
    k = 1.0 / math.sqrt(2.0 * math.sqrt(math.pi))
    maxima = [u for u in range(1, n - 1) if y1[u] > y1[u - 1] and y1[u] >= y1[u + 1]]
    for u in maxima:
        judge.ge(y1[u], y1[u - 1], "narrow maximum", ties_exact=True)
        judge.ge(y1[u], y1[u + 1], "narrow maximum", ties_exact=True)
    flank = {u: max(ys[max(u - r, 0)], ys[min(u + r, n - 1)]) for u in maxima}
    height = {}
    for u in maxima:
        scale = noise.scale[u // BLOCK] * k
        height[u] = (y1[u] - flank[u]) / scale if scale > 0.0 else -math.inf
    out = []
    for u in maxima:
        h = height[u]
        if not judge.ge(h, p.narrow_z, "narrow height", scale=p.narrow_z):
            continue
        half = flank[u] + 0.5 * (y1[u] - flank[u])
        if any(f.low_index - 3 <= u <= f.high_index + 3 for f in walls):
            continue
        if any(
            f.low_index - 3 <= u <= f.high_index + 3
            and (abs(u - f.index) <= 3 or not y1[min(u, f.index) : max(u, f.index) + 1].min() < half)
            for f in waves
        ):
            continue
        three = v[u - 1 : u + 2]
        if not judge.ge(0.5 * three.sum(), three.max(), "narrow share", ties_exact=True):
            continue
        score = h / _growth(y1[u], _level(ys, u // BLOCK, reach), p)
        if not judge.ge(score, p.narrow_z, "narrow level", scale=p.narrow_z):
            continue
        left = [height[q] for q in maxima if u - 100 <= q < u]
        sides = [left, [height[q] for q in maxima if u < q <= u + 100]]
        lump = max(float(np.quantile(side, 0.9)) if side else -math.inf for side in sides)
        if not judge.ge(h, p.narrow_lumpiness * lump, "narrow lumpiness", scale=h):
            continue
        lo = u
        while lo > 0 and u - lo < 3 and judge.ge(y1[lo - 1], half, "narrow zone"):
            lo -= 1
        hi = u
        while hi < n - 1 and hi - u < 3 and judge.ge(y1[hi + 1], half, "narrow zone"):
            hi += 1
        out.append(Found(u, lo, hi, score, min(1.0, score / (2.0 * p.narrow_z))))
    return _one_per_hump(out, judge)


def find_wave_peaks(volumes: np.ndarray, params: PeakParams | None = None) -> Result:
    """The wave peaks and walls of a profile (rules 1-10), ascending by index."""
    p = params or PeakParams()
    v = np.asarray(volumes, dtype=np.float64)
    judge = _Judge()
    if v.size < 3:
        return Result([], [], [])
    y = np.sqrt(v)
    present = v[v > 0]
    floor = p.min_relative_volume * (present.mean() if present.size else 0.0)
    reach = max(round(p.noise_window / (2 * BLOCK)), 1)
    noise = _Noise(y, reach, judge)
    walls, clean, vc = _walls(y, v, noise, p, floor, judge)
    if p.spike_ratio > 0.0:
        _lone_levels(clean, vc, noise, walls, p, judge)
    ys = smooth(clean, p.smooth)
    waves = _waves(ys, vc, v, noise, reach, p, floor, judge)
    if p.narrow_z > 0.0:
        narrow = _narrow(clean, ys, v, noise, reach, waves, walls, p, judge)
        waves = sorted(waves + narrow, key=lambda f: f.index)
    return Result(waves, walls, judge.near)

"""Labelled volume-by-price profiles in families that differ in how they are made.

Why families: a detector tuned on one generator learns that generator (issue 10: the combined
detector scored F1 0.984 on the project's own generator and 0.635 on an independent one). Each
family here makes its background, its noise, its peak shapes and its distractors its own way;
``bench.peaks_accuracy`` tunes on all families but one and scores on the one left out.

Every family is a deterministic, seeded generator: ``family(name).make(seed)`` always gives the
same profiles. A profile is a :class:`Labelled`: ascending, equally spaced bucket prices, the
volumes, the noise-free profile it was drawn around (``clean``), the wave-peak labels
``(index, half_width)`` and the wall labels (bucket indices).

**Label rules** (checked by ``tests/unit/bench/test_peak_families.py``):

* A wave peak is a planted hump: a smooth bump of known centre and half width at half maximum
  (``half_width``, whole buckets, at least 1; the wider side of a skewed hump). Shapes: gaussian,
  skewed gaussian (left and right widths differ), flat-topped (super-gaussian of order 4) and
  triangular. Its label is the bucket where the noise-free profile (background plus humps) has its
  highest value within ``half_width`` of the centre, provided that bucket is a local maximum of
  the noise-free profile (higher than the bucket on its left, not lower than the one on its right).
  A hump that makes no maximum (a shoulder on a steep slope) has no label. A detection finds a
  label when it lies within ``tolerance(half_width) = max(2, half_width)`` buckets, one to one.
* Planted half widths run from 1 bucket to a family's widest (10-25), at most a 60th of the
  profile (at least 2), and a background bell's sigma is at least four times the widest planted
  half width and at least 40 buckets: a wave peak is never as broad as the background it
  stands on.
* Humps are planted apart: centres at least ``3 (hw1 + hw2) + 4`` buckets apart (the
  ``compound_poisson`` family keeps the old generator's own rule, close pairs included), so no
  detection is within the tolerance of two labels.
* A hump's height is set by its significance over the local noise: ``z`` standard deviations of
  the background bucket's noise at its centre, ``z`` drawn in [4, 8] and divided by
  ``sqrt(half_width / 2)`` for humps wider than 2 buckets (a wide hump is seen by its many
  buckets, not its height alone), at least 30 % of the background there.
* A wall is one bucket (or two adjacent ones) of 4-30x the local background, at a round price
  (a bucket index divisible by 10 when one is free), at least ``tolerance + 4`` buckets from any
  hump: one big resting order, not a wave. Walls are labelled separately and a wave-peak
  detection on a wall is a false positive.
* Gaps (runs of empty buckets, ``walls`` family) and broad background humps (``trade_humps``)
  are not labelled: they are what a peak is not.

**Recorded profiles** (``real_books``, ``real_trades``): a recorded book side or trade profile,
bucketed (``raw``), is made a labelled one so that no structure is left unlabelled:

1. *Walls*, by rule (:func:`wall_rule`): a bucket holding at least 8x the mean of the 20 buckets
   around it (the two on each side next to it excluded: :func:`_ring_mean`) and 4x the profile's
   mean non-empty bucket, with both neighbours below half of it (or two buckets: it and its right
   neighbour, each flanked by less than half). They are labelled walls and stay in place at their
   recorded size; their neighbours are capped at 0.45 of the wall (the noise put there must not
   make a wall three buckets wide).
2. *Background*, the recorded shape without its own humps (:func:`real_background`): the wall
   buckets replaced by their ring mean, then a gaussian of sigma ``max(40, 4 x widest planted
   half width / 1.18)`` buckets, the background bells' rule above: whatever the recording's own
   humps were, the background has no local maximum narrower than twice the widest planted hump
   unless it stands less than 0.1 of the background (a third of the smallest planted height)
   above its surroundings (checked by the tests).
3. *Noise*, the recording's own (:func:`real_noise`): the recorded buckets' ratios to the
   background, block-bootstrapped in blocks of :data:`REAL_BLOCK` (3) buckets, each block copied
   from a start within :data:`REAL_REACH` (60) buckets of its place (sparse far levels stay far;
   empty levels and single big levels stay what they are), wall buckets never a source. The
   blocks keep the recording's level-to-level structure (runs of empty ticks, orders at round
   steps) but cut any of its humps wider than a block into pieces laid down at random: a hump
   in the volumes is one planted or one the noise made by chance, as in every other family.
4. *Humps* planted as in ``plant`` (places, widths, apart from each other and at least
   ``tolerance + 4 + 3 half_width`` from every wall), height ``z`` local noise deviations (``z``
   as above, at least 30 % of the background), the local deviation being the background times the
   root mean square of (ratio - 1) over 41 buckets (at least 0.1; a median absolute deviation is
   0 where most levels are empty). They are added as resting volume: ``volumes = background x
   noise + humps`` (walls as in 1); ``clean = background + humps``; ``background`` is recorded
   on the profile. Labels by the wave-peak rule above.

The families (``FAMILIES``; 60 profiles each by default, 200-3000 buckets):

* ``compound_poisson``: the project's own generator (kept as it was): a trend and half the time
  a broad bell, compound Poisson noise with gamma trade sizes.
* ``book_decay``: one side of a book: depth rising from the mid then decaying (a power law times
  an exponential), mid at either end; lognormal (multiplicative) noise and empty far buckets.
* ``trade_humps``: one to three broad trade humps (8-30 % of the range wide) on a thin floor;
  Poisson noise on the trade counts times a fixed size; narrow to wide planted humps.
* ``multiplicative``: flat or sloped (linear or exponential) backgrounds with strong lognormal
  noise (sigma 0.3-0.8): noise proportional to volume.
* ``heteroscedastic``: slopes and bells with gaussian noise whose deviation grows as
  ``c level^g`` (g in 0.5-1), clipped at zero.
* ``bursty``: trades arrive in clusters (negative binomial counts) with sizes drawn from the
  real recorded trades (hftbacktest BTCUSDT, cryptofeed BTC/ETH/DOT aggTrades): heavy tails,
  so single big trades make unlabelled one-bucket spikes.
* ``walls``: a book-like or flat background with walls (labelled), gaps and, half the time, a
  dominant point of control (a hump 10-40x as significant as the rest, labelled: it defeats
  thresholds relative to the profile's range).
* ``real_books``: windows of the recorded REST books (tests/data: Binance BTC/ETH/DOT and
  Binance.US MANA/ZRX/BAT/HNT, either side) bucketed at a random width (at least the tick), the
  touch in an end bucket, made labelled by the recorded-profile rule above.
* ``real_trades``: volume by price of the recorded trades (hftbacktest BTCUSDT 2024-08-08 and
  -09, cryptofeed BTCUSDT aggTrades 2021-04-04), a random 40-100 % of each one's price range
  bucketed at a random width (at least the tick), by the same rule.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from tests.data import BINANCE_US, CRYPTOFEED, HFT_0808, HFT_0809

__all__ = [
    "FAMILIES",
    "Labelled",
    "dataset",
    "make_compound_poisson",
    "tolerance",
]

N_PER_FAMILY = 60
MIN_BUCKETS, MAX_BUCKETS = 200, 3000


@dataclass(frozen=True)
class Labelled:
    """One labelled profile: ``peaks`` are ``(index, half_width)``, ``walls`` bucket indices."""

    family: str
    prices: np.ndarray
    volumes: np.ndarray
    clean: np.ndarray
    peaks: tuple[tuple[int, int], ...]
    walls: tuple[int, ...]
    planted: tuple[tuple[float, int], ...] = ()  # every hump's centre and half width, labelled or not
    background: np.ndarray | None = None  # the noise-free profile without the humps (real_books)


def tolerance(half_width: int) -> int:
    """Buckets within which a detection finds a label of this half width."""
    return max(2, int(half_width))


# --- shapes and noise --------------------------------------------------------------------------------

_HWHM_GAUSS = float(np.sqrt(2 * np.log(2)))  # half width at half maximum per sigma
_HWHM_FLAT = float((2 * np.log(2)) ** 0.25)  # same for exp(-0.5 (d/w)^4)


@dataclass(frozen=True)
class Hump:
    centre: float
    left: float  # shape width parameter on each side
    right: float
    kind: str  # gauss | flat | tri

    def shape(self, x: np.ndarray) -> np.ndarray:
        d = x - self.centre
        w = np.where(d < 0, self.left, self.right)
        if self.kind == "flat":
            return np.exp(-0.5 * (d / w) ** 4)
        if self.kind == "tri":
            return np.clip(1 - np.abs(d) / w, 0.0, None)
        return np.exp(-0.5 * (d / w) ** 2)

    @property
    def half_width(self) -> int:
        per = {"gauss": _HWHM_GAUSS, "flat": _HWHM_FLAT, "tri": 0.5}[self.kind]
        return max(1, round(per * max(self.left, self.right)))


def random_hump(rng: np.random.Generator, centre: float, hw_range: tuple[float, float]) -> Hump:
    """A hump of half width log-uniform in ``hw_range``: symmetric, skewed, flat-topped or triangular."""
    hw = float(np.exp(rng.uniform(*np.log(hw_range))))
    kind = str(rng.choice(["gauss", "gauss", "flat", "tri"]))
    per = {"gauss": _HWHM_GAUSS, "flat": _HWHM_FLAT, "tri": 0.5}[kind]
    w = hw / per
    left = right = w
    if kind == "gauss" and rng.random() < 0.5:  # skewed: one side narrower
        if rng.random() < 0.5:
            left = w * rng.uniform(0.35, 0.8)
        else:
            right = w * rng.uniform(0.35, 0.8)
    return Hump(centre, left, right, kind)


class Noise:
    """A noise model: its deviation at a level (for hump heights) and a draw around a profile."""

    def sd(self, level: np.ndarray | float) -> np.ndarray | float:
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Poisson(Noise):
    """Poisson trade counts (``clean`` is the expected count) times a fixed trade size."""

    size: float

    def sd(self, level: np.ndarray | float) -> np.ndarray | float:
        return np.sqrt(np.asarray(level) * self.size)

    def draw(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        return rng.poisson(clean / self.size) * self.size


@dataclass(frozen=True)
class LogNormal(Noise):
    """Multiplicative noise: ``clean * exp(N(0, s) - s^2/2)`` (mean kept)."""

    s: float

    def sd(self, level: np.ndarray | float) -> np.ndarray | float:
        return np.asarray(level) * np.sqrt(np.expm1(self.s**2))

    def draw(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        return clean * np.exp(rng.normal(-0.5 * self.s**2, self.s, clean.size))


@dataclass(frozen=True)
class Hetero(Noise):
    """Gaussian noise of deviation ``c * level^g``, clipped at zero."""

    c: float
    g: float

    def sd(self, level: np.ndarray | float) -> np.ndarray | float:
        return self.c * np.asarray(level) ** self.g

    def draw(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        return np.clip(clean + rng.normal(0.0, 1.0, clean.size) * self.c * clean**self.g, 0.0, None)


@dataclass(frozen=True)
class Clustered(Noise):
    """Negative binomial trade counts (dispersion ``r``) with sizes resampled from ``sizes``."""

    r: float
    sizes: np.ndarray  # mean 1

    def sd(self, level: np.ndarray | float) -> np.ndarray | float:
        lam = np.asarray(level)
        m2 = float(np.mean(self.sizes**2))
        return np.sqrt(m2 * lam + lam**2 / self.r)

    def draw(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        lam = rng.gamma(self.r, np.maximum(clean, 1e-12) / self.r)  # gamma-Poisson mixture
        counts = rng.poisson(lam)
        total = int(counts.sum())
        picks = self.sizes[rng.integers(0, self.sizes.size, total)]
        out = np.zeros(clean.size)
        np.add.at(out, np.repeat(np.arange(clean.size), counts), picks)
        return out


# --- planting ------------------------------------------------------------------------------------------


def _free(c: float, hw: int, placed: Sequence[tuple[float, int]], gap: float = 4.0) -> bool:
    return all(abs(c - c2) > 3 * (hw + hw2) + gap for c2, hw2 in placed)


def plant(
    rng: np.random.Generator,
    background: np.ndarray,
    sd: Callable[[float], float],
    count: int,
    hw_range: tuple[float, float],
    margin: int = 6,
    avoid: Sequence[int] = (),
) -> tuple[np.ndarray, list[Hump]]:
    """Add ``count`` humps (fewer when the range is full) to ``background``; heights per the doc.
    No hump is within ``tolerance + 4 + 3 half_width`` buckets of an ``avoid`` bucket (a wall)."""
    n = background.size
    x = np.arange(n, dtype=np.float64)
    signal = background.astype(np.float64).copy()
    humps: list[Hump] = []
    placed: list[tuple[float, int]] = []
    for _ in range(200):
        if len(humps) >= count:
            break
        h = random_hump(rng, 0.0, hw_range)
        reach = 3 * h.half_width + margin
        if n - 2 * reach < 2:
            continue
        c = rng.uniform(reach, n - reach)
        if not _free(c, h.half_width, placed):
            continue
        if any(abs(c - w) <= tolerance(h.half_width) + 4 + 3 * h.half_width for w in avoid):
            continue
        h = Hump(c, h.left, h.right, h.kind)
        base = float(background[round(c)])
        z = rng.uniform(4.0, 8.0) / np.sqrt(max(1.0, h.half_width / 2))
        amp = max(z * float(sd(base)), 0.3 * base, 1e-9)
        signal += amp * h.shape(x)
        humps.append(h)
        placed.append((c, h.half_width))
    return signal, humps


def _planted(humps: Sequence[Hump]) -> tuple[tuple[float, int], ...]:
    return tuple(sorted((h.centre, h.half_width) for h in humps))


def labels_of(clean: np.ndarray, humps: Sequence[Hump]) -> tuple[tuple[int, int], ...]:
    """Each hump's label per the module doc's rule, sorted by index."""
    n = clean.size
    out = []
    for h in humps:
        hw = h.half_width
        i0, i1 = max(round(h.centre) - hw, 1), min(round(h.centre) + hw + 1, n - 1)
        if i1 <= i0:
            continue
        j = i0 + int(np.argmax(clean[i0:i1]))
        if clean[j] > clean[j - 1] and clean[j] >= clean[j + 1]:
            out.append((j, hw))
    return tuple(sorted(out))


def add_walls(
    rng: np.random.Generator,
    clean: np.ndarray,
    level: np.ndarray,
    humps: Sequence[Hump],
    count: int,
) -> tuple[np.ndarray, list[int], list[int]]:
    """Walls on ``clean`` at round indices away from humps: (profile, wall buckets, wall starts)."""
    n = clean.size
    out = clean.copy()
    walls: list[int] = []
    starts: list[int] = []
    taken = [(h.centre, tolerance(h.half_width) + 4 + 3 * h.half_width) for h in humps]
    for _ in range(100):
        if len(starts) >= count:
            break
        i = int(rng.integers(3, n - 4))
        if rng.random() < 0.8:  # round price: a multiple of 10 buckets
            i = min(max(10 * round(i / 10), 3), n - 4)
        if any(abs(i - c) <= reach for c, reach in taken) or any(abs(i - s) < 8 for s in starts):
            continue
        height = rng.uniform(4.0, 30.0) * max(float(level[i]), 1e-9)
        out[i] += height
        walls.append(i)
        if rng.random() < 0.3:  # two buckets
            out[i + 1] += height * rng.uniform(0.3, 1.0)
            walls.append(i + 1)
        starts.append(i)
    return out, sorted(walls), starts


def _prices(rng: np.random.Generator, n: int) -> np.ndarray:
    price = 10 ** rng.uniform(-2, 4.8)
    size = float(10 ** np.round(np.log10(price * 1.6e-5)))
    start = np.floor(price / size) * size
    return start + size * np.arange(n, dtype=np.float64)


def _n(rng: np.random.Generator) -> int:
    return int(np.exp(rng.uniform(np.log(MIN_BUCKETS), np.log(MAX_BUCKETS + 1))))


def _widths(n: int, widest: float) -> tuple[float, float]:
    """Planted half widths: 1 bucket up to ``widest``, at most a 60th of the range (at least 2)."""
    return 1.0, max(2.0, min(widest, n / 60))


def _broad(rng: np.random.Generator, n: int, lo: float, hi: float, widest: float) -> float:
    """Sigma of a background bell: ``lo``-``hi`` of the range, at least four times as wide as
    the widest planted hump and at least 40 buckets, so a background bell is never a wave peak."""
    return max(rng.uniform(lo, hi) * n, 4 * widest / _HWHM_GAUSS, 40.0)


def _count(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(1, max(2, n // 150) + 1))


# --- families ----------------------------------------------------------------------------------------


def _bump(x: np.ndarray, centre: float, left: float, right: float) -> np.ndarray:
    d = x - centre
    return np.exp(-0.5 * (d / np.where(d < 0, left, right)) ** 2)


def make_compound_poisson(
    rng: np.random.Generator, n: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], list[tuple[float, int]]]:
    """The project's own generator, as it was (same draws): volumes, noise-free profile, labels,
    planted humps (centre, half width).

    Trend and half the time a broad bell; gaussian bumps of 0.8-5 buckets, half skewed, a quarter
    with a close partner; 5-10 sigma at the top; compound Poisson (gamma sizes). Its labels keep
    its own rule (the noise-free maximum within 2 buckets of the centre); half widths added.
    """
    n = int(rng.integers(400, 1201)) if n is None else n
    x = np.arange(n, dtype=np.float64)
    level = 10 ** rng.uniform(np.log10(5), np.log10(300))
    trend = rng.uniform(-0.7, 0.7)
    lam = level * (1 + trend * (2 * x / n - 1))
    if rng.random() < 0.5:
        centre, width = rng.uniform(0.2, 0.8) * n, rng.uniform(0.12, 0.35) * n
        lam *= 0.15 + 0.85 * np.exp(-0.5 * ((x - centre) / width) ** 2)
    size_cv = rng.uniform(0.6, 1.5)
    var_factor = 1 + size_cv**2
    wanted = int(rng.integers(1, max(2, n // 90) + 1))
    centres: list[float] = []
    widths: list[float] = []
    signal = lam.copy()

    def free(c: float, w: float) -> bool:
        return all(abs(c - c2) > 4 * max(w, w2) + 6 for c2, w2 in zip(centres, widths, strict=True))

    for _ in range(200):
        if len(centres) >= wanted:
            break
        left = rng.uniform(0.8, 5.0)
        right = left * rng.uniform(0.5, 2.0) if rng.random() < 0.5 else left
        c = rng.uniform(10, n - 10)
        if not free(c, max(left, right)):
            continue
        group = [(c, left, right)]
        if rng.random() < 0.25:  # a close pair
            w2 = rng.uniform(0.8, 3.0)
            c2 = c + rng.uniform(3.0, 5.0) * max(left, right, w2)
            if c2 < n - 10 and free(c2, w2):
                group.append((c2, w2, w2))
        for cc, wl, wr in group:
            base = lam[round(cc)]
            z = rng.uniform(5.0, 10.0)
            zz = z * z * var_factor
            amp = max((zz + np.sqrt(zz * zz + 4 * zz * base)) / 2, 0.25 * base)
            signal += amp * _bump(x, cc, wl, wr)
            centres.append(cc)
            widths.append(max(wl, wr))
    labels: dict[int, int] = {}
    for c, w in zip(centres, widths, strict=True):
        i0, i1 = max(round(c) - 2, 1), min(round(c) + 3, n - 1)
        j = i0 + int(np.argmax(signal[i0:i1]))
        if signal[j] >= signal[j - 1] and signal[j] >= signal[j + 1]:
            labels[j] = max(1, round(_HWHM_GAUSS * w))
    trades = rng.poisson(signal)
    vol = np.where(trades > 0, rng.gamma(np.maximum(trades, 1) / size_cv**2, size_cv**2), 0.0)
    planted = [(c, max(1, round(_HWHM_GAUSS * w))) for c, w in zip(centres, widths, strict=True)]
    return vol, signal, sorted(labels.items()), planted


def _compound_poisson(rng: np.random.Generator) -> Labelled:
    vol, clean, labels, planted = make_compound_poisson(rng)
    prices = _prices(rng, vol.size)
    return Labelled("compound_poisson", prices, vol, clean, tuple(labels), (), tuple(planted))


def _book_background(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.arange(n, dtype=np.float64)
    level = 10 ** rng.uniform(-1, 4)
    x0 = rng.uniform(0.01, 0.2) * n
    a = rng.uniform(0.0, 1.5)
    scale = rng.uniform(0.2, 2.0) * n
    bg = level * (1 + x / x0) ** a * np.exp(-x / scale)
    bg = bg / bg.max() * level
    return bg[::-1].copy() if rng.random() < 0.5 else bg  # bid side: the mid on the right


def _book_decay(rng: np.random.Generator) -> Labelled:
    n = _n(rng)
    bg = _book_background(rng, n)
    noise = LogNormal(rng.uniform(0.2, 0.6))
    clean, humps = plant(rng, bg, lambda b: float(noise.sd(b)), _count(rng, n), _widths(n, 10.0))
    vol = noise.draw(rng, clean)
    # far, thin buckets are often empty: a level there is an order or none
    empty = rng.random(n) < 0.5 * np.exp(-clean / (0.1 * clean.max()))
    vol[empty & (bg < 0.1 * bg.max())] = 0.0
    return Labelled("book_decay", _prices(rng, n), vol, clean, labels_of(clean, humps), (), _planted(humps))


def _trade_humps(rng: np.random.Generator) -> Labelled:
    n = _n(rng)
    x = np.arange(n, dtype=np.float64)
    level = 10 ** rng.uniform(np.log10(3), np.log10(500))  # trades per bucket at the top
    bg = np.full(n, level * rng.uniform(0.02, 0.15))
    for _ in range(int(rng.integers(1, 4))):
        c, w = rng.uniform(0.1, 0.9) * n, _broad(rng, n, 0.08, 0.3, _widths(n, 25.0)[1])
        bg += level * rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((x - c) / w) ** 2)
    size = 10 ** rng.uniform(-3, 1)
    bg *= size
    noise = Poisson(size)
    clean, humps = plant(rng, bg, lambda b: float(noise.sd(b)), _count(rng, n), _widths(n, 25.0))
    vol = noise.draw(rng, clean)
    return Labelled("trade_humps", _prices(rng, n), vol, clean, labels_of(clean, humps), (), _planted(humps))


def _slope(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.arange(n, dtype=np.float64) / n
    level = 10 ** rng.uniform(-1, 4)
    kind = rng.integers(0, 3)
    if kind == 0:
        return np.full(n, level)
    if kind == 1:
        t = rng.uniform(-0.9, 0.9)
        return level * (1 + t * (2 * x - 1))
    return level * np.exp(rng.uniform(-3, 3) * (x - 0.5))


def _multiplicative(rng: np.random.Generator) -> Labelled:
    n = _n(rng)
    bg = _slope(rng, n)
    noise = LogNormal(rng.uniform(0.3, 0.8))
    clean, humps = plant(rng, bg, lambda b: float(noise.sd(b)), _count(rng, n), _widths(n, 15.0))
    vol = noise.draw(rng, clean)
    return Labelled(
        "multiplicative", _prices(rng, n), vol, clean, labels_of(clean, humps), (), _planted(humps)
    )


def _heteroscedastic(rng: np.random.Generator) -> Labelled:
    n = _n(rng)
    bg = _slope(rng, n)
    if rng.random() < 0.5:
        x = np.arange(n, dtype=np.float64)
        c, w = rng.uniform(0.2, 0.8) * n, _broad(rng, n, 0.1, 0.35, _widths(n, 15.0)[1])
        bg = bg * (0.1 + 0.9 * np.exp(-0.5 * ((x - c) / w) ** 2))
    g = rng.uniform(0.5, 1.0)
    c = rng.uniform(0.15, 0.5) * float(np.median(bg)) ** (1 - g)  # 15-50 % at the median level
    noise = Hetero(c, g)
    clean, humps = plant(rng, bg, lambda b: float(noise.sd(b)), _count(rng, n), _widths(n, 15.0))
    vol = noise.draw(rng, clean)
    return Labelled(
        "heteroscedastic", _prices(rng, n), vol, clean, labels_of(clean, humps), (), _planted(humps)
    )


@functools.cache
def real_trade_sizes() -> np.ndarray:
    """Trade quantities of the recordings, each symbol's divided by its mean (so the mean is 1)."""
    by_symbol: dict[str, list[float]] = {}
    for path in (HFT_0808, HFT_0809):
        with gzip.open(path, "rt") as f:
            for line in f:
                if "@trade" in line:
                    data = json.loads(line.split(" ", 1)[1])["data"]
                    by_symbol.setdefault(data["s"], []).append(float(data["q"]))
    for path in (CRYPTOFEED, BINANCE_US[1]):
        with path.open() as f:
            for line in f:
                if "@aggTrade" in line and '"data"' in line:
                    data = json.loads(line.split(": ", 1)[1])["data"]
                    by_symbol.setdefault(data["s"], []).append(float(data["q"]))
    parts = [np.array(q) / np.mean(q) for q in by_symbol.values() if len(q) >= 20]
    return np.concatenate(parts)


def _bursty(rng: np.random.Generator) -> Labelled:
    n = _n(rng)
    x = np.arange(n, dtype=np.float64)
    level = 10 ** rng.uniform(np.log10(2), np.log10(200))  # trades per bucket
    bg = level * (1 + rng.uniform(-0.6, 0.6) * (2 * x / n - 1))
    if rng.random() < 0.6:
        c, w = rng.uniform(0.2, 0.8) * n, _broad(rng, n, 0.1, 0.35, _widths(n, 12.0)[1])
        bg *= 0.15 + 0.85 * np.exp(-0.5 * ((x - c) / w) ** 2)
    noise = Clustered(rng.uniform(1.0, 6.0), real_trade_sizes())
    clean, humps = plant(rng, bg, lambda b: float(noise.sd(b)), _count(rng, n), _widths(n, 12.0))
    unit = 10 ** rng.uniform(-3, 2)  # the symbol's size scale
    vol = noise.draw(rng, clean) * unit
    return Labelled(
        "bursty", _prices(rng, n), vol, clean * unit, labels_of(clean, humps), (), _planted(humps)
    )


def _walls(rng: np.random.Generator) -> Labelled:
    n = _n(rng)
    bg = _book_background(rng, n) if rng.random() < 0.6 else _slope(rng, n)
    noise = LogNormal(rng.uniform(0.15, 0.5))
    clean, humps = plant(rng, bg, lambda b: float(noise.sd(b)), _count(rng, n), _widths(n, 12.0))
    x = np.arange(n, dtype=np.float64)
    if rng.random() < 0.5:  # a dominant point of control
        for _ in range(50):
            widest = _widths(n, 15.0)[1]
            h = random_hump(rng, 0.0, (min(3.0, widest), widest))
            reach = 3 * h.half_width + 6
            c = rng.uniform(reach, n - reach)
            if _free(c, h.half_width, [(g.centre, g.half_width) for g in humps]):
                h = Hump(c, h.left, h.right, h.kind)
                amp = rng.uniform(10, 40) * 4 * float(noise.sd(bg[round(c)])) + 3 * float(bg.max())
                clean = clean + amp * h.shape(x)
                humps.append(h)
                break
    labels = labels_of(clean, humps)
    walled, walls, _ = add_walls(rng, clean, bg, humps, int(rng.integers(1, max(2, n // 200) + 2)))
    vol = noise.draw(rng, walled)
    # walls are resting orders: their size is drawn apart from the noise
    vol[walls] = walled[walls] - clean[walls] + noise.draw(rng, clean[walls])
    # gaps: runs of empty buckets, away from humps and walls
    keep_out = [(h.centre, 3 * h.half_width + 3) for h in humps] + [(w, 3) for w in walls]
    for _ in range(int(rng.integers(0, 4))):
        length = int(rng.integers(3, 31))
        a = int(rng.integers(1, max(2, n - length - 1)))
        if all(b + reach < a or b - reach > a + length for b, reach in keep_out):
            vol[a : a + length] = 0.0
    return Labelled("walls", _prices(rng, n), vol, walled, labels, tuple(walls), _planted(humps))


@functools.cache
def real_books() -> tuple[tuple[str, np.ndarray, np.ndarray, float], ...]:
    """Every recorded REST book side: (name, prices from the touch outwards, quantities, tick)."""
    out = []
    for path, tick in ((CRYPTOFEED, None), (BINANCE_US[0], 0.0001)):
        with path.open() as f:
            for line in f:
                if line.startswith("https://") and "/depth?" in line and "lastUpdateId" in line:
                    url, rest = line.split(" -> ", 1)
                    symbol = url.split("symbol=")[1].split("&")[0]
                    book = json.loads(rest.split(": ", 1)[1])
                    for side in ("bids", "asks"):
                        px = np.array([float(p) for p, _ in book[side]])
                        q = np.array([float(q) for _, q in book[side]])
                        t = tick or float(np.min(np.abs(np.diff(px))[np.abs(np.diff(px)) > 0]))
                        out.append((f"{symbol}_{side}", px, q, t))
    return tuple(out)


def _ring_mean(v: np.ndarray) -> np.ndarray:
    """The mean of the 20 buckets around each bucket, the two on each side next to it excluded."""
    ring = np.r_[np.ones(10), np.zeros(3), np.ones(10)] / 20.0
    return np.asarray(np.convolve(np.pad(v, 11, mode="edge"), ring, mode="same")[11:-11])


def wall_rule(v: np.ndarray) -> list[int]:
    """Walls of a recorded book by the module doc's rule."""
    n = v.size
    ref = _ring_mean(v)
    big = (v >= 8 * ref) & (v >= 4 * (float(v[v > 0].mean()) if (v > 0).any() else np.inf))
    out: list[int] = []
    for i in np.flatnonzero(big).tolist():
        left = v[i - 1] if i > 0 else 0.0
        right = v[i + 1] if i + 1 < n else 0.0
        after = v[i + 2] if i + 2 < n else 0.0
        if left < 0.5 * v[i] and right < 0.5 * v[i]:
            out.append(i)
        elif left < 0.5 * v[i] and right >= 0.5 * v[i] and after < 0.5 * right:
            out += [i, i + 1]
    return sorted(set(out))


REAL_BLOCK = 3
"""Buckets per block of the real noise's block bootstrap (shorter than any planted hump's span)."""
REAL_REACH = 60
"""A block is drawn from within this many buckets of where it goes (the noise stays local)."""


def real_background(raw: np.ndarray, walls: Sequence[int], sigma: float) -> np.ndarray:
    """The real side's shape without its own humps: the wall buckets replaced by their ring mean
    (:func:`wall_rule`'s reference), then a gaussian of ``sigma`` buckets (at least 40 and four
    times the widest planted half width: no structure narrower than a background bell remains)."""
    v = raw.astype(np.float64).copy()
    if len(walls):
        v[list(walls)] = _ring_mean(raw)[list(walls)]
    return np.asarray(gaussian_filter1d(v, sigma, mode="nearest"))


def real_spread(ratio: np.ndarray) -> np.ndarray:
    """The recorded families' local noise, relative to the background: the noise ratios' root
    mean square deviation from 1 over 41 buckets, at least 0.1 (a median absolute deviation is 0
    where most levels are empty). A planted hump's height is ``z`` times this times the
    background."""
    return np.asarray(np.maximum(np.sqrt(uniform_filter1d((ratio - 1.0) ** 2, 41, mode="nearest")), 0.1))


def real_noise(rng: np.random.Generator, ratio: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The real levels' ratios to the background, block-bootstrapped: blocks of
    :data:`REAL_BLOCK` buckets, each copied from a source start within :data:`REAL_REACH` buckets
    of its place; ``keep`` buckets (walls) are never a source (their ratio is set to 1 there)."""
    n = ratio.size
    r = np.where(keep, 1.0, ratio)
    out = np.empty(n)
    for s in range(0, n, REAL_BLOCK):
        length = min(REAL_BLOCK, n - s)
        lo, hi = max(0, s - REAL_REACH), min(n - length, s + REAL_REACH)
        u = int(rng.integers(lo, hi + 1))
        out[s : s + length] = r[u : u + length]
    return out


def _real_books(rng: np.random.Generator) -> Labelled:
    books = real_books()
    _, px, q, tick = books[int(rng.integers(0, len(books)))]
    touch = px[0]
    far = np.abs(px - touch)
    reach = min(float(far.max()), 0.3 * touch)
    span = reach * rng.uniform(0.25, 1.0)
    n = _n(rng)
    size = max(span / n, tick)
    n = max(min(n, int(span / size)), MIN_BUCKETS)
    size = span / n
    ascending = px[-1] > px[0]
    low = touch - 0.5 * size if ascending else touch - (n - 0.5) * size  # the touch in an end bucket
    idx = np.floor((px - low) / size).astype(np.int64)
    ok = (idx >= 0) & (idx < n)
    raw = np.bincount(idx[ok], weights=q[ok], minlength=n).astype(np.float64)
    prices = low + size * np.arange(n, dtype=np.float64)
    return _from_recorded(rng, "real_books", prices, raw)


def _from_recorded(rng: np.random.Generator, family: str, prices: np.ndarray, raw: np.ndarray) -> Labelled:
    """A recorded profile ``raw`` made a labelled one by the module doc's rule for real sides."""
    n = raw.size
    walls = wall_rule(raw)
    widths = _widths(n, 12.0)
    bg = real_background(raw, walls, max(40.0, 4 * widths[1] / _HWHM_GAUSS))
    mean_level = float(raw[raw > 0].mean()) if (raw > 0).any() else 1.0
    bg = np.maximum(bg, 1e-6 * mean_level)  # far empty stretches: a tiny, not a zero, level
    is_wall = np.zeros(n, dtype=bool)
    is_wall[walls] = True
    noise = real_noise(rng, raw / bg, is_wall)
    spread = real_spread(noise)
    starts = [w for w in walls if w - 1 not in walls]
    clean, humps = plant(rng, bg, lambda b: 0.0, _count(rng, n), widths, avoid=walls)  # places only
    x = np.arange(n, dtype=np.float64)
    added = np.zeros(n)
    for h in humps:  # heights against the local noise, as plant's rule
        i = round(h.centre)
        z = rng.uniform(4.0, 8.0) / np.sqrt(max(1.0, h.half_width / 2))
        added += max(z * float(spread[i] * bg[i]), 0.3 * float(bg[i])) * h.shape(x)
    clean = bg + added
    vol = bg * noise + added  # a hump is resting volume added to the levels there
    for a in starts:  # walls in place, at their recorded size; their neighbours under half of them
        b = a + 1 if a + 1 in walls else a
        vol[a : b + 1] = raw[a : b + 1]
        top = float(raw[a : b + 1].min())
        for j in (a - 1, b + 1):
            if 0 <= j < n:
                vol[j] = min(vol[j], 0.45 * top)
    labels = labels_of(clean, humps)
    return Labelled(family, prices, vol, clean, labels, tuple(walls), _planted(humps), bg)


@functools.cache
def real_trades() -> tuple[tuple[str, np.ndarray, np.ndarray, float], ...]:
    """The recorded trades with enough of them for a profile: (name, prices, quantities, tick):
    hftbacktest BTCUSDT (2024-08-08 and -09, ~10,000 trades each over ~200-280 USD) and the
    cryptofeed BTCUSDT aggTrades (2021-04-04, 1,227 over 44 USD)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for path in (HFT_0808, HFT_0809):
        with gzip.open(path, "rt") as f:
            for line in f:
                if "@trade" in line:
                    data = json.loads(line.split(" ", 1)[1])["data"]
                    by.setdefault(f"{path.name}_{data['s']}", []).append((float(data["p"]), float(data["q"])))
    with CRYPTOFEED.open() as f:
        for line in f:
            if "@aggTrade" in line and '"data"' in line:
                data = json.loads(line.split(": ", 1)[1])["data"]
                by.setdefault(f"{CRYPTOFEED.name}_{data['s']}", []).append(
                    (float(data["p"]), float(data["q"]))
                )
    out = []
    for name, rows in sorted(by.items()):
        a = np.array(rows)
        distinct = np.unique(a[:, 0])
        if a.shape[0] < 1000 or distinct.size < 2:
            continue
        tick = float(np.min(np.diff(distinct)))
        out.append((name, a[:, 0], a[:, 1], tick))
    return tuple(out)


def _real_trades(rng: np.random.Generator) -> Labelled:
    trades = real_trades()
    _, px, q, tick = trades[int(rng.integers(0, len(trades)))]
    lo, hi = float(px.min()), float(px.max())
    span = (hi - lo) * rng.uniform(0.4, 1.0)
    start = lo + rng.uniform(0.0, hi - lo - span)
    n = _n(rng)
    n = max(min(n, int(span / tick)), MIN_BUCKETS)
    size = span / n
    idx = np.floor((px - start) / size).astype(np.int64)
    ok = (idx >= 0) & (idx < n)
    raw = np.bincount(idx[ok], weights=q[ok], minlength=n).astype(np.float64)
    return _from_recorded(rng, "real_trades", start + size * np.arange(n, dtype=np.float64), raw)


GENERATORS: dict[str, Callable[[np.random.Generator], Labelled]] = {
    "compound_poisson": _compound_poisson,
    "book_decay": _book_decay,
    "trade_humps": _trade_humps,
    "multiplicative": _multiplicative,
    "heteroscedastic": _heteroscedastic,
    "bursty": _bursty,
    "walls": _walls,
    "real_books": _real_books,
    "real_trades": _real_trades,
}
FAMILIES = tuple(GENERATORS)
SEED = 20261207


def dataset(family: str, count: int = N_PER_FAMILY, seed: int = SEED) -> list[Labelled]:
    """``count`` profiles of ``family``; the same (family, seed) always gives the same profiles."""
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    return [GENERATORS[family](rng) for _ in range(count)]

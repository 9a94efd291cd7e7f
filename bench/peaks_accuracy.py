"""Group ``peaks_accuracy``: wave-peak precision, recall and F1, each family held out in turn.

Why held-out families: a detector tuned and scored on one generator learns that generator (issue
10: F1 0.984 on the project's own generator, 0.635 on an independent benchmark built like real
books and trade profiles). ``bench.peak_families`` makes labelled profiles in families that differ
in background, noise, peak shape and distractors (walls, gaps, a dominant POC), two of them cut
from the recorded books and trades. For each family F, every detector's parameters are tuned on
all the other families (a grid; the best pooled F1 wins) and scored on F. The held-out figures pool the
counts of every family scored that way (micro-average): no profile is ever scored by parameters
that saw its family.

Detectors, all from the same run on the same profiles:

* ours: ``depthflow.peaks.find_wave_peaks(prices, volumes, **overrides)``, a grid over its
  wave and wall parameters (:data:`OURS_GRID`), the others at their defaults; also scored at
  its defaults, untuned (``peaks_f1_defaults_<family>``, ``peaks_f1_families_defaults``);
* ``scipy.signal.find_peaks`` on the raw volumes: prominence as a fraction of the profile's
  range (domain.md §4's recipe) swept, ``distance`` and ``width`` on a grid;
* a smoothed, background-relative ``find_peaks``: the volumes (or their square roots) smoothed
  by a gaussian, minus a rolling median (the background), divided by a rolling median absolute
  deviation (the local noise scale), then ``find_peaks`` with a height threshold in those noise
  units (swept), a minimum prominence within a window (``wlen``) and ``distance``.

Scoring (:func:`match`): a detection finds a label within ``tolerance(half_width) = max(2,
half_width)`` buckets, one to one (the largest such matching). Any other detection is a false
positive; one within a bucket of a labelled wall is also counted as a wall hit, one within
three tolerances of a label as "beside" (one hump reported twice, or off target), one where the
noise-free profile is in its top quarter as "high background". Ours also
reports walls: those are scored against the wall labels (within a bucket of a wall's span, one
to one) for wall precision and recall.

Figures: ``peaks_f1_heldout_families`` (and ``_scipy``, ``_scipy_smoothed``) pool every family
scored held out; ``peaks_f1_heldout_<family>`` (same suffixes), ours' precision and recall per
family and pooled, ours' false positives by kind (``peaks_fp_*_heldout_families``), wall
precision and recall (``walls_*``), the parameters each held-out family was scored with
(``peaks_params_heldout_<family>``), and ours at its defaults (``peaks_f1_defaults_<family>``,
``peaks_f1_families_defaults``).

Thresholds are swept over each configuration's candidate scores, which equals calling the
detector with that threshold (``find_peaks`` applies ``distance`` before ``prominence``, and
``width`` per peak); ours is called once per grid point.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.signal import find_peaks

from bench.peak_families import FAMILIES, Labelled, dataset, make_compound_poisson, tolerance
from bench.report import Figure

__all__ = ["Counts", "make_profile", "match", "run"]


def make_profile(rng: np.random.Generator, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The project's own generator (``compound_poisson``): volumes and labelled peak indices."""
    vol, _, labels, _ = make_compound_poisson(rng, n)
    return vol, np.array([i for i, _ in labels], dtype=np.int64)


# --- scoring ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """Pooled counts: wave true/false positives and misses; false positives on walls, beside a
    label and where the noise-free profile is in its top quarter (a thick background); reported
    walls that are / are not labelled walls, and labelled walls missed."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    fp_wall: int = 0
    fp_beside: int = 0
    fp_high: int = 0
    wall_tp: int = 0
    wall_fp: int = 0
    wall_fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return Counts(*(a + b for a, b in pairs))

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def wall_precision(self) -> float:
        return self.wall_tp / (self.wall_tp + self.wall_fp) if self.wall_tp + self.wall_fp else 0.0

    @property
    def wall_recall(self) -> float:
        return self.wall_tp / (self.wall_tp + self.wall_fn) if self.wall_tp + self.wall_fn else 0.0


def _intervals_matching(points: Sequence[int], intervals: Sequence[tuple[int, int]]) -> list[int]:
    """Maximum one-to-one matching of points to closed intervals: the matched points' positions.

    Intervals taken by ascending right end, each given the leftmost free point inside it: the
    classic greedy, optimal for points against intervals (an exchange argument).
    """
    free = sorted(points)
    used: list[int] = []
    for lo, hi in sorted(intervals, key=lambda t: (t[1], t[0])):
        k = bisect.bisect_left(free, lo)
        if k < len(free) and free[k] <= hi:
            used.append(free.pop(k))
    return used


def _wall_spans(walls: Sequence[int]) -> list[tuple[int, int]]:
    """Adjacent wall buckets as one wall: (first, last) bucket of each."""
    spans: list[tuple[int, int]] = []
    for w in sorted(walls):
        if spans and w == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], w)
        else:
            spans.append((w, w))
    return spans


def match(pred: Sequence[int], prof: Labelled, walls_found: Sequence[int] = ()) -> Counts:
    """Score one profile's wave detections ``pred`` (and reported walls) against its labels."""
    intervals = [(i - tolerance(hw), i + tolerance(hw)) for i, hw in prof.peaks]
    hit = _intervals_matching(pred, intervals)
    rest = list(pred)
    for h in hit:
        rest.remove(h)
    spans = _wall_spans(prof.walls)
    on_wall = sum(1 for p in rest if any(a - 1 <= p <= b + 1 for a, b in spans))
    beside = sum(1 for p in rest if any(abs(p - i) <= 3 * tolerance(hw) for i, hw in prof.peaks))
    high = float(np.quantile(prof.clean, 0.75))
    thick = sum(1 for p in rest if prof.clean[p] >= high)
    wall_tp = len(_intervals_matching(walls_found, [(a - 1, b + 1) for a, b in spans]))
    return Counts(
        tp=len(hit),
        fp=len(rest),
        fn=len(intervals) - len(hit),
        fp_wall=on_wall,
        fp_beside=beside,
        fp_high=thick,
        wall_tp=wall_tp,
        wall_fp=len(walls_found) - wall_tp,
        wall_fn=len(spans) - wall_tp,
    )


# --- detectors ----------------------------------------------------------------------------------------

Found = tuple[np.ndarray, np.ndarray, list[int]]  # wave indices, their scores, wall indices


@dataclass(frozen=True)
class Method:
    """A detector as a grid: configurations, each giving candidates with a score per profile, and
    thresholds swept over the scores (a single ``-inf`` threshold: the configuration is the call)."""

    name: str
    configs: list[dict[str, Any]]
    candidates: Callable[[Labelled, dict[str, Any]], Found]
    thresholds: np.ndarray
    threshold_name: str = ""

    def label(self, setting: int) -> str:
        c, t = divmod(setting, self.thresholds.size)
        params = dict(self.configs[c])
        if self.threshold_name:
            params[self.threshold_name] = float(self.thresholds[t])
        return " ".join(f"{k}={v:g}" if isinstance(v, float | int) else f"{k}={v}" for k, v in params.items())


def _ours_call() -> tuple[Callable[..., Any], frozenset[str]]:
    """``find_wave_peaks`` and its parameter names; before it existed, ``combined_peaks`` wrapped."""
    try:
        from depthflow.peaks import find_wave_peaks
        from depthflow.peaks.params import PeakParams

        return find_wave_peaks, frozenset(f.name for f in dataclasses.fields(PeakParams))
    except ImportError:  # the detector of issue 9: waves only
        from types import SimpleNamespace

        from depthflow.peaks.detectors import combined_peaks  # type: ignore[attr-defined]
        from depthflow.peaks.params import PeakParams

        def call(prices: np.ndarray, volumes: np.ndarray, **overrides: Any) -> Any:
            found = combined_peaks(volumes, None, dataclasses.replace(PeakParams(), **overrides))
            return SimpleNamespace(peaks=[SimpleNamespace(index=p.index) for p in found], walls=[])

        return call, frozenset(f.name for f in dataclasses.fields(PeakParams))


OURS_GRID: dict[str, tuple[float, ...]] = {
    "smooth": (1.5, 3.0, 5.0),
    "level_noise": (0.0, 0.5),
    "level_cap": (0.0, 3.0, 4.0),
    "narrow_z": (0.0, 3.5),
    "narrow_lumpiness": (2.0, 2.5),
    "top_share": (0.7, 0.8, 1.0),
    "prominence_z": (1.0, 1.5, 2.0, 3.0),
}
"""Ours: the wave and wall parameters of ``PeakParams`` that exist (walls are taken out before
the wave search, so ``wall_z`` moves wave detections too); the others stay at their defaults.
864 points: the group's time is mostly these calls (~100 us each, 540 profiles). Off the grid,
as no held-out fold picked them in the last runs: window 41 (81 stays), noise_window 96 (192),
spike_ratio 0 (3), top_share 0.6, prominence_z 4, min_relative_volume 0.5 (0 stays), wall_z 6
(4 stays). ``wall_min_relative`` stays off the grid too: the folds choose by wave F1, which it
hardly moves; it was chosen by the walls' figures on another seed (peaks README, step 3)."""


def ours() -> Method:
    call, fields = _ours_call()
    grid = {k: v for k, v in OURS_GRID.items() if k in fields}
    configs: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        configs = [{**c, key: v} for c in configs for v in values]
    for c in configs:
        for key in ("window", "noise_window", "scales"):
            if key in c:
                c[key] = int(c[key])

    def cands(prof: Labelled, cfg: dict[str, Any]) -> Found:
        out = call(prof.prices, prof.volumes, **cfg)
        idx = np.array([p.index for p in out.peaks], dtype=np.int64)
        return idx, np.full(idx.size, np.inf), [w.index for w in out.walls]

    return Method("ours", configs, cands, np.array([-np.inf]))


def scipy_raw() -> Method:
    """``find_peaks`` on raw volumes: prominence / range swept; distance, width on a grid."""
    configs: list[dict[str, Any]] = [
        {"distance": d, "width": w} for d in (1, 5, 20, 40) for w in (0, 1, 2, 4)
    ]

    def cands(prof: Labelled, cfg: dict[str, Any]) -> Found:
        v = prof.volumes
        kw: dict[str, Any] = {"distance": cfg["distance"], "prominence": 0.0}
        if cfg["width"]:
            kw["width"] = cfg["width"]
        idx, props = find_peaks(v, **kw)
        span = float(v.max() - v.min()) or 1.0
        return idx.astype(np.int64), props["prominences"] / span, []

    return Method("scipy", configs, cands, np.geomspace(0.01, 0.6, 30), "prominence_of_range")


def background_relative(v: np.ndarray, transform: str, smooth: float, window: int) -> np.ndarray:
    """The smoothed (square-root) profile minus its rolling median, in units of its local noise.

    The noise is estimated on the unsmoothed series, from first differences (1.4826 x their
    rolling median absolute value / sqrt 2), and carried through the gaussian (x its kernel's
    norm): on the smoothed series itself a rolling MAD is near zero wherever it is monotone.
    """
    y = np.sqrt(v) if transform == "sqrt" else v
    ys = gaussian_filter1d(y, smooth, mode="nearest") if smooth > 0 else y
    r = ys - median_filter(ys, size=window, mode="nearest")
    d = np.abs(np.diff(y, prepend=y[0]))
    scale = 1.4826 / np.sqrt(2) * median_filter(d, size=window, mode="nearest")
    # a floor: half the profile's overall scale (where most buckets are empty the local MAD is 0)
    floor = 0.5 * 1.4826 / np.sqrt(2) * float(np.median(d[1:])) if d.size > 1 else 0.0
    if floor <= 0:
        floor = float(np.mean(d)) or 1.0
    norm = 1.0 / np.sqrt(2 * np.sqrt(np.pi) * smooth) if smooth > 0.5 else 1.0
    return r / (np.maximum(scale, floor) * norm)


def scipy_smoothed() -> Method:
    """Background-relative ``find_peaks``: the height above the background in noise units swept
    (``height=``), a minimum prominence within ``wlen`` = the window, and the rest on a grid."""
    configs: list[dict[str, Any]] = [
        {"transform": t, "smooth": s, "window": w, "distance": d, "min_prominence": mp}
        for t in ("sqrt", "none")
        for s in (1.5, 3.0)
        for w in (31, 101)
        for d in (3, 8)
        for mp in (1.0, 3.0)
    ]
    cache: dict[tuple[int, str, float, int], np.ndarray] = {}

    def cands(prof: Labelled, cfg: dict[str, Any]) -> Found:
        key = (id(prof), cfg["transform"], cfg["smooth"], cfg["window"])
        z = cache.get(key)
        if z is None:
            z = cache[key] = background_relative(prof.volumes, cfg["transform"], cfg["smooth"], cfg["window"])
        idx, _ = find_peaks(z, distance=cfg["distance"], prominence=cfg["min_prominence"], wlen=cfg["window"])
        return idx.astype(np.int64), z[idx], []

    # find_peaks applies height before distance, but a peak under the height never suppresses a
    # higher one, so filtering the candidates by height afterwards gives the same peaks
    return Method("scipy_smoothed", configs, cands, np.geomspace(1.0, 15.0, 30), "height")


# --- leave one family out ------------------------------------------------------------------------


def tabulate(method: Method, data: dict[str, list[Labelled]]) -> np.ndarray:
    """Counts per (setting, family, field of :class:`Counts`); settings are configurations x
    thresholds, in that order."""
    nt = method.thresholds.size
    table = np.zeros((len(method.configs) * nt, len(data), len(dataclasses.fields(Counts))), dtype=np.int64)
    for fi, profiles in enumerate(data.values()):
        for prof in profiles:
            for ci, cfg in enumerate(method.configs):
                idx, score, walls = method.candidates(prof, cfg)
                last, row = -1, np.zeros(0)
                for ti, th in enumerate(method.thresholds):
                    keep = score >= th
                    kept = int(keep.sum())
                    if kept != last:  # thresholds keep nested sets: same size, same set
                        row = np.array(dataclasses.astuple(match(idx[keep].tolist(), prof, walls)))
                        last = kept
                    table[ci * nt + ti, fi] += row
    return table


def held_out(table: np.ndarray) -> list[tuple[int, Counts]]:
    """Per family: the setting tuned on every other family (best pooled F1), and its counts there."""
    out = []
    for fi in range(table.shape[1]):
        train = table.sum(axis=1) - table[:, fi]
        tp, fp, fn = train[:, 0], train[:, 1], train[:, 2]
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)  # = 2PR / (P + R)
        best = int(np.argmax(f1))
        out.append((best, Counts(*table[best, fi].tolist())))
    return out


def run() -> list[Figure]:
    """Tune on all families but one, score on it, for each family and detector; pool the scores."""
    t0 = time.perf_counter()
    data = {f: dataset(f) for f in FAMILIES}
    figures: list[Figure] = []
    suffix = {"ours": "", "scipy": "_scipy", "scipy_smoothed": "_scipy_smoothed"}
    for method in (ours(), scipy_raw(), scipy_smoothed()):
        table = tabulate(method, data)
        results = held_out(table)
        total = sum((c for _, c in results), Counts())
        sfx = suffix[method.name]
        figures.append(Figure(f"peaks_f1_heldout_families{sfx}", round(total.f1, 4)))
        if method.name == "ours":
            figures += [
                Figure("peaks_precision_heldout_families", round(total.precision, 4)),
                Figure("peaks_recall_heldout_families", round(total.recall, 4)),
                Figure("peaks_fp_on_walls_heldout_families", total.fp_wall),
                Figure("peaks_fp_beside_peak_heldout_families", total.fp_beside),
                Figure("peaks_fp_high_background_heldout_families", total.fp_high),
                Figure("peaks_fp_heldout_families", total.fp),
                Figure("walls_precision_heldout_families", round(total.wall_precision, 4)),
                Figure("walls_recall_heldout_families", round(total.wall_recall, 4)),
            ]
        else:
            figures += [
                Figure(f"peaks_precision_heldout_families{sfx}", round(total.precision, 4)),
                Figure(f"peaks_recall_heldout_families{sfx}", round(total.recall, 4)),
            ]
        for family, (setting, c) in zip(data, results, strict=True):
            figures += [
                Figure(f"peaks_f1_heldout_{family}{sfx}", round(c.f1, 4)),
                Figure(f"peaks_precision_heldout_{family}{sfx}", round(c.precision, 4)),
                Figure(f"peaks_recall_heldout_{family}{sfx}", round(c.recall, 4)),
            ]
            if method.name == "ours" and c.wall_tp + c.wall_fn:  # a family with labelled walls
                figures += [
                    Figure(f"walls_precision_heldout_{family}", round(c.wall_precision, 4)),
                    Figure(f"walls_recall_heldout_{family}", round(c.wall_recall, 4)),
                ]
            figures.append(Figure(f"peaks_params_heldout_{family}{sfx}", method.label(setting)))
        if method.name == "ours":
            call, _ = _ours_call()
            defaults = Counts()
            for family, profiles in data.items():
                fam = Counts()
                for prof in profiles:
                    out = call(prof.prices, prof.volumes)
                    fam = fam + match([p.index for p in out.peaks], prof, [w.index for w in out.walls])
                figures.append(Figure(f"peaks_f1_defaults_{family}", round(fam.f1, 4)))
                defaults = defaults + fam
            figures += [
                Figure("peaks_f1_families_defaults", round(defaults.f1, 4)),
                Figure("peaks_precision_families_defaults", round(defaults.precision, 4)),
                Figure("peaks_recall_families_defaults", round(defaults.recall, 4)),
                Figure("walls_precision_families_defaults", round(defaults.wall_precision, 4)),
                Figure("walls_recall_families_defaults", round(defaults.wall_recall, 4)),
            ]
    figures += [
        Figure("peaks_accuracy_families", len(data)),
        Figure("peaks_accuracy_profiles", sum(len(p) for p in data.values())),
        Figure("peaks_accuracy_peak_labels", sum(len(q.peaks) for p in data.values() for q in p)),
        Figure("peaks_accuracy_wall_labels", sum(len(q.walls) for p in data.values() for q in p)),
        Figure("peaks_accuracy_s", round(time.perf_counter() - t0, 1), "s"),
    ]
    return figures

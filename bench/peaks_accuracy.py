"""Group ``peaks_accuracy``: precision, recall and F1 of the peak detectors on planted peaks.

Why a generator and not recorded data: a recorded profile has no ground truth. The generator
draws profiles the way volume arises, so noise has the right shape:

* the expected number of trades per bucket is a baseline (level 5-300 trades per bucket, a
  linear trend of up to +-70 % across the range, half the time a broad hump, the usual bell of a
  volume profile, whose tails thin out to 15 % of its top) plus planted peaks: gaussian bumps of
  0.8-5 buckets, half of them skewed (right width 0.5-2x the left), a quarter of them with a
  close partner 3-5 widths away, about one peak per 180 buckets;
* the volume of a bucket is a compound Poisson draw: a Poisson number of trades with gamma sizes
  (coefficient of variation 0.6-1.5), so the noise grows with the level and thin buckets are
  often empty, as in real trade profiles;
* a peak's height is set by its significance at its top, 5-10 standard deviations of that
  bucket's noise (at least 25 % of the baseline): clear to the eye, but narrow ones on a thick
  baseline are only a few tens of percent high.

A planted peak is labelled where the noise-free profile has its local maximum (within 2 buckets
of the centre); a partner swallowed by its neighbour's flank has no maximum and no label. A
detection matches a label within ``TOL`` buckets, one to one.

Tuning is on a training split, scoring on a separate test split (different seeds): each of our
methods gets a grid over its parameters, and so does ``scipy.signal.find_peaks`` (prominence as a
fraction of the profile's range, as in domain.md §4's recipe, and also in absolute units;
``distance``; ``width``). Thresholds are swept over the candidates' scores, which is the same as
calling each detector with that threshold (the test split is scored by the real calls).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import find_peaks

from bench.report import Figure
from depthflow.peaks.detectors import (
    Peak,
    combined_peaks,
    normal_peaks,
    ratio_peaks,
    robust_peaks,
)
from depthflow.peaks.params import PeakParams

TOL = 3  # buckets: a detection this close to a planted peak finds it
TRAIN_SEED, TEST_SEED = 20240601, 20240602
N_PROFILES = 400  # per split

Profile = tuple[np.ndarray, np.ndarray]  # volumes, labelled peak indices (ascending)


# --- generator --------------------------------------------------------------------------------------


def _bump(x: np.ndarray, centre: float, left: float, right: float) -> np.ndarray:
    d = x - centre
    return np.exp(-0.5 * (d / np.where(d < 0, left, right)) ** 2)


def make_profile(rng: np.random.Generator, n: int | None = None) -> Profile:
    """One profile and its labels; ``n`` buckets (400-1200 when not given). See the module doc."""
    n = int(rng.integers(400, 1201)) if n is None else n
    x = np.arange(n, dtype=np.float64)
    level = 10 ** rng.uniform(np.log10(5), np.log10(300))
    trend = rng.uniform(-0.7, 0.7)
    lam = level * (1 + trend * (2 * x / n - 1))
    if rng.random() < 0.5:
        centre, width = rng.uniform(0.2, 0.8) * n, rng.uniform(0.12, 0.35) * n
        lam *= 0.15 + 0.85 * np.exp(-0.5 * ((x - centre) / width) ** 2)
    size_cv = rng.uniform(0.6, 1.5)
    var_factor = 1 + size_cv**2  # variance of a compound Poisson sum per unit of mean (unit sizes)
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
            z = rng.uniform(5.0, 10.0)  # significance at the top: amp / sqrt(var_factor (base + amp))
            zz = z * z * var_factor
            amp = max((zz + np.sqrt(zz * zz + 4 * zz * base)) / 2, 0.25 * base)
            signal += amp * _bump(x, cc, wl, wr)
            centres.append(cc)
            widths.append(max(wl, wr))
    labels = set()
    for c in centres:
        i0, i1 = max(round(c) - 2, 1), min(round(c) + 3, n - 1)
        j = i0 + int(np.argmax(signal[i0:i1]))
        if signal[j] >= signal[j - 1] and signal[j] >= signal[j + 1]:
            labels.add(j)
    trades = rng.poisson(signal)
    vol = np.where(trades > 0, rng.gamma(np.maximum(trades, 1) / size_cv**2, size_cv**2), 0.0)
    return vol, np.array(sorted(labels), dtype=np.int64)


def dataset(seed: int, count: int = N_PROFILES) -> list[Profile]:
    """``count`` profiles from one seed: the same seed always gives the same split."""
    rng = np.random.default_rng(seed)
    return [make_profile(rng) for _ in range(count)]


# --- scoring --------------------------------------------------------------------------------------------


def matches(pred: Sequence[int], truth: np.ndarray, tol: int = TOL) -> int:
    """Size of the largest one-to-one matching with ``|pred - truth| <= tol``.

    Each label's partners form an interval of the sorted detections, so taking labels in order and
    giving each the leftmost free detection in reach is optimal (the interval-scheduling argument).
    """
    p = sorted(pred)
    j = tp = 0
    for t in truth.tolist():
        while j < len(p) and p[j] < t - tol:
            j += 1
        if j < len(p) and p[j] <= t + tol:
            tp += 1
            j += 1
    return tp


@dataclass(frozen=True)
class Score:
    """Pooled counts over a split; F1 of the pooled precision and recall."""

    tp: int
    fp: int
    fn: int

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


def score(preds: Sequence[Sequence[int]], data: Sequence[Profile]) -> Score:
    """Pool true/false positives and misses over every profile of a split."""
    tp = fp = fn = 0
    for pred, (_, truth) in zip(preds, data, strict=True):
        m = matches(pred, truth)
        tp, fp, fn = tp + m, fp + len(pred) - m, fn + truth.size - m
    return Score(tp, fp, fn)


# --- tuning ---------------------------------------------------------------------------------------------

Candidates = list[tuple[np.ndarray, np.ndarray]]  # per profile: indices, scores


def sweep(cands: Candidates, data: Sequence[Profile], thresholds: np.ndarray) -> tuple[float, float]:
    """(best F1, its threshold) over ``thresholds``, keeping candidates with score >= threshold."""
    best = (-1.0, float(thresholds[0]))
    for th in thresholds:
        f1 = score([idx[s >= th].tolist() for idx, s in cands], data).f1
        if f1 > best[0]:
            best = (f1, float(th))
    return best


def _cands(peaks: list[Peak]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([p.index for p in peaks], dtype=np.int64),
        np.array([p.score for p in peaks], dtype=np.float64),
    )


@dataclass(frozen=True)
class Tuned:
    """A tuned detector: its training F1, its parameters (for the report) and the call itself."""

    train_f1: float
    label: str
    detect: Callable[[np.ndarray], list[int]]


def tune_grid(
    data: Sequence[Profile],
    structural: Sequence[dict[str, float]],
    candidates: Callable[[np.ndarray, dict[str, float]], tuple[np.ndarray, np.ndarray]],
    thresholds: np.ndarray,
    make: Callable[[dict[str, float], float], Callable[[np.ndarray], list[int]]],
    threshold_name: str,
) -> Tuned:
    """Grid over ``structural`` parameters x a threshold sweep; the best F1 on ``data`` wins."""
    best: Tuned | None = None
    for params in structural:
        cands = [candidates(vol, params) for vol, _ in data]
        f1, th = sweep(cands, data, thresholds)
        if best is None or f1 > best.train_f1:
            label = " ".join(f"{k}={v:g}" for k, v in {**params, threshold_name: th}.items())
            best = Tuned(f1, label, make(params, th))
    assert best is not None
    return best


def tune_normal(train: Sequence[Profile]) -> Tuned:
    """``z_min`` swept; ``order`` (local-max neighbourhood) and ``min_relative_volume`` on a grid."""
    grid = [{"order": o, "min_rel": mv} for o in (1, 2, 3, 5, 8) for mv in (0.0, 0.5, 2.0)]
    return tune_grid(
        train,
        grid,
        lambda v, p: _cands(normal_peaks(v, None, -np.inf, p["min_rel"], int(p["order"]))),
        np.linspace(0.5, 5.0, 31),
        lambda p, th: (
            lambda v: [q.index for q in normal_peaks(v, None, th, p["min_rel"], int(p["order"]))]
        ),
        "z_min",
    )


def tune_ratio(train: Sequence[Profile]) -> Tuned:
    """``ratio`` swept; ``neighbours`` and ``min_relative_volume`` on a grid."""
    grid = [{"neighbours": nb, "min_rel": mv} for nb in (1, 2, 3, 5, 8, 12) for mv in (0.0, 0.5, 2.0)]
    return tune_grid(
        train,
        grid,
        lambda v, p: _cands(ratio_peaks(v, 0.0, p["min_rel"], int(p["neighbours"]))),
        np.linspace(1.1, 5.0, 40),
        lambda p, th: lambda v: [q.index for q in ratio_peaks(v, th, p["min_rel"], int(p["neighbours"]))],
        "ratio",
    )


def tune_robust(train: Sequence[Profile]) -> Tuned:
    """Modified-z threshold swept; ``order`` and ``min_relative_volume`` on a grid."""
    grid = [{"order": o, "min_rel": mv} for o in (1, 2, 3, 5, 8) for mv in (0.0, 0.5, 2.0)]
    # robust_peaks keeps M > z_min (strict); sweeping >= on a continuous score is the same
    return tune_grid(
        train,
        grid,
        lambda v, p: _cands(robust_peaks(v, -np.inf, p["min_rel"], int(p["order"]))),
        np.linspace(1.0, 12.0, 45),
        lambda p, th: lambda v: [q.index for q in robust_peaks(v, th, p["min_rel"], int(p["order"]))],
        "robust_z",
    )


def tune_combined(train: Sequence[Profile]) -> Tuned:
    """``prominence_z`` swept; ``smooth``, ``window`` and ``min_relative_volume`` on a grid."""
    grid = [
        {"smooth": s, "window": w, "min_rel": mv}
        for s in (0.7, 1.0, 1.5)
        for w in (21, 41, 81)
        for mv in (0.0, 0.5)
    ]

    def params(p: dict[str, float], th: float) -> PeakParams:
        return replace(
            PeakParams(),
            smooth=p["smooth"],
            window=int(p["window"]),
            min_relative_volume=p["min_rel"],
            prominence_z=th,
        )

    return tune_grid(
        train,
        grid,
        lambda v, p: _cands(combined_peaks(v, None, params(p, 0.0))),
        np.linspace(1.5, 8.0, 53),
        lambda p, th: lambda v: [q.index for q in combined_peaks(v, None, params(p, th))],
        "prominence_z",
    )


def tune_scipy(train: Sequence[Profile]) -> Tuned:
    """``find_peaks`` prominence swept (relative to the range, or absolute); distance, width on a grid."""
    best: Tuned | None = None
    for relative in (True, False):
        for distance in (1, 3, 5):
            for width in (0.0, 1.0, 2.0):
                kw: dict[str, float] = {"distance": distance, "prominence": 0.0}
                if width:
                    kw["width"] = width
                cands = []
                for vol, _ in train:
                    idx, props = find_peaks(vol, **kw)
                    prom = props["prominences"]
                    span = float(vol.max() - vol.min()) or 1.0
                    cands.append((idx.astype(np.int64), prom / span if relative else prom))
                grid = np.geomspace(0.01, 0.6, 40) if relative else np.geomspace(1.0, 3000.0, 60)
                f1, th = sweep(cands, train, grid)
                if best is None or f1 > best.train_f1:

                    def det(
                        v: np.ndarray, th: float = th, rel: bool = relative, kw: dict[str, float] = kw
                    ) -> list[int]:
                        span = float(v.max() - v.min()) or 1.0
                        return find_peaks(v, **{**kw, "prominence": th * span if rel else th})[0].tolist()

                    form = "prominence_of_range" if relative else "prominence"
                    label = f"{form}={th:.4g} distance={distance} width={width:g}"
                    best = Tuned(f1, label, det)
    assert best is not None
    return best


def vote(
    detectors: Sequence[Callable[[np.ndarray], list[int]]], tol: int
) -> Callable[[np.ndarray], list[int]]:
    """Two-of-three: a detection stands when detections of another method lie within ``tol``.

    Agreeing detections are merged to the position of the highest-volume one among them.
    """

    def det(v: np.ndarray) -> list[int]:
        found = [(i, m) for m, d in enumerate(detectors) for i in d(v)]
        found.sort()
        out: list[int] = []
        k = 0
        while k < len(found):
            j = k
            while j + 1 < len(found) and found[j + 1][0] - found[j][0] <= tol:
                j += 1
            group = found[k : j + 1]
            if len({m for _, m in group}) >= 2:
                out.append(max((i for i, _ in group), key=lambda i: v[i]))
            k = j + 1
        return out

    return det


def run() -> list[Figure]:
    """Tune every detector on the training split; report test-split precision, recall and F1."""
    t0 = time.perf_counter()
    train, test = dataset(TRAIN_SEED), dataset(TEST_SEED)
    tuned_combined = tune_combined(train)
    tuned = {
        "normal": tune_normal(train),
        "ratio": tune_ratio(train),
        "robust": tune_robust(train),
        "combined": tuned_combined,
        "scipy": tune_scipy(train),
    }
    methods = [tuned[m].detect for m in ("normal", "ratio", "robust")]
    best_vote: Tuned | None = None
    for tol in (1, 2, 3):
        det = vote(methods, tol)
        f1 = score([det(v) for v, _ in train], train).f1
        if best_vote is None or f1 > best_vote.train_f1:
            best_vote = Tuned(f1, f"tolerance={tol}", det)
    assert best_vote is not None
    tuned["vote"] = best_vote

    figures: list[Figure] = []
    for name, t in tuned.items():
        s = score([t.detect(v) for v, _ in test], test)
        figures += [
            Figure(f"peaks_f1_{name}", round(s.f1, 4)),
            Figure(f"peaks_precision_{name}", round(s.precision, 4)),
            Figure(f"peaks_recall_{name}", round(s.recall, 4)),
            Figure(f"peaks_train_f1_{name}", round(t.train_f1, 4)),
            Figure(f"peaks_params_{name}", t.label),
        ]
    defaults = score([[q.index for q in combined_peaks(v)] for v, _ in test], test)
    figures.append(Figure("peaks_f1_combined_defaults", round(defaults.f1, 4)))
    labels = sum(truth.size for _, truth in test)
    figures += [
        Figure("peaks_accuracy_test_profiles", len(test)),
        Figure("peaks_accuracy_test_labels", labels),
        Figure("peaks_accuracy_tolerance_buckets", TOL),
        Figure("peaks_accuracy_s", round(time.perf_counter() - t0, 1), "s"),
    ]
    return figures

"""Group ``peaks``: cost of the peak detectors over 3000 buckets and of a full ``analyse``.

Why these inputs: the 3000-bucket profile is drawn by the accuracy benchmark's generator
(compound Poisson trade counts, trending baseline, planted peaks), so the number of local maxima
and of peaks, which drive the cost, is what a real trade profile gives. The book for
``zones_analyse_us`` mimics a Binance BTC snapshot at 5000 levels a side (tick 0.01, lognormal
sizes, walls on round prices) spread over ~$500 a side, bucketed to 1.0 as the aggregator
would (~500 buckets a side), plus a 3000-bucket trade profile around the mid.

Why a yardstick: the issue's anchor (performance-anchors.md B2 e3) is a numba weighted z-score
peak finder measured at 9.9 us on a quiet machine of this kind. ``peaks_anchor_3000_us`` runs the
same algorithm interleaved with ours, so a figure taken on a busy machine can be read against it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bench.peaks_accuracy import make_profile
from bench.report import Figure
from bench.timing import Case, measure, measure_interleaved
from depthflow.aggregator.bucketing import bucket_side
from depthflow.peaks.detectors import combined_peaks, normal_peaks, ratio_peaks, robust_peaks
from depthflow.peaks.zones import analyse

N = 3000
MID = 60000.0
LEVELS = 5000
SPAN = 500.0  # dollars each side of the mid
TICK = 0.01
BUCKET = 1.0


@njit(cache=True)
def anchor_zscore(v: np.ndarray, w: np.ndarray, z_min: float) -> np.ndarray:
    """The anchor's algorithm: weighted mean/std, z = (v - mu) / sigma, local maxima with z > z_min."""
    sw = 0.0
    swv = 0.0
    for i in range(v.size):
        sw += w[i]
        swv += w[i] * v[i]
    mu = swv / sw
    ss = 0.0
    for i in range(v.size):
        ss += w[i] * (v[i] - mu) ** 2
    sd = np.sqrt(ss / sw)
    out = np.empty(v.size, dtype=np.int64)
    k = 0
    for i in range(1, v.size - 1):
        if v[i] > v[i - 1] and v[i] >= v[i + 1] and (v[i] - mu) / sd > z_min:
            out[k] = i
            k += 1
    return out[:k]


def profile(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A 3000-bucket trade profile and weights decaying with distance from its middle (the mid)."""
    vol, _ = make_profile(np.random.default_rng(seed), n=N)
    weights = np.exp(-np.abs(np.arange(N) - N / 2) / (0.005 * MID / BUCKET))
    return vol, weights


def book_side(rng: np.random.Generator, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """One side: 5000 distinct ticks within SPAN of the mid, lognormal sizes, walls on round $10s."""
    best = MID - TICK if sign < 0 else MID
    ticks = np.sort(rng.choice(np.arange(1, int(SPAN / TICK)), size=LEVELS - 1, replace=False))
    px = np.round((best + sign * np.concatenate(([0], ticks)) * TICK) / TICK) * TICK
    qty = rng.lognormal(-1.5, 1.0, size=LEVELS)
    round_price = np.isclose(px % 10.0, 0.0, atol=TICK / 2)
    qty[round_price] *= rng.uniform(5, 40, size=int(round_price.sum()))
    return px, qty


def run() -> list[Figure]:
    """Time each detector on the 3000-bucket profile, the anchor kernel, and ``analyse``."""
    vol, weights = profile()
    rng = np.random.default_rng(11)
    bids = bucket_side(*book_side(rng, -1), BUCKET)
    asks = bucket_side(*book_side(rng, +1), BUCKET)
    tpx = (np.floor(MID / BUCKET) - N // 2 + np.arange(N)) * BUCKET
    low, high = float(bids.px[0]), float(asks.px[-1] + BUCKET)

    def full() -> object:
        return analyse(bids.px, bids.qty, asks.px, asks.qty, BUCKET, MID, low, high, tpx, vol)

    anchor_zscore(vol, weights, 2.0)
    # the 3000-bucket calls interleave with each other only: a 0.5 ms analyse between samples
    # would flush the caches they run in and charge every one of them a cold start
    stats = measure_interleaved(
        {
            "combined": Case(lambda: combined_peaks(vol), 20),
            "normal": Case(lambda: normal_peaks(vol, weights), 20),
            "ratio": Case(lambda: ratio_peaks(vol), 20),
            "robust": Case(lambda: robust_peaks(vol), 20),
            "anchor": Case(lambda: anchor_zscore(vol, weights, 2.0), 20),
        },
        repeat=400,
        budget_s=8.0,
    )
    stats["analyse"] = measure(full, number=2, repeat=400, budget_s=4.0)
    out = full()
    return [
        Figure.timing("peaks_3000_us", stats["combined"]),
        Figure.timing("peaks_normal_3000_us", stats["normal"]),
        Figure.timing("peaks_ratio_3000_us", stats["ratio"]),
        Figure.timing("peaks_robust_3000_us", stats["robust"]),
        Figure.timing("peaks_anchor_3000_us", stats["anchor"]),
        Figure(
            "peaks_3000_vs_anchor", round(stats["combined"].median_us / stats["anchor"].median_us, 2), "x"
        ),
        Figure("peaks_3000_found", len(combined_peaks(vol))),
        Figure("peaks_normal_3000_found", len(normal_peaks(vol, weights))),
        Figure.timing("zones_analyse_us", stats["analyse"]),
        Figure("zones_book_buckets_per_side", round((bids.px.size + asks.px.size) / 2, 1)),
        Figure("zones_found", f"{len(out.support)} support, {len(out.resistance)} resistance"),  # type: ignore[attr-defined]
    ]

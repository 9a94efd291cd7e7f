"""Group ``peaks``: cost of ``find_wave_peaks`` over 3000 buckets and of a full ``analyse``.

Why these inputs: the 3000-bucket profile is drawn by the accuracy benchmark's compound Poisson
family (``bench.peak_families``: trending baseline, planted peaks, gamma trade sizes), so the
number of local maxima and of peaks, which drive the cost, is what a real trade profile gives. The book for
``zones_analyse_us`` mimics a Binance BTC snapshot at 5000 levels a side (tick 0.01, lognormal
sizes, walls on round prices) spread over ~$500 a side, bucketed to 1.0 as the aggregator
would (~500 buckets a side), plus a 3000-bucket trade profile around the mid.

Why a yardstick: the issue's anchor (performance-anchors.md B2 e3) is a numba weighted z-score
peak finder measured at 9.9 us on a quiet machine of this kind. ``peaks_anchor_3000_us`` runs the
same algorithm interleaved with ours, so a figure taken on a busy machine can be read against it.

What is timed: ``peaks_3000_us`` is the public call, ``find_wave_peaks(prices, volumes)`` (input
checks, waves and walls, the result; its items are built on first access, which
``peaks_items_3000_us`` adds); ``peaks_kernel_3000_us`` the kernel alone, and
``peaks_no_walls_3000_us`` with walls off (``wall_z`` huge): what telling walls apart costs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bench.peak_families import make_compound_poisson
from bench.report import Figure
from bench.timing import Case, measure, measure_interleaved
from depthflow.aggregator.bucketing import bucket_side
from depthflow.peaks import PeakParams, find_wave_peaks
from depthflow.peaks.detectors import detect_arrays
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
    vol = make_compound_poisson(np.random.default_rng(seed), n=N)[0]
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
    """Time ``find_wave_peaks`` on the 3000-bucket profile, the anchor kernel, and ``analyse``."""
    vol, weights = profile()
    prices = MID - N // 2 + np.arange(N) * BUCKET
    rng = np.random.default_rng(11)
    bids = bucket_side(*book_side(rng, -1), BUCKET)
    asks = bucket_side(*book_side(rng, +1), BUCKET)
    tpx = (np.floor(MID / BUCKET) - N // 2 + np.arange(N)) * BUCKET
    low, high = float(bids.px[0]), float(asks.px[-1] + BUCKET)
    kp = PeakParams().kernel
    kp1 = PeakParams(wall_z=1e300).kernel

    def full() -> object:
        return analyse(bids.px, bids.qty, asks.px, asks.qty, BUCKET, MID, low, high, tpx, vol)

    def items() -> object:
        found = find_wave_peaks(prices, vol)
        return list(found.peaks), list(found.walls)

    anchor_zscore(vol, weights, 2.0)
    # the 3000-bucket calls interleave with each other only: a 0.5 ms analyse between samples
    # would flush the caches they run in and charge every one of them a cold start
    stats = measure_interleaved(
        {
            "find": Case(lambda: find_wave_peaks(prices, vol), 20),
            "items": Case(items, 20),
            "kernel": Case(lambda: detect_arrays(vol, kp), 20),
            "no_walls": Case(lambda: detect_arrays(vol, kp1), 20),
            "anchor": Case(lambda: anchor_zscore(vol, weights, 2.0), 20),
        },
        repeat=400,
        budget_s=8.0,
    )
    stats["analyse"] = measure(full, number=2, repeat=400, budget_s=4.0)
    out = full()
    found = find_wave_peaks(prices, vol)
    return [
        Figure.timing("peaks_3000_us", stats["find"]),
        Figure.timing("peaks_items_3000_us", stats["items"]),
        Figure.timing("peaks_kernel_3000_us", stats["kernel"]),
        Figure.timing("peaks_no_walls_3000_us", stats["no_walls"]),
        Figure.timing("peaks_anchor_3000_us", stats["anchor"]),
        Figure("peaks_3000_vs_anchor", round(stats["find"].median_us / stats["anchor"].median_us, 2), "x"),
        Figure("peaks_3000_found", f"{len(found.peaks)} peaks, {len(found.walls)} walls"),
        Figure.timing("zones_analyse_us", stats["analyse"]),
        Figure("zones_book_buckets_per_side", round((bids.px.size + asks.px.size) / 2, 1)),
        Figure("zones_found", f"{len(out.support)} support, {len(out.resistance)} resistance"),  # type: ignore[attr-defined]
    ]

"""Group ``aggregator``: price bucketing of a 5000-level book side vs the legacy Decimal design.

Why this book: it mimics a Binance BTC snapshot (mid ~60000, tick 0.01, 5000 sparse levels per
side within ±0.4 % of the mid, asks ascending, bids descending), so the number of 1-unit buckets
(~240 per side) and the run lengths ``reduceat`` sees are realistic. Both implementations read
the same strings: ours after they are parsed into float64 arrays (as the collector publishes
them), the baseline from the strings themselves (as the legacy service did). The speed-up is
therefore of the design, parse included on one side only; ``agg_parse_5000_us`` shows how much
of the gap the one-off string parse would take back.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from bench.reference_aggregation import aggregate_decimal
from bench.report import Figure
from bench.timing import Case, measure_interleaved
from depthflow.aggregator.bucketing import Buckets, bucket_side

LEVELS = 5000
MID = 60000.0
TICK = 0.01
SPAN = 0.004
BUCKET = 1.0  # the aggregator's default bucket_size, and what Decimal(int(price)) implies
REL_TOL = 1e-9

Levels = list[tuple[str, str]]


def book_side(rng: np.random.Generator, sign: int, levels: int = LEVELS) -> Levels:
    """One side as Binance strings: ``sign`` -1 for bids (descending), +1 for asks (ascending)."""
    best = MID - TICK if sign < 0 else MID
    span_ticks = int(SPAN * MID / TICK)
    offs = np.sort(rng.choice(np.arange(1, span_ticks), size=levels - 1, replace=False))
    offs = np.concatenate(([0], offs))
    px = np.round((best + sign * offs * TICK) / TICK) * TICK
    qty = np.round(rng.lognormal(-1.5, 1.0, size=levels), 5) + 0.00001
    return [(f"{p:.8f}", f"{q:.8f}") for p, q in zip(px, qty, strict=True)]


def parse(levels: Levels) -> tuple[np.ndarray, np.ndarray]:
    """Strings → float64 arrays, the form the collector publishes."""
    px = np.array([p for p, _ in levels], dtype=np.float64)
    qty = np.array([q for _, q in levels], dtype=np.float64)
    return px, qty


def mismatches(ours: Buckets, ref: dict[Decimal, Decimal]) -> list[str]:
    """Where the two disagree: a bucket present in only one, or a total off by > ``REL_TOL``."""
    got = {int(k): float(q) for k, q in zip(ours.px, ours.qty, strict=True)}
    want = {int(k): float(q) for k, q in ref.items()}
    problems = [f"bucket {k} only in one result" for k in sorted(got.keys() ^ want.keys())]
    for k in sorted(got.keys() & want.keys()):
        if abs(got[k] - want[k]) > REL_TOL * abs(want[k]):
            problems.append(f"bucket {k}: {got[k]!r} != {want[k]!r}")
    return problems


def run() -> list[Figure]:
    """Time both implementations on both sides; check they agree; report per-side medians."""
    rng = np.random.default_rng(20240601)
    sides = [book_side(rng, -1), book_side(rng, +1)]
    arrays = [parse(s) for s in sides]

    problems: list[str] = []
    for name, levels, (px, qty) in zip(("bids", "asks"), sides, arrays, strict=True):
        found = mismatches(bucket_side(px, qty, BUCKET), aggregate_decimal(levels))
        problems += [f"{name}: {p}" for p in found]
    if problems:
        print(f"WARNING: aggregator: bucket totals differ from the Decimal reference ({len(problems)}):")
        for p in problems[:10]:
            print(f"  {p}")
    n_buckets = sum(bucket_side(px, qty, BUCKET).px.size for px, qty in arrays) / 2

    (bpx, bqty), (apx, aqty) = arrays
    # each sample does both sides (per-side figure = half): covers descending and ascending input.
    # 20 calls per sample for ours: interleaving runs it right after the Decimal code has flushed
    # the caches, and the one cold call must be amortised or it inflates the median by ~50 %
    stats = measure_interleaved(
        {
            "ours": Case(lambda: (bucket_side(bpx, bqty, BUCKET), bucket_side(apx, aqty, BUCKET)), 20),
            "decimal": Case(lambda: (aggregate_decimal(sides[0]), aggregate_decimal(sides[1]))),
            "parse": Case(lambda: (parse(sides[0]), parse(sides[1]))),
        },
        repeat=500,
        budget_s=12.0,
    )
    ours_us, ref_us, parse_us = (stats[k].median_us / 2 for k in ("ours", "decimal", "parse"))
    return [
        Figure.timing("agg_5000_us", stats["ours"], per=2),
        Figure.timing("agg_decimal_5000_us", stats["decimal"], per=2),
        Figure("agg_speedup_vs_decimal", round(ref_us / ours_us, 1), "x"),
        Figure.timing("agg_parse_5000_us", stats["parse"], per=2),
        Figure("agg_speedup_vs_decimal_incl_parse", round(ref_us / (ours_us + parse_us), 1), "x"),
        Figure("agg_buckets_per_side", round(n_buckets, 1), ""),
        Figure("agg_matches_reference", "no" if problems else "yes", ""),
    ]

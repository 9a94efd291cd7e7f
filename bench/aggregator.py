"""Group ``aggregator``: price bucketing of a 5000-level book side vs the legacy Decimal design.

Why this book: it mimics a Binance BTC snapshot (mid ~60000, tick 0.01, 5000 sparse levels per
side within ±0.4 % of the mid, asks ascending, bids descending), so the number of 1-unit buckets
(~240 per side) and the run lengths the kernel sees are realistic. Every figure is per side,
from samples that bucket both sides (so both the ascending and the descending path count).

What is compared, all in one interleaved run (ratios are only meaningful within one run):

- ``agg_5000_us``: ``bucket_side`` (the numba kernel) on float64 arrays, as handlers call it.
- ``agg_decimal_5000_us``: the legacy design on the wire strings (``bench.reference_aggregation``).
  ``agg_speedup_vs_decimal`` is the ratio of the two: the speed-up of the design, with the
  string parse on the baseline's side only.
- ``agg_parse_5000_us``: parsing the strings into the float64 arrays; the honest end-to-end
  ratio, ``agg_speedup_vs_decimal_incl_parse``, charges it to our side too (in production the
  collector parses once per message for all consumers, so the first ratio is the one that
  applies to the aggregator).
- ``agg_numpy_5000_us``: the previous numpy ``floor`` + ``np.add.reduceat`` implementation,
  kept below verbatim, for the kernel's own gain (``agg_speedup_vs_numpy``).
- ``agg_1k_us`` ... ``agg_100k_us`` and ``agg_ns_per_level_*``: the same kernel on books of the
  same density (~21 levels per 1-unit bucket) over a range proportional to their size, to show the
  cost grows linearly (ns per level flat) rather than with the number of buckets or a sort.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from bench.reference_aggregation import aggregate_decimal
from bench.report import Figure
from bench.timing import Case, Stats, measure_interleaved
from depthflow.aggregator.bucketing import Buckets, bucket_side

LEVELS = 5000
MID = 60000.0
TICK = 0.01
SPAN = 0.004
BUCKET = 1.0  # the aggregator's default bucket_size, and what Decimal(int(price)) implies
REL_TOL = 1e-9
SCALING = (1_000, 10_000, 100_000)  # the linear-growth table (plus LEVELS itself)

Levels = list[tuple[str, str]]


def book_side(rng: np.random.Generator, sign: int, levels: int = LEVELS) -> Levels:
    """One side as Binance strings: ``sign`` -1 for bids (descending), +1 for asks (ascending).

    The price range is proportional to ``levels`` (±0.4 % of the mid at 5000), so the density of
    occupied ticks, and so the levels per bucket (~21), is that of a real 5000-level snapshot.
    """
    best = MID - TICK if sign < 0 else MID
    span_ticks = int(SPAN * MID / TICK * levels / LEVELS)
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


def numpy_reduceat(px: np.ndarray, qty: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """The previous implementation (numpy, before the numba kernel), kept as a yardstick.

    Its edge rule (round to 9 decimals of a bucket) is absolute and so misplaces on-edge prices
    at large ``price / size``; at ``size`` 1.0 and BTC prices it agrees with the kernel.
    """
    if px.size == 0:
        return np.empty(0), np.empty(0)
    keys = np.floor(np.round(px / size, 9)).astype(np.int64)
    steps = np.diff(keys)
    if (steps < 0).any():
        if (steps > 0).any():
            order = np.argsort(keys, kind="stable")
            keys, qty = keys[order], qty[order]
        else:  # descending (bids): reverse to ascending
            keys, qty = keys[::-1], qty[::-1]
    starts = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
    return keys[starts].astype(np.float64) * size, np.add.reduceat(qty, starts)


def mismatches(ours: Buckets, ref: dict[Decimal, Decimal]) -> list[str]:
    """Where the two disagree: a bucket present in only one, or a total off by > ``REL_TOL``."""
    got = {int(k): float(q) for k, q in zip(ours.px, ours.qty, strict=True)}
    want = {int(k): float(q) for k, q in ref.items()}
    problems = [f"bucket {k} only in one result" for k in sorted(got.keys() ^ want.keys())]
    for k in sorted(got.keys() & want.keys()):
        if abs(got[k] - want[k]) > REL_TOL * abs(want[k]):
            problems.append(f"bucket {k}: {got[k]!r} != {want[k]!r}")
    if abs(ours.volume_out - ours.volume_in) > REL_TOL * ours.volume_in:
        problems.append(f"volume not conserved: {ours.volume_in!r} in, {ours.volume_out!r} out")
    return problems


def check(sides: list[Levels], arrays: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Our buckets vs the exact Decimal reference, and the numpy yardstick vs ours, both sides."""
    problems: list[str] = []
    for name, levels, (px, qty) in zip(("bids", "asks"), sides, arrays, strict=True):
        ours = bucket_side(px, qty, BUCKET)
        problems += [f"{name}: {p}" for p in mismatches(ours, aggregate_decimal(levels))]
        npx, nqty = numpy_reduceat(px, qty, BUCKET)
        if not (np.array_equal(npx, ours.px) and np.allclose(nqty, ours.qty, rtol=REL_TOL)):
            problems.append(f"{name}: the numpy yardstick disagrees with the kernel")
    return problems


def scaling(
    rng: np.random.Generator, at_5000: Stats, book_5000: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[Figure], list[str]]:
    """Time the kernel on 1k, 10k and 100k levels per side; figures plus the table's lines."""
    books = {n: [parse(book_side(rng, s, n)) for s in (-1, +1)] for n in SCALING}

    def both(n: int) -> Case:
        (bpx, bqty), (apx, aqty) = books[n]
        calls = max(1, 200_000 // n)  # ~amortise the clock and the cold first call, as above
        return Case(lambda: (bucket_side(bpx, bqty, BUCKET), bucket_side(apx, aqty, BUCKET)), calls)

    stats = measure_interleaved({str(n): both(n) for n in SCALING}, repeat=500, budget_s=6.0)
    stats[str(LEVELS)] = at_5000
    books[LEVELS] = book_5000
    rows = sorted(stats.items(), key=lambda kv: int(kv[0]))
    figures: list[Figure] = []
    lines = [f"  {'levels/side':>11}  {'us/side':>9}  {'ns/level':>8}  {'buckets':>7}"]
    for key, st in rows:
        n = int(key)
        per_side = st.median_us / 2
        ns = per_side * 1000 / n
        n_buckets = bucket_side(*books[n][1], BUCKET).levels_out
        lines.append(f"  {n:>11,}  {per_side:>9.2f}  {ns:>8.2f}  {n_buckets:>7}")
        if n != LEVELS:
            label = f"{n // 1000}k"
            figures.append(Figure.timing(f"agg_{label}_us", st, per=2))
            figures.append(Figure(f"agg_ns_per_level_{label}", round(ns, 3), "ns"))
    return figures, lines


def run() -> list[Figure]:
    """Time the kernel, the Decimal baseline, the parse and the numpy yardstick; then scaling."""
    rng = np.random.default_rng(20240601)
    sides = [book_side(rng, -1), book_side(rng, +1)]
    arrays = [parse(s) for s in sides]

    problems = check(sides, arrays)
    if problems:
        print(f"WARNING: aggregator: bucket totals differ from the Decimal reference ({len(problems)}):")
        for p in problems[:10]:
            print(f"  {p}")
    n_buckets = sum(bucket_side(px, qty, BUCKET).levels_out for px, qty in arrays) / 2

    (bpx, bqty), (apx, aqty) = arrays
    # each sample does both sides (per-side figure = half): covers descending and ascending input.
    # 20 calls per sample for ours: interleaving runs it right after the Decimal code has flushed
    # the caches, and the one cold call must be amortised or it inflates the median by ~50 %
    stats = measure_interleaved(
        {
            "ours": Case(lambda: (bucket_side(bpx, bqty, BUCKET), bucket_side(apx, aqty, BUCKET)), 20),
            "numpy": Case(lambda: (numpy_reduceat(bpx, bqty, BUCKET), numpy_reduceat(apx, aqty, BUCKET)), 20),
            "decimal": Case(lambda: (aggregate_decimal(sides[0]), aggregate_decimal(sides[1]))),
            "parse": Case(lambda: (parse(sides[0]), parse(sides[1]))),
        },
        repeat=500,
        budget_s=12.0,
    )
    ours_us, np_us, ref_us, parse_us = (stats[k].median_us / 2 for k in ("ours", "numpy", "decimal", "parse"))
    table, lines = scaling(rng, stats["ours"], arrays)
    print("\n  aggregator: cost per side vs book size (same density; linear growth = flat ns/level)")
    print("\n".join(lines))
    return [
        Figure.timing("agg_5000_us", stats["ours"], per=2),
        Figure.timing("agg_decimal_5000_us", stats["decimal"], per=2),
        Figure("agg_speedup_vs_decimal", round(ref_us / ours_us, 1), "x"),
        Figure.timing("agg_parse_5000_us", stats["parse"], per=2),
        Figure("agg_speedup_vs_decimal_incl_parse", round(ref_us / (ours_us + parse_us), 1), "x"),
        Figure.timing("agg_numpy_5000_us", stats["numpy"], per=2),
        Figure("agg_speedup_vs_numpy", round(np_us / ours_us, 1), "x"),
        Figure("agg_ns_per_level_5k", round(ours_us * 1000 / LEVELS, 3), "ns"),
        *table,
        Figure("agg_buckets_per_side", round(n_buckets, 1), ""),
        Figure("agg_matches_reference", "no" if problems else "yes", ""),
    ]

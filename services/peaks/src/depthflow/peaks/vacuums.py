"""Liquidity vacuums: bands of a book where little rests, inside the snapshot's known range only.

Pure functions; no I/O. Definition (``docs/reference/domain.md`` §4): a run of at least
``min_run`` buckets with resting depth ``<= alpha x median``, the median taken over every bucket
of the known range, empty ones included. Widths here are in buckets; the caller
(:func:`depthflow.peaks.zones.analyse`) turns its price-relative minimum width into them. Which
bucket a price is in, and where a bucket starts, is ``depthflow.common.pricing``'s rule.
"""

from __future__ import annotations

import math

import numpy as np

from depthflow.common.pricing import MAX_INDEX, per_unit, scaled_index
from depthflow.peaks.jit import kernel
from depthflow.peaks.kernels import as_f64

__all__ = ["vacuum_bands", "vacuums"]


@kernel
def _vacuum_runs(keys: np.ndarray, v: np.ndarray, k0: int, k1: int, cut: float, min_run: int) -> np.ndarray:
    """(first, last) bucket keys of runs of >= ``min_run`` buckets with volume <= ``cut`` in
    ``k0..k1``; ``keys`` ascending and unique, and a key missing in between is a zero (low)."""
    out = np.empty((keys.size + 1, 2), dtype=np.int64)
    m = 0
    start = -1
    open_run = False
    nxt = k0  # first bucket not yet examined
    for t in range(keys.size):
        k = keys[t]
        if k > nxt and not open_run:
            start, open_run = nxt, True
        if v[t] <= cut:
            if not open_run:
                start, open_run = k, True
        else:
            if open_run and k - start >= min_run:
                out[m, 0] = start
                out[m, 1] = k - 1
                m += 1
            open_run = False
        nxt = k + 1
    if nxt <= k1 and not open_run:
        start, open_run = nxt, True
    if open_run and k1 + 1 - start >= min_run:
        out[m, 0] = start
        out[m, 1] = k1
        m += 1
    return out[:m]


@kernel
def _insertion_order(keys: np.ndarray, budget: int) -> tuple[np.ndarray, bool]:
    """The stable ascending order of ``keys`` by insertion, or ``False`` once it has moved
    elements more than ``budget`` places in all (the input is then far from sorted)."""
    n = keys.size
    order = np.arange(n)
    for i in range(1, n):
        x = order[i]
        j = i
        while j > 0 and keys[order[j - 1]] > keys[x]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = x
        budget -= i - j
        if budget < 0:
            return order, False
    return order, True


@kernel
def _sum_per_key(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending unique keys with the values of each key summed in input order.

    Why an insertion sort first: the usual input is a book's bids then its asks, two ascending
    runs that share at most the bucket holding the mid, which it sorts in one pass; numba's
    general sorts cost ~10x more on that. It gives way to a merge sort (stable too) once it has
    moved elements more than a few places per key, so any order costs O(n log n), not n^2.
    """
    n = keys.size
    order, done = _insertion_order(keys, 8 * n)
    if not done:
        order = np.argsort(keys, kind="mergesort")
    uk = np.empty(n, dtype=np.int64)
    uv = np.empty(n, dtype=np.float64)
    u = 0
    for t in range(n):
        j = order[t]
        if u > 0 and uk[u - 1] == keys[j]:
            uv[u - 1] += vals[j]
        else:
            uk[u] = keys[j]
            uv[u] = vals[j]
            u += 1
    return uk[:u], uv[:u]


@kernel
def _median_with_zeros(vals: np.ndarray, zeros: int) -> float:
    """The median of ``vals`` (all >= 0) together with ``zeros`` extra zeros.

    One selection (O(n)) rather than a sort: numba's sort costs ~60 ns per element and log. For
    an even count, the lower middle is the largest of what the selection put below the upper."""
    total = vals.size + zeros
    hi = total // 2 - zeros  # the upper middle's rank among vals
    if hi < 0:
        return 0.0
    part = np.partition(vals, hi)
    upper = part[hi]
    if total % 2:
        return upper
    lower = part[:hi].max() if hi > 0 else 0.0
    return 0.5 * (lower + upper)


@kernel
def _edge(k: float, size: float, per: float) -> float:
    """Lower edge of bucket ``k``, as ``pricing.bucket_edges`` computes it (``per``: its
    ``per_unit(size)``)."""
    return k / per if per else k * size


@kernel
def vacuum_bands(px, vol, size, known_low, known_high, alpha, min_run):
    """The kernel of :func:`vacuums`: bands as an ``(n, 2)`` array; see there."""
    none = np.empty((0, 2), dtype=np.float64)
    if not (size > 0 and math.isfinite(known_low) and math.isfinite(known_high)) or known_high <= known_low:
        return none
    inv = 1.0 / size
    per = per_unit(size)
    k0f = scaled_index(known_low, inv)  # the bucket holding known_low: inside only from its edge
    if _edge(k0f, size, per) < known_low:
        k0f += 1.0
    k1f = scaled_index(known_high, inv) - 1.0  # the last bucket whose upper edge <= known_high
    if not (abs(k0f) < MAX_INDEX and abs(k1f) < MAX_INDEX):  # past the edge rule's range
        return none
    k0 = np.int64(k0f)
    k1 = np.int64(k1f)
    total = k1 - k0 + 1
    if total < max(min_run, 1):
        return none
    keys = np.empty(px.size, dtype=np.int64)
    vals = np.empty(px.size, dtype=np.float64)
    m = 0
    ordered = True
    for i in range(px.size):
        p = px[i]
        if not math.isfinite(p):
            continue
        k = scaled_index(p, inv)
        if not k0f <= k <= k1f:
            continue
        q = vol[i]
        keys[m] = np.int64(k)
        vals[m] = q if math.isfinite(q) and q > 0.0 else 0.0
        ordered = ordered and (m == 0 or keys[m] > keys[m - 1])
        m += 1
    keys, vals = keys[:m], vals[:m]
    if not ordered:  # unsorted or repeated keys: sum per key, in input order within a key
        keys, vals = _sum_per_key(keys, vals)
    # median over `total` buckets: the present values plus (total - present) zeros
    median = _median_with_zeros(vals, int(total - keys.size))
    runs = _vacuum_runs(keys, vals, int(k0), int(k1), alpha * median, max(min_run, 1))
    out = np.empty((runs.shape[0], 2), dtype=np.float64)
    for j in range(runs.shape[0]):
        out[j, 0] = max(_edge(runs[j, 0], size, per), known_low)
        out[j, 1] = min(_edge(runs[j, 1] + 1, size, per), known_high)
    return out


def vacuums(
    px: np.ndarray,
    vol: np.ndarray,
    size: float,
    known_low: float,
    known_high: float,
    alpha: float = 0.2,
    min_run: int = 3,
) -> list[tuple[float, float]]:
    """Price bands ``(low, high)`` of >= ``min_run`` consecutive buckets with ``v <= alpha * median``.

    Only buckets lying wholly inside ``[known_low, known_high]`` (the snapshot's coverage) are
    considered, and bands are clipped to it: beyond the snapshot the book is unknown, not empty.
    ``px``/``vol`` may be sparse (only non-empty buckets) and in any order: a bucket missing inside
    the range is a zero, as is a bad volume (NaN, inf, negative); a non-finite price is skipped.
    The median is over every bucket of the range, zeros included, computed without building the
    dense grid, so a huge range costs no memory.
    """
    bands = vacuum_bands(as_f64(px), as_f64(vol), float(size), float(known_low), float(known_high),
                         float(alpha), int(min_run))
    return [(a, b) for a, b in bands.tolist()]


def _warm() -> None:
    """Compile (or load from cache) the kernels now, with the argument types used later."""
    v = np.array([1.0, 3.0, 9.0, 3.0, 1.0, 0.0, 2.0, 8.0, 2.0, 1.0])
    vacuums(np.arange(v.size, dtype=np.float64), v, 1.0, 0.0, float(v.size))


_warm()

"""Price bucketing of book levels: the aggregator's pure core.

Bucket ``k`` holds every level whose price lies in ``[k * size, (k + 1) * size)`` and is labelled
by its lower edge ``k * size`` (``pricing.bucket_edges``). Every input level is counted exactly once,
in the bucket of its price, so the output conserves volume up to float rounding of the sums.

Why a numba kernel over the sorted levels: Binance books arrive sorted (bids descending, asks
ascending), so the bucket index is monotone along the array and a run-length pass that starts a
new bucket whenever the index changes does the whole job: no sort, no Python object per level.
Unsorted input (never seen from Binance, but legal) is sorted by price first and takes the same
path. The kernel makes two passes over the levels:

1. ``_scan`` (vectorised by LLVM) computes every level's bucket index and one boolean: every
   quantity valid, and the prices sorted in the direction their two ends give. Sorted prices need
   no per-level test: the lowest is positive and the highest has an index below ``MAX_INDEX`` iff
   all have, and a NaN fails the order test.
2. ``_runs`` sums the runs in four streams that start at bucket starts near the quarters of the
   book and advance in lockstep. Why: a bucket's sum is a chain of dependent additions (4 cycles
   each), so a single run-length walk waits on it at every level; four independent chains overlap.
   Each bucket is still summed by one stream, level by level in ascending price order (descending
   input is walked backwards), so the ascending and the descending ordering of the same levels give
   bit-identical output.

Python's part is one call. The kernel and its two passes have explicit signatures, compiled (or
loaded from the on-disk cache) at import, so no message ever pays the JIT, and any other argument
type fails the call at once with ``TypeError``, after which ``bucket_side`` converts the arguments
and retries. Errors are detected in the kernel and explained in Python (``_problem``).

Which bucket a price falls in is the edge rule of ``depthflow.common.pricing`` (shared with
peaks): the kernel applies its scalar form ``scaled_index`` (inlined), which agrees bit for bit
with the numpy ``bucket_index``, and labels buckets with ``bucket_edges``'s decimal edges.
Numba caches these kernels by this file: after a change to the rule there, clear the caches
(see ``pricing``); ``test_bucketing`` compares the kernel with ``bucket_index`` on edge cases.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from numba import njit, types, uint64

from depthflow.common.pricing import MAX_INDEX, bucket_index, per_unit, scaled_index

_MAX_FINITE = sys.float_info.max

_F64 = types.float64
_ARRAY = types.Array(_F64, 1, "C")
_EITHER = (_ARRAY.copy(readonly=True), _ARRAY)
_INPUTS = [(px, qty) for px in _EITHER for qty in _EITHER]
"""The (prices, quantities) array types the kernel is compiled for. Why both kinds: handlers pass
read-only ``np.frombuffer`` views, the bench and tests writable arrays, and numba types the two
differently.

Why ``_scan`` and ``_runs`` get explicit signatures too, rather than being compiled when the
kernel needs them: so that their own code is loaded before the kernel's and the kernel's calls
bind to it. Otherwise, once loaded from the on-disk cache, they bind to the copy numba links into
the kernel's module, which LLVM has optimised a second time there: that copy of ``_runs`` spills
more registers in its stream loop, and the whole call was ~20 % slower."""

# stream steps through memory: unsigned, so numba indexes without its negative-index fix-up
_FORWARD = np.uint64(1)
_BACKWARD = np.uint64(2**64 - 1)  # -1, modulo 2**64


class Buckets(NamedTuple):
    """One book side bucketed: lower edges (ascending) and summed quantities, plus the figures
    every aggregated output carries, so a consumer can check conservation without the input.

    ``price_low``/``price_high`` are the lowest and highest input prices (the range the levels
    cover, not the bucket edges); both are 0.0 for an empty side, like ``best_bid`` in
    ``BookBuckets``. ``compression`` is ``levels_in / levels_out`` (0.0 when empty).

    Why a ``NamedTuple`` rather than a frozen dataclass: equally immutable, but built in ~0.4 us
    instead of ~1.5-3 us (a frozen dataclass sets each of the nine fields through
    ``object.__setattr__``), which was a fifth of the whole call on a 5000-level side.
    """

    px: np.ndarray
    qty: np.ndarray
    volume_in: float = 0.0
    volume_out: float = 0.0
    levels_in: int = 0
    levels_out: int = 0
    compression: float = 0.0
    price_low: float = 0.0
    price_high: float = 0.0


@njit([(*pq, _F64, _ARRAY) for pq in _INPUTS], cache=True, nogil=True, error_model="numpy")
def _scan(px: np.ndarray, qty: np.ndarray, inv: float, keys: np.ndarray) -> bool:
    """Fill ``keys`` with the bucket index of every level; return whether the levels can be
    bucketed as they are: quantities finite and >= 0, prices sorted (either way), positive and
    not too fine for the size (index < ``MAX_INDEX``).

    The direction is the one the two ends give; if the middle disagrees, the book is unsorted and
    the caller sorts it. Why one boolean: ``&=`` vectorises to a mask reduction, cheaper than
    counting each check; which one failed matters only on the error path. ``w <= max`` rather
    than ``w < inf``: LLVM turns the latter pair into a class test it won't vectorise.
    """
    n = px.shape[0]
    keys[0] = scaled_index(px[0], inv)
    w = qty[0]
    ok = (w >= 0.0) & (w <= _MAX_FINITE)
    if px[0] > px[n - 1]:  # descending (bids), or unsorted
        for i in range(1, n):
            p = px[i]
            w = qty[i]
            keys[i] = scaled_index(p, inv)
            ok &= (p <= px[i - 1]) & (w >= 0.0) & (w <= _MAX_FINITE)
        low, high = n - 1, 0
    else:
        for i in range(1, n):
            p = px[i]
            w = qty[i]
            keys[i] = scaled_index(p, inv)
            ok &= (p >= px[i - 1]) & (w >= 0.0) & (w <= _MAX_FINITE)
        low, high = 0, n - 1
    # sorted, a NaN anywhere has failed an order test, and the ends bound every other level
    return ok and px[low] > 0.0 and keys[high] < MAX_INDEX


@njit(cache=True, nogil=True, error_model="numpy")
def _valid(px: np.ndarray, qty: np.ndarray, inv: float) -> bool:
    """Whether every level is valid, in any order: once ``_scan`` has said no, this tells a valid
    but unsorted book (to sort) from an invalid one (to reject)."""
    ok = True
    for i in range(px.shape[0]):
        p = px[i]
        w = qty[i]
        ok &= (p > 0.0) & (w >= 0.0) & (w <= _MAX_FINITE) & (scaled_index(p, inv) < MAX_INDEX)
    return ok


@njit(cache=True, nogil=True, error_model="numpy")
def _bucket_start(kb: np.ndarray, n: int, down: bool, j: int) -> int:
    """The first position ``>= j`` (``j >= 1``, counted in ascending price order) where a bucket
    starts, or ``n`` if none does."""
    top = n - 1
    while j < n:
        if down:
            if kb[top - j] != kb[top - j + 1]:
                return j
        elif kb[j] != kb[j - 1]:
            return j
        j += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _walk(
    kb: np.ndarray,
    keys: np.ndarray,
    qty: np.ndarray,
    j: np.uint64,
    count: int,
    step: np.uint64,
    last: int,
    acc: float,
    vin: float,
    slot: np.uint64,
    out_k: np.ndarray,
    out_s: np.ndarray,
) -> tuple:
    """One stream alone for ``count`` levels, as in the lockstep loop of ``_runs``: the levels
    that loop leaves. Inlined, so the arrays cost no reference counting per call."""
    for _ in range(count):
        if kb[j] != last:
            out_s[slot] = acc
            slot += _FORWARD
            out_k[slot] = keys[j]
            acc = 0.0
            last = kb[j]
        acc += qty[j]
        vin += qty[j]
        j += step
    return acc, vin, slot


@njit([(*pq, _F64, _F64, _ARRAY) for pq in _INPUTS], cache=True, nogil=True, error_model="numpy")
def _runs(px: np.ndarray, qty: np.ndarray, size: float, per: float, keys: np.ndarray) -> tuple:
    """Bucket valid, sorted levels whose indices ``_scan`` put in ``keys``: the fields of
    :class:`Buckets` in order (``per`` is ``per_unit(size)``).

    Four streams (see the module docstring) start at the first bucket start from each quarter of
    the book (in ascending price order), so each owns whole buckets; stream ``c`` writes its
    ``t``-th bucket to slot ``start_c + t`` of an n-sized scratch (a stream has no more buckets
    than levels), compacted into the exact-size output at the end. ``volume_in`` adds up the
    streams' sums of their levels, in stream order; ``volume_out`` the bucket sums, in order.

    Keys are compared as integers: a valid key is a non-negative whole number, so equal bits mean
    equal keys, and the compare fuses with its branch. The lockstep loop is written out per
    stream: a helper taking the arrays, inlined there, leaves reference-count updates inside the
    loop (~40x slower).
    """
    n = px.shape[0]
    down = px[0] > px[n - 1]
    kb = keys.view(np.int64)
    s1 = _bucket_start(kb, n, down, max(n // 4, 1))
    s2 = _bucket_start(kb, n, down, max(n // 2, s1))
    s3 = _bucket_start(kb, n, down, max(3 * n // 4, s2))
    n0, n1, n2, n3 = s1, s2 - s1, s3 - s2, n - s3
    scratch = np.empty((2, n))
    out_k = scratch[0]
    out_s = scratch[1]
    step = _BACKWARD if down else _FORWARD
    top = uint64(n - 1)
    j0 = top if down else uint64(0)
    j1 = top - uint64(s1) if down else uint64(s1)
    j2 = top - uint64(s2) if down else uint64(s2)
    j3 = top - uint64(s3) if down else uint64(s3)
    o0, o1, o2, o3 = uint64(0), uint64(s1), uint64(s2), uint64(s3)
    # each stream opens the bucket of its first level (an empty stream reads nothing)
    l0 = l1 = l2 = l3 = 0
    if n0:
        l0 = kb[j0]
        out_k[o0] = keys[j0]
    if n1:
        l1 = kb[j1]
        out_k[o1] = keys[j1]
    if n2:
        l2 = kb[j2]
        out_k[o2] = keys[j2]
    if n3:
        l3 = kb[j3]
        out_k[o3] = keys[j3]
    a0 = a1 = a2 = a3 = 0.0
    v0 = v1 = v2 = v3 = 0.0
    t = min(n0, n1, n2, n3)
    for _ in range(t):
        if kb[j0] != l0:
            out_s[o0] = a0
            o0 += _FORWARD
            out_k[o0] = keys[j0]
            a0 = 0.0
            l0 = kb[j0]
        a0 += qty[j0]
        v0 += qty[j0]
        j0 += step
        if kb[j1] != l1:
            out_s[o1] = a1
            o1 += _FORWARD
            out_k[o1] = keys[j1]
            a1 = 0.0
            l1 = kb[j1]
        a1 += qty[j1]
        v1 += qty[j1]
        j1 += step
        if kb[j2] != l2:
            out_s[o2] = a2
            o2 += _FORWARD
            out_k[o2] = keys[j2]
            a2 = 0.0
            l2 = kb[j2]
        a2 += qty[j2]
        v2 += qty[j2]
        j2 += step
        if kb[j3] != l3:
            out_s[o3] = a3
            o3 += _FORWARD
            out_k[o3] = keys[j3]
            a3 = 0.0
            l3 = kb[j3]
        a3 += qty[j3]
        v3 += qty[j3]
        j3 += step
    a0, v0, o0 = _walk(kb, keys, qty, j0, n0 - t, step, l0, a0, v0, o0, out_k, out_s)
    a1, v1, o1 = _walk(kb, keys, qty, j1, n1 - t, step, l1, a1, v1, o1, out_k, out_s)
    a2, v2, o2 = _walk(kb, keys, qty, j2, n2 - t, step, l2, a2, v2, o2, out_k, out_s)
    a3, v3, o3 = _walk(kb, keys, qty, j3, n3 - t, step, l3, a3, v3, o3, out_k, out_s)
    # close each stream's last bucket; count its buckets
    out_s[o0] = a0
    c0 = int(o0) + 1
    c1 = c2 = c3 = 0
    if n1:
        out_s[o1] = a1
        c1 = int(o1) + 1 - s1
    if n2:
        out_s[o2] = a2
        c2 = int(o2) + 1 - s2
    if n3:
        out_s[o3] = a3
        c3 = int(o3) + 1 - s3
    m = c0 + c1 + c2 + c3
    edges = np.empty(m)
    sums = np.empty(m)
    b = 0
    volume_out = 0.0
    for start, count in ((0, c0), (s1, c1), (s2, c2), (s3, c3)):
        for i in range(start, start + count):
            k = out_k[i]
            edges[b] = k / per if per else k * size
            sums[b] = out_s[i]
            volume_out += out_s[i]
            b += 1
    low, high = (px[n - 1], px[0]) if down else (px[0], px[n - 1])
    return edges, sums, ((v0 + v1) + v2) + v3, volume_out, n, m, n / m, low, high


class _Unsorted(Exception):
    """Raised by the kernel for a valid book that is not sorted by price: the caller sorts it."""


@njit([(*pq, _F64) for pq in _INPUTS], cache=True, nogil=True, error_model="numpy")
def _bucket(px: np.ndarray, qty: np.ndarray, size: float) -> tuple:
    """The kernel: the fields of :class:`Buckets` in order. Raises ``ValueError`` (without
    details: ``_problem`` supplies them) on mismatched lengths, a bad size or an invalid level,
    and ``_Unsorted`` for a valid book that is not sorted by price."""
    n = px.shape[0]
    if qty.shape[0] != n or not 0.0 < size < np.inf:
        raise ValueError("bucket_side: bad lengths or bucket size")
    if n == 0:
        return np.empty(0), np.empty(0), 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0
    inv = 1.0 / size
    keys = np.empty(n)
    if _scan(px, qty, inv, keys):
        return _runs(px, qty, size, per_unit(size), keys)
    if _valid(px, qty, inv):
        raise _Unsorted
    raise ValueError("bucket_side: invalid level")


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as an aligned, C-contiguous float64 ndarray (the kernel's argument type)."""
    return np.require(np.asarray(a, dtype=np.float64), requirements=["C", "A"])


def bucket_side(px: np.ndarray, qty: np.ndarray, size: float) -> Buckets:
    """Sum ``qty`` by price bucket of width ``size``; the output is ascending by price.

    ``px`` may be ascending (asks), descending (bids) or unsorted; all three give the same
    buckets. Raises ``ValueError`` naming the first offending level if a price is not finite and
    positive, a quantity is not finite and non-negative, or ``size`` is too fine for a price
    (index >= 1e14), and if the lengths differ: bad data is never silently bucketed.
    """
    try:
        return _bucketed(px, qty, size)
    except TypeError:  # not 1-d float64 arrays and a float: convert them and retry
        pass
    px, qty = _f64(px), _f64(qty)
    if px.ndim != 1 or px.shape != qty.shape:
        raise ValueError(f"prices and quantities must be 1-d of one length, got {px.shape} and {qty.shape}")
    return _bucketed(px, qty, float(size))


def _bucketed(px: np.ndarray, qty: np.ndarray, size: float) -> Buckets:
    """One call of the kernel; an unsorted book is sorted and retried, an invalid one explained.
    ``TypeError`` (arguments of types the kernel is not compiled for) goes to the caller."""
    try:
        return tuple.__new__(Buckets, _bucket(px, qty, size))  # Buckets(*...) minus ~0.5 us of checks
    except _Unsorted:
        return _by_price(px, qty, size)
    except ValueError:
        raise ValueError(_problem(px, qty, float(size))) from None


def _by_price(px: np.ndarray, qty: np.ndarray, size: float) -> Buckets:
    """Bucket a valid book that is not sorted: sorted by price first, stably, so that levels of
    equal price keep their input order (numpy's sort: faster than numba's stable one)."""
    order = np.argsort(px, kind="stable")
    return tuple.__new__(Buckets, _bucket(px[order], qty[order], size))


def _problem(px: np.ndarray, qty: np.ndarray, size: float) -> str:
    """Say why the kernel rejected its arguments, naming the first invalid level: the error path."""
    if px.shape != qty.shape:
        return f"prices and quantities must be 1-d of one length, got {px.shape} and {qty.shape}"
    if not 0.0 < size < math.inf:
        return f"bucket size must be a finite positive number, was {size!r}"
    with np.errstate(all="ignore"):
        bad_px = ~((px > 0.0) & (px < math.inf))
        bad_qty = ~((qty >= 0.0) & (qty < math.inf))
        too_fine = ~bad_px & ~(bucket_index(px, size) < MAX_INDEX)
    i = int(np.argmax(bad_px | bad_qty | too_fine))
    if bad_px[i]:
        return f"price at level {i} is {float(px[i])!r}: prices must be finite and positive"
    if bad_qty[i]:
        return f"quantity at level {i} (price {float(px[i])!r}) is {float(qty[i])!r}: must be finite and >= 0"
    if too_fine[i]:
        return f"bucket size {size!r} is too fine for price {float(px[i])!r} at level {i}: index >= 1e14"
    return "invalid level not found (kernel and numpy disagree on validity)"

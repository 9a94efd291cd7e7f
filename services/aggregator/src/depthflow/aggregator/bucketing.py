"""Price bucketing of book levels: the aggregator's pure core.

Bucket ``k`` holds every level whose price lies in ``[k * size, (k + 1) * size)`` and is labelled
by its lower edge ``k * size`` (see ``bucket_edges``). Every input level is counted exactly once,
in the bucket of its price, so the output conserves volume up to float rounding of the sums.

Why a numba kernel over the sorted levels: Binance books arrive sorted (bids descending, asks
ascending), so the bucket index is monotone along the array and a run-length pass that starts a
new bucket whenever the index changes does the whole job: no sort, no Python object per level.
The kernel also validates the input and collects the figures every output carries (volumes,
level counts, price range), so the caller needs no further pass. Descending input is walked
backwards rather than copied. Unsorted input (never seen from Binance, but legal) is sorted by
price first and then takes the same kernel. The JIT is compiled (or loaded from its on-disk
cache) at import, so no message ever pays for it.

The edge rule (``bucket_index`` in numpy, ``_index`` in the kernel; both do the same IEEE
operations in the same order, so they agree bit for bit):

    q = price * (1 / size);  k = floor(q);  if (k + 1) - q <= EDGE_REL * q: k += 1

Why: ``price`` and ``size`` are the doubles nearest to decimal numbers (``60000.12``, ``0.01``),
so ``q`` is off from the exact decimal quotient by at most ~4 units in the last place (relative
4.4e-16). A price exactly on an edge may thus come out just below the integer (``0.29 / 0.01``
is ``28.999999999999996``), and a plain floor would put it one bucket too low. The tolerance is
*relative* because the error is: an absolute one (the former "round to 9 decimals of a bucket")
misplaces ~8 % of on-edge prices at BTC magnitudes with a 0.01 bucket (q ~ 6e6, error ~2e-9)
and ~13 % at 1e3 with a 0.0001 bucket. With ``EDGE_REL = 1e-15`` (> 2x the worst error) a
price within 1e-15 (relative) below an edge belongs to that edge's bucket and a price further
below does not. Exchange prices never sit that close without being on the edge: when ``price``
and ``size`` are decimals and ``price x 10^D < 10^14`` (``D`` = the larger of their numbers of
decimals; BTC at 60000.12345678 is 6e12), a non-edge price is at least 1e-14 (relative) from
any edge, so the result is exactly the decimal ``floor(price / size)``.
``q`` must stay below ``MAX_INDEX`` = 1e14 (1e9 at a 1e-5 bucket), where the tolerance grows to
a tenth of a bucket; a bucket too fine for the prices is rejected rather than misapplied.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import NamedTuple

import numpy as np
from numba import njit

EDGE_REL = 1e-15
"""Relative distance below a bucket edge within which a price counts as on the edge."""

MAX_INDEX = 1e14
"""Bucket indices must stay below this. Why: the edge tolerance is ``EDGE_REL * q`` buckets, 0.1
of a bucket here and a whole bucket at 1e15; a double still resolves 1/64 of a bucket here."""

_MAX_FINITE = sys.float_info.max

# the kernel's result: a status code, then the fields of ``Buckets`` in order
_KernelResult = tuple[int, np.ndarray, np.ndarray, float, float, int, int, float, float, float]

# kernel status codes
_OK = 0
_UNSORTED = 1
_INVALID = 2


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


def bucket_size_for(tick_size: float | str, multiple: int = 1) -> float:
    """Bucket size of ``multiple`` ticks, e.g. ``bucket_size_for(0.005, 3) == 0.015``.

    ``tick_size`` may also be the exchange's string (Binance's ``"0.00500000"``). Why through
    ``Decimal``: ``0.005 * 3`` in binary is ``0.015000000000000001``, not the double nearest to
    0.015; the edge rule's error budget assumes the size is the double nearest to the decimal
    the exchange means, and edges then fall exactly on tick prices.
    """
    try:
        tick = Decimal(tick_size) if isinstance(tick_size, str) else Decimal(repr(float(tick_size)))
    except (ArithmeticError, TypeError, ValueError):
        raise ValueError(f"tick size must be a finite positive number, was {tick_size!r}") from None
    if not (tick.is_finite() and tick > 0):
        raise ValueError(f"tick size must be a finite positive number, was {tick_size!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int | np.integer) or multiple < 1:
        raise ValueError(f"multiple must be a positive integer, was {multiple!r}")
    size = float(tick * int(multiple))
    if not 0.0 < size < math.inf:
        raise ValueError(f"{multiple} ticks of {tick_size!r} is not a finite positive bucket size")
    return size


def _per_unit(size: float) -> float:
    """The whole number of buckets per unit (100 for 0.01, 1e5 for 1e-5), or 0.0 if there is none.

    Why: the edge ``k / 100`` is the double nearest to the decimal ``k x 0.01``, where
    ``k * 0.01`` can be one unit in the last place off (``7 * 0.1`` is ``0.7000000000000001``);
    edges are prices that consumers print and compare, so they should be the decimal ones.
    ``1 / size`` itself may miss the whole number by an ulp (``1 / 1e-5`` is
    ``99999.99999999999``), hence the tolerance.
    """
    per = 1.0 / size
    near = round(per) if per < 1e300 else 0
    return float(near) if near >= 1 and abs(per - near) <= EDGE_REL * near else 0.0


def bucket_edges(keys: np.ndarray, size: float) -> np.ndarray:
    """Lower edge (float64) of each bucket index, as :func:`bucket_side` labels buckets."""
    per = _per_unit(size)
    k = np.asarray(keys, dtype=np.float64)
    return k / per if per else k * size


def bucket_index(px: np.ndarray, size: float) -> np.ndarray:
    """Return the bucket index (float64, integral) of each price: the numpy form of the edge rule.

    Identical, operation for operation, to the kernel's ``_index`` (see the module docstring).
    """
    q = px * (1.0 / size)
    k = np.floor(q)
    k += (k + 1.0) - q <= EDGE_REL * q
    return k


def bucket_keys(px: np.ndarray, size: float) -> np.ndarray:
    """Return the integer bucket index of each price (``int64``), by the module's edge rule.

    A price exactly on an edge (``0.29`` with size ``0.01``) lands in its own bucket, however
    its binary representation rounds. No validation: see :func:`bucket_side` for that.
    """
    return bucket_index(np.asarray(px, dtype=np.float64), float(size)).astype(np.int64)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _index(p: float, inv: float) -> float:
    """The edge rule for one price; must stay operation-for-operation equal to ``bucket_index``."""
    q = p * inv
    k = np.floor(q)
    return k + 1.0 if (k + 1.0) - q <= EDGE_REL * q else k


@njit(cache=True, nogil=True, error_model="numpy")
def _bucket_sorted(px: np.ndarray, qty: np.ndarray, size: float, per_unit: float) -> _KernelResult:
    """Validate, then run-length bucket levels sorted by price (either direction), in two passes.

    Returns ``status`` followed by the fields of :class:`Buckets` in order. ``status`` is
    ``_OK``, ``_INVALID`` (some level fails validation; the caller finds and names it) or
    ``_UNSORTED`` (valid, but neither ascending nor descending; the caller sorts and retries).

    Why two passes: the first has no loop-carried dependency (index of every level, validity
    and order counts), so LLVM vectorises it; the second is the run-length sum, whose one
    dependency (the running sum) is inherent. Fused, the validation branches sat on the
    sum's critical path and the whole was ~1.5x slower. Descending input is walked backwards
    in the second pass, so buckets always come out ascending, and a bucket's levels are summed
    in ascending price order whatever the input order: the ascending and the descending
    ordering of the same levels give bit-identical output.
    """
    n = px.shape[0]
    keys = np.empty(n)
    edges = np.empty(n)
    sums = np.empty(n)
    if n == 0:
        return _OK, edges, sums, 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0
    inv = 1.0 / size
    good = 0
    up = 0
    down = 0
    for i in range(n):
        p = px[i]
        w = qty[i]
        k = _index(p, inv)
        keys[i] = k
        # NaN fails every comparison; an infinite price gives an infinite index. ``w <= max``
        # rather than ``w < inf``: LLVM turns the latter pair into a class test it won't vectorise
        good += (p > 0.0) & (w >= 0.0) & (w <= _MAX_FINITE) & (k < MAX_INDEX)
    for i in range(1, n):
        up += px[i] > px[i - 1]
        down += px[i] < px[i - 1]
    if good != n:
        return _INVALID, edges[:0], sums[:0], 0.0, 0.0, n, 0, 0.0, 0.0, 0.0
    if up and down:
        return _UNSORTED, edges[:0], sums[:0], 0.0, 0.0, n, 0, 0.0, 0.0, 0.0
    i, step = (n - 1, -1) if down else (0, 1)
    low = px[i]
    m = -1
    last = -1.0
    acc = 0.0
    volume_in = 0.0
    for _ in range(n):
        k = keys[i]
        w = qty[i]
        volume_in += w
        if k != last:
            sums[max(m, 0)] = acc
            m += 1
            edges[m] = k / per_unit if per_unit else k * size
            acc = w
            last = k
        else:
            acc += w
        i += step
    sums[m] = acc
    volume_out = 0.0
    for j in range(m + 1):
        volume_out += sums[j]
    high = px[i - step]
    # copies: the exact-size result frees the n-sized scratch instead of pinning it
    m += 1
    return _OK, edges[:m].copy(), sums[:m].copy(), volume_in, volume_out, n, m, n / m, low, high


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float64 array, without a copy when it already is one."""
    if type(a) is np.ndarray and a.dtype == np.float64 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=np.float64)


def bucket_side(px: np.ndarray, qty: np.ndarray, size: float) -> Buckets:
    """Sum ``qty`` by price bucket of width ``size``; the output is ascending by price.

    ``px`` may be ascending (asks), descending (bids) or unsorted; all three give the same
    buckets. Raises ``ValueError`` naming the first offending level if a price is not finite and
    positive, a quantity is not finite and non-negative, or ``size`` is too fine for a price
    (index >= 1e14), and if the lengths differ: bad data is never silently bucketed.
    """
    px, qty = _f64(px), _f64(qty)
    if px.ndim != 1 or px.shape != qty.shape:
        raise ValueError(f"prices and quantities must be 1-d of one length, got {px.shape} and {qty.shape}")
    size = float(size)
    if not 0.0 < size < math.inf:
        raise ValueError(f"bucket size must be a finite positive number, was {size!r}")
    per_unit = _per_unit(size)
    out = _bucket_sorted(px, qty, size, per_unit)
    if out[0] == _UNSORTED:
        order = np.argsort(px, kind="stable")
        out = _bucket_sorted(px[order], qty[order], size, per_unit)
    if out[0] != _OK:
        raise ValueError(_problem(px, qty, size))
    return tuple.__new__(Buckets, out[1:])  # what Buckets(*out[1:]) does, minus ~0.5 us of checks


def _problem(px: np.ndarray, qty: np.ndarray, size: float) -> str:
    """Name the first invalid level (the kernel only says that there is one): the error path."""
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


def _warm() -> None:
    """Compile (or load from the on-disk cache) every specialisation handlers use, at import.

    Why: a message must never pay the JIT. Handlers pass read-only ``np.frombuffer`` views and
    the bench and tests pass writable arrays; numba types the two differently.
    """
    px = np.array([1.5, 2.5])
    qty = np.array([1.0, 1.0])
    ro_px, ro_qty = np.frombuffer(px.tobytes()), np.frombuffer(qty.tobytes())
    for a, b in ((px, qty), (ro_px, ro_qty), (px, ro_qty), (ro_px, qty)):
        _bucket_sorted(a, b, 1.0, 1.0)


_warm()

"""Price buckets: the one rule for which bucket a price falls in, and how wide buckets are.

Why here, in ``libs/common``: the aggregator buckets books and trades and peaks maps bucket
prices back to grid indices; two copies of the rule drifted once (peaks rounded to 9 decimals of
a bucket, an absolute tolerance), so both now import this one.

**Which bucket.** Bucket ``k`` of width ``size`` holds the prices in ``[k * size, (k + 1) * size)``
and is labelled by its lower edge (:func:`bucket_edges`). The index rule, in numpy
(:func:`bucket_index`) and for one price inside numba kernels (:func:`scaled_index`,
:func:`bucket_key`), the same IEEE operations in the same order, so they agree bit for bit:

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
a tenth of a bucket; callers reject a bucket too fine for the prices rather than misapply it.

**How wide.** :func:`choose_bucket_size` gives every symbol buckets of about the same *relative*
width, whatever its price: ``target_rel`` of the price (1.6e-5 by default: 1 $ at a BTC price of
60,000, the width the analysis was tuned on), rounded to a 1-2-5 x 10^k multiple of the tick.
Why relative: one absolute width (1.0) put the whole book of a coin at 0.006 in bucket 0, and
every threshold downstream counts buckets. :func:`bucket_size_for` gives an explicit multiple.
Both compute in ``Decimal`` and return the double nearest to the exact decimal size, so edges
fall on tick prices and the edge rule's error budget above holds.

**Numba's cache and this file.** A cached kernel in another file that calls :func:`bucket_key`
or :func:`scaled_index` (inlined) is keyed by *its* file only: numba does not see a change made
here, and loads the old rule from its cache until that file changes too or the caches are
cleared (``find . -name '*.nbi' -delete``). The tests that compare a kernel with
:func:`bucket_index` on edge cases catch such a stale cache.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
from numba import njit

EDGE_REL = 1e-15
"""Relative distance below a bucket edge within which a price counts as on the edge."""

MAX_INDEX = 1e14
"""Bucket indices must stay below this. Why: the edge tolerance is ``EDGE_REL * q`` buckets, 0.1
of a bucket here and a whole bucket at 1e15; a double still resolves 1/64 of a bucket here."""

TARGET_REL = 1.6e-5
"""Default bucket width relative to the price: 1 $ at 60,000 (1/60000, rounded)."""

_SERIES = (1, 2, 5)
"""The multiples a chosen size may be (times 10^k): the usual chart-axis steps, so sizes read
as round numbers of ticks."""


def bucket_index(px: np.ndarray, size: float) -> np.ndarray:
    """Return the bucket index (float64, integral) of each price: the numpy form of the edge rule.

    ``px`` must be float64; no validation (prices finite and > 0, indices below ``MAX_INDEX``
    are the caller's to check). Identical, operation for operation, to :func:`scaled_index`.
    """
    q = px * (1.0 / size)
    k = np.floor(q)
    k += (k + 1.0) - q <= EDGE_REL * q
    return k


def bucket_keys(px: np.ndarray, size: float) -> np.ndarray:
    """Return the integer bucket index of each price (``int64``), by the edge rule.

    A price exactly on an edge (``0.29`` with size ``0.01``) lands in its own bucket, however
    its binary representation rounds. Converts its arguments; no validation.
    """
    return bucket_index(np.asarray(px, dtype=np.float64), float(size)).astype(np.int64)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def scaled_index(price: float, inv: float) -> float:
    """The edge rule for one price, given ``inv = 1.0 / size``: the bucket index as a float.

    For kernels that bucket many prices of one size: the reciprocal is computed once, as
    :func:`bucket_index` does. Inlined into the caller (numba IR), so it costs no call; must stay
    operation-for-operation equal to :func:`bucket_index`.
    """
    q = price * inv
    k = np.floor(q)
    return k + 1.0 if (k + 1.0) - q <= EDGE_REL * q else k


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def bucket_key(price: float, size: float) -> np.int64:
    """The edge rule for one price: its bucket index as an ``int64``, for numba kernels.

    ``price`` must be finite and > 0 with ``price / size < MAX_INDEX`` (the conversion of a NaN
    to an integer is undefined). In a loop over one size, LLVM hoists ``1.0 / size`` out of it.
    """
    return np.int64(scaled_index(price, 1.0 / size))


@njit("float64(float64)", cache=True, nogil=True)
def per_unit(size: float) -> float:
    """The whole number of buckets per unit (100 for 0.01, 1e5 for 1e-5), or 0.0 if there is none.

    Why: the edge ``k / 100`` is the double nearest to the decimal ``k x 0.01``, where
    ``k * 0.01`` can be one unit in the last place off (``7 * 0.1`` is ``0.7000000000000001``);
    edges are prices that consumers print and compare, so they should be the decimal ones.
    ``1 / size`` itself may miss the whole number by an ulp (``1 / 1e-5`` is
    ``99999.99999999999``), hence the tolerance. Jitted with a signature so that kernels can
    call it (see the aggregator's bucketing kernel on why the signature).
    """
    per = 1.0 / size
    near = np.rint(per) if per < 1e300 else 0.0  # ties to even, like Python's round()
    return near if near >= 1.0 and abs(per - near) <= EDGE_REL * near else 0.0


def bucket_edges(keys: np.ndarray, size: float) -> np.ndarray:
    """Lower edge (float64) of each bucket index: ``k / per_unit(size)`` where the size divides
    the unit, else ``k * size``."""
    per = per_unit(float(size))
    k = np.asarray(keys, dtype=np.float64)
    return k / per if per else k * size


def _decimal(value: float | str, what: str) -> Decimal:
    """The decimal a float (its shortest repr) or an exchange string means; finite or ValueError."""
    try:
        d = Decimal(value) if isinstance(value, str) else Decimal(repr(float(value)))
    except (ArithmeticError, TypeError, ValueError):
        raise ValueError(f"{what} must be a finite number, was {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"{what} must be a finite number, was {value!r}")
    return d


def _size(size: Decimal, what: str) -> float:
    """The double nearest to ``size``, or ValueError if that is not finite and positive."""
    out = float(size)
    if not 0.0 < out < math.inf:
        raise ValueError(f"{what} is not a finite positive bucket size")
    return out


def bucket_size_for(tick_size: float | str, multiple: int = 1) -> float:
    """Bucket size of ``multiple`` ticks, e.g. ``bucket_size_for(0.005, 3) == 0.015``.

    ``tick_size`` may also be the exchange's string (Binance's ``"0.00500000"``). Why through
    ``Decimal``: ``0.005 * 3`` in binary is ``0.015000000000000001``, not the double nearest to
    0.015; the edge rule's error budget assumes the size is the double nearest to the decimal
    the exchange means, and edges then fall exactly on tick prices.
    """
    tick = _decimal(tick_size, "tick size")
    if not tick > 0:
        raise ValueError(f"tick size must be positive, was {tick_size!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int | np.integer) or multiple < 1:
        raise ValueError(f"multiple must be a positive integer, was {multiple!r}")
    return _size(tick * int(multiple), f"{multiple} ticks of {tick_size!r}")


def _nearest_in_series(x: Decimal) -> Decimal:
    """The 1-2-5 x 10^k value nearest to ``x`` (> 0) in log terms, exactly.

    Why exact: the boundaries between 1, 2, 5 and 10 are the geometric means sqrt(2), sqrt(10)
    and sqrt(50); comparing the square of ``x``'s mantissa with 2, 10 and 50 in ``Decimal``
    decides without rounding (no decimal mantissa squares to exactly one of them), so scaling
    ``x`` by 10^k scales the answer by exactly 10^k.
    """
    exponent = x.adjusted()  # x = m x 10^exponent with 1 <= m < 10
    m = x.scaleb(-exponent)
    square = m * m
    step = 10 if square >= 50 else 5 if square >= 10 else 2 if square >= 2 else 1
    return Decimal(step).scaleb(exponent)


def choose_bucket_size(tick_size: float, price: float, target_rel: float = TARGET_REL) -> float:
    """A bucket size of about ``target_rel x price``: a 1-2-5 x 10^k multiple of the tick.

    The multiple is the one of the 1-2-5 series nearest (in log terms, so within a factor of
    sqrt(2.5) ~ 1.58) to ``target_rel x price / tick``, and never below one tick: a tick coarser
    than the target gives one-tick buckets. With the tick unknown (``0.0``) the size is the 1-2-5
    x 10^k value nearest to the target itself. Computed in ``Decimal`` on the numbers' shortest
    decimal forms, so scaling ``price`` and ``tick_size`` by 10^k scales the size by exactly 10^k,
    and the result is the double nearest to a whole multiple of the tick.

    Examples: BTC at 60,000 with tick 0.01 gets 1.0 (the target is 0.96); a coin at 0.006 with
    tick 1e-8 gets 1e-7 (target 9.6e-8), with tick 1e-6 one tick, 1e-6.
    """
    tick = _decimal(tick_size, "tick size")
    px = _decimal(price, "price")
    rel = _decimal(target_rel, "target_rel")
    if tick < 0 or not px > 0 or not rel > 0:
        raise ValueError(
            f"need tick size >= 0 (0 = unknown), price > 0 and target_rel > 0; "
            f"got {tick_size!r}, {price!r}, {target_rel!r}"
        )
    with localcontext() as ctx:
        ctx.prec = 60  # products exact; the quotient far finer than any series boundary needs
        target = rel * px
        if tick == 0:
            return _size(_nearest_in_series(target), f"{target_rel!r} of price {price!r}")
        ratio = target / tick
        multiple = int(_nearest_in_series(ratio)) if ratio >= 1 else 1
        return _size(tick * multiple, f"{multiple} ticks of {tick_size!r}")

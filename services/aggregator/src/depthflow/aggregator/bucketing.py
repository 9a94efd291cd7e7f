"""Price bucketing of book levels: the aggregator's pure core.

Bucket ``k`` holds every level with ``floor(price / size) == k`` and is labelled by its lower
edge ``k * size``. Quantities are summed in input order, so the output conserves volume up to
float rounding, and no level is ever dropped or counted twice.

Why reduceat over a sort: Binance books arrive sorted (bids descending, asks ascending), so the
bucket keys are already monotone and one linear pass with ``np.add.reduceat`` suffices; unsorted
input is sorted first (stable), which keeps the sums exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Buckets:
    """Bucket lower edges (ascending) and summed quantities of one book side."""

    px: np.ndarray
    qty: np.ndarray


def bucket_keys(px: np.ndarray, size: float) -> np.ndarray:
    """Return the integer bucket index of each price.

    Prices are rounded to 9 decimals of a bucket before the floor so that a price lying exactly
    on an edge (``0.29 / 0.01`` is ``28.999999999999996`` in binary) lands in its own bucket.
    """
    return np.floor(np.round(px / size, 9)).astype(np.int64)


def bucket_side(px: np.ndarray, qty: np.ndarray, size: float) -> Buckets:
    """Sum ``qty`` by price bucket of width ``size``; the output is ascending by price."""
    if px.shape != qty.shape:
        raise ValueError(f"prices and quantities differ in length ({px.size} != {qty.size})")
    if size <= 0:
        raise ValueError(f"bucket size must be positive, was {size}")
    if px.size == 0:
        return Buckets(np.empty(0), np.empty(0))
    keys = bucket_keys(px, size)
    steps = np.diff(keys)
    if (steps < 0).any():
        if (steps > 0).any():
            order = np.argsort(keys, kind="stable")
            keys, qty = keys[order], qty[order]
        else:  # descending (bids): reverse to ascending
            keys, qty = keys[::-1], qty[::-1]
    starts = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
    return Buckets(keys[starts].astype(np.float64) * size, np.add.reduceat(qty, starts))

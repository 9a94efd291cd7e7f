"""The legacy aggregation design, kept as the baseline the aggregator is measured against.

Binance sends book levels as ``[price, quantity]`` string pairs. The legacy service parsed every
string with ``Decimal`` (exact, but an object per number), bucketed by ``Decimal(int(price))``
(1-unit buckets, truncating toward zero, which is the floor for positive prices) and summed
quantities in a dict. It is exact, so it also serves as the correctness oracle for the bench.

Do not optimise this module: its slowness is the point of comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal


def aggregate_decimal(levels: Iterable[tuple[str, str] | list[str]]) -> dict[Decimal, Decimal]:
    """Sum quantities by whole-unit price bucket, parsing each price and quantity string."""
    buckets: dict[Decimal, Decimal] = {}
    for price_s, qty_s in levels:
        price = Decimal(price_s)
        qty = Decimal(qty_s)
        key = Decimal(int(price))
        buckets[key] = buckets.get(key, Decimal(0)) + qty
    return buckets

"""Prices printed with the symbol's own precision.

Why: a fixed format fits one market only. ``{:.0f}`` shows a 60 000-dollar coin well and turns a
sub-dollar one into "POC 0 VA 0-1"; ``{:.2f}`` hides a 0.000123 coin entirely. A price is shown
with exactly the decimals of the symbol's tick (the finest step it can take), else of the bucket
size it was computed in, else with a fixed number of significant digits.
"""

from __future__ import annotations

import math

MAX_DECIMALS = 12
SIGNIFICANT_DIGITS = 6  # when neither tick nor bucket size is known


def step_decimals(step: float) -> int:
    """The fewest decimals that write ``step`` exactly (0.01 → 2, 0.00025 → 5, 5.0 → 0)."""
    for decimals in range(MAX_DECIMALS + 1):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) <= 1e-9 * scaled:
            return decimals
    return MAX_DECIMALS


def price_decimals(tick_size: float, bucket_size: float = 0.0, price: float = 0.0) -> int:
    """Decimals for prices of a symbol: its tick's, else its bucket size's (0.0 = unknown), else
    enough for :data:`SIGNIFICANT_DIGITS` significant digits of ``price``."""
    for step in (tick_size, bucket_size):
        if step > 0:
            return step_decimals(step)
    if price == 0:
        return 0
    magnitude = math.floor(math.log10(abs(price)))
    return min(MAX_DECIMALS, max(0, SIGNIFICANT_DIGITS - 1 - magnitude))


def format_price(price: float, tick_size: float, bucket_size: float = 0.0) -> str:
    """``price`` with the decimals of ``tick_size`` (see :func:`price_decimals`)."""
    return f"{price:.{price_decimals(tick_size, bucket_size, price)}f}"

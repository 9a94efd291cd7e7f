"""Prices are printed with the symbol's own precision: its tick's decimals, else its bucket
size's, else six significant digits; a sub-dollar coin no longer reads "POC 0"."""

from __future__ import annotations

import pytest

from depthflow.ctl.prices import format_price, price_decimals


@pytest.mark.parametrize(
    ("price", "tick", "bucket", "text"),
    [
        (0.8292, 0.0001, 0.0, "0.8292"),
        (60000.5, 0.01, 0.0, "60000.50"),
        (0.006, 1e-6, 0.0, "0.006000"),
        (3000.25, 0.00025, 1.0, "3000.25000"),  # the tick wins over the bucket size
        (60000.0, 0.0, 1.0, "60000"),  # tick unknown: the bucket size's decimals
        (0.8292, 0.0, 0.0005, "0.8292"),
        (0.00012345678, 0.0, 0.0, "0.000123457"),  # neither known: six significant digits
        (60000.5, 0.0, 0.0, "60000.5"),
        (0.0, 0.0, 0.0, "0"),
    ],
)
def test_format_price(price: float, tick: float, bucket: float, text: str) -> None:
    assert format_price(price, tick, bucket) == text


def test_decimals_of_steps_that_binary_floats_cannot_hold_exactly() -> None:
    assert [price_decimals(t) for t in (0.1, 0.01, 1e-8, 5.0, 0.3)] == [1, 2, 8, 0, 1]

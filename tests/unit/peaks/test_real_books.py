"""Zones on real recorded books: Binance REST depth snapshots of 2021-04-04 (1000 levels a side:
BTC, ETH, DOT) and Binance.US ones of 2021-08-14 (5000 asked for; sub-dollar coins and HNT at a
tick of 0.0001, whose books reach from a few percent of the price to several times it).

Why: synthetic profiles are smooth where real books are lumpy (round-number walls, empty ticks,
one huge order among dust). These snapshots check that the whole path, bucketing included,
gives sensible answers on the real thing; the sub-dollar ones that nothing assumes a 1-dollar
bucket or a BTC-sized volume: their buckets are chosen as the aggregator chooses them, relative
to the price.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from depthflow.aggregator.bucketing import bucket_side
from depthflow.common.pricing import choose_bucket_size
from depthflow.peaks.params import DEFAULT
from depthflow.peaks.zones import analyse
from tests.data import BINANCE_US, CRYPTOFEED
from tests.unit.peaks.test_zones import zs

US_TICK = 0.0001
CASES = [
    (CRYPTOFEED, "BTCUSDT", 1.0),
    (CRYPTOFEED, "ETHUSDT", 1.0),
    (CRYPTOFEED, "DOTUSDT", 0.01),
    *((BINANCE_US[0], symbol, None) for symbol in ("MANAUSD", "ZRXUSD", "BATUSD", "HNTUSD")),
]
"""(recording, symbol, bucket size); None: ``choose_bucket_size`` of the tick and the mid."""


def snapshots(path: Path) -> dict[str, dict[str, list[list[str]]]]:
    """The REST depth snapshots of a recording: ``<url> -> <ts>: {"lastUpdateId":..}`` lines."""
    out = {}
    with path.open() as f:
        for line in f:
            if line.startswith("https://") and "/depth?" in line and "lastUpdateId" in line:
                url, rest = line.split(" -> ", 1)
                symbol = url.split("symbol=")[1].split("&")[0]
                out[symbol] = json.loads(rest.split(": ", 1)[1])
    return out


@pytest.fixture(scope="module")
def books() -> dict[Path, dict[str, dict[str, list[list[str]]]]]:
    return {path: snapshots(path) for path in {path for path, _, _ in CASES}}


def levels(rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([float(p) for p, _ in rows]), np.array([float(q) for _, q in rows])


@pytest.mark.parametrize(("path", "symbol", "size"), CASES, ids=[symbol for _, symbol, _ in CASES])
def test_real_book_gives_sensible_zones(books, path, symbol, size):
    bid_px, bid_q = levels(books[path][symbol]["bids"])
    ask_px, ask_q = levels(books[path][symbol]["asks"])
    assert bid_px.size > 300
    assert ask_px.size > 300
    mid = (bid_px.max() + ask_px.min()) / 2
    size = size or choose_bucket_size(US_TICK, mid)
    bids, asks = bucket_side(bid_px, bid_q, size), bucket_side(ask_px, ask_q, size)
    # bucketing conserves volume and keeps every level in its bucket
    assert bids.qty.sum() == pytest.approx(bid_q.sum(), rel=1e-12)
    assert asks.qty.sum() == pytest.approx(ask_q.sum(), rel=1e-12)
    assert (np.diff(bids.px) > 0).all()
    assert (np.diff(asks.px) > 0).all()

    low, high = bid_px.min(), ask_px.max()
    out = analyse(bids.px, bids.qty, asks.px, asks.qty, size, mid, low, high)

    assert zs(out.support)
    assert zs(out.resistance)
    for z in zs(out.support):
        assert low - size < z.low <= z.price < mid
        assert z.high <= mid
    for z in zs(out.resistance):
        assert mid < z.price <= z.high <= high + size
        assert z.low >= mid
    assert low - size < out.poc <= high
    assert out.value_area_low <= out.poc < out.value_area_high
    for a, b in out.vacuums:
        assert low <= a < b <= high
    # the biggest resting bucket on each side is one of its zones, among the buckets a side's grid
    # keeps (max_buckets from the touch: the Binance.US books reach far further), or one of
    # (nearly) its size is: ETH's 28-bucket ask side has two, 331.7 and 330.9; the one standing
    # alone is a wall, the other leans on a 121 beside it on a side whose noise is as lumpy
    reach = (DEFAULT.max_buckets - 1) * size
    sides = ((bids.px, bids.qty, bids.px >= bids.px.max() - reach, zs(out.support)),
             (asks.px, asks.qty, asks.px <= asks.px.min() + reach, zs(out.resistance)))
    for px, qty, near, zones in sides:
        big = px[near][qty[near] >= 0.99 * qty[near].max()]
        assert any(z.low <= p < z.high for z in zones for p in big)

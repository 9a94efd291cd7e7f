"""Zones on real recorded books: Binance REST depth snapshots (1000 levels a side), 2021-04-04.

Why: synthetic profiles are smooth where real books are lumpy (round-number walls, empty ticks,
one huge order among dust). These snapshots check that the whole path, bucketing included,
gives sensible answers on the real thing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from depthflow.aggregator.bucketing import bucket_side
from depthflow.peaks.zones import analyse
from tests.data import CRYPTOFEED
from tests.unit.peaks.test_zones import zs

BUCKET = {"BTCUSDT": 1.0, "ETHUSDT": 1.0, "DOTUSDT": 0.01}


def snapshots() -> dict[str, dict[str, list[list[str]]]]:
    """The REST depth snapshots of the recording: ``<url> -> <ts>: {"lastUpdateId":..}`` lines."""
    out = {}
    with CRYPTOFEED.open() as f:
        for line in f:
            if line.startswith("https://") and "/depth?" in line and "lastUpdateId" in line:
                url, rest = line.split(" -> ", 1)
                symbol = url.split("symbol=")[1].split("&")[0]
                out[symbol] = json.loads(rest.split(": ", 1)[1])
    return out


@pytest.fixture(scope="module")
def books() -> dict[str, dict[str, list[list[str]]]]:
    return snapshots()


def levels(rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([float(p) for p, _ in rows]), np.array([float(q) for _, q in rows])


@pytest.mark.parametrize("symbol", sorted(BUCKET))
def test_real_book_gives_sensible_zones(books, symbol):
    size = BUCKET[symbol]
    bid_px, bid_q = levels(books[symbol]["bids"])
    ask_px, ask_q = levels(books[symbol]["asks"])
    assert bid_px.size == ask_px.size == 1000
    bids, asks = bucket_side(bid_px, bid_q, size), bucket_side(ask_px, ask_q, size)
    # bucketing conserves volume and keeps every level in its bucket
    assert bids.qty.sum() == pytest.approx(bid_q.sum(), rel=1e-12)
    assert asks.qty.sum() == pytest.approx(ask_q.sum(), rel=1e-12)
    assert (np.diff(bids.px) > 0).all()
    assert (np.diff(asks.px) > 0).all()

    mid = (bid_px.max() + ask_px.min()) / 2
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
    # the biggest resting bucket on each side is one of its zones
    top_bid = bids.px[np.argmax(bids.qty)]
    top_ask = asks.px[np.argmax(asks.qty)]
    assert any(z.low <= top_bid < z.high for z in zs(out.support))
    assert any(z.low <= top_ask < z.high for z in zs(out.resistance))

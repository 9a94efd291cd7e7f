"""The peaks handler on a sub-dollar book: what ``ZonesDetected`` carries besides the zones."""

import asyncio

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from depthflow.common.messages import TS_FLOOR_NS, BookBuckets, ZonesDetected, f64_bytes
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers, _depth_between, _wire_zones
from depthflow.peaks.zones import ZONE_FIELDS, ZONE_KINDS

TICK = 0.0001


def coin_book() -> BookBuckets:
    """Ten one-tick buckets a side around 0.83, one unit each: MANA-like, buckets at the tick."""
    bids = np.round(0.8300 - TICK * np.arange(10)[::-1], 4)
    asks = np.round(0.8301 + TICK * np.arange(10), 4)
    ones = f64_bytes(np.ones(10))
    return BookBuckets(
        symbol="MANAUSD", venue="binance", ts_event=TS_FLOOR_NS, ts_init=TS_FLOOR_NS, origin_ts=TS_FLOOR_NS,
        bucket_size=TICK, bid_px=f64_bytes(bids), bid_qty=ones, ask_px=f64_bytes(asks), ask_qty=ones,
        bid_volume_in=10.0, bid_volume_out=10.0, ask_volume_in=10.0, ask_volume_out=10.0, levels_in=20,
        levels_out=20, best_bid=0.8300, best_ask=0.8301, known_low=float(bids[0]),
        known_high=float(asks[-1]), tick_size=TICK,
    )


def test_zones_carry_the_books_bucket_and_tick_and_depth_near_the_mid_is_relative_to_it():
    h = PeaksHandlers(PeaksConfig(), Subjects(""))
    (out,) = asyncio.run(h.on_book_buckets(coin_book(), None))  # type: ignore[arg-type]
    z = out.message
    assert isinstance(z, ZonesDetected)
    assert (z.bucket_size, z.tick_size) == (TICK, TICK)
    # near = 0.02 % of 0.83005 = 0.000166: the buckets at 0.8300 and 0.8299 below, 0.8301 and
    # 0.8302 above; a floor of five buckets (the former near_buckets) would have counted five a side
    assert (z.bid_depth_near, z.ask_depth_near) == (2.0, 2.0)


def test_wire_zones_carry_every_column_under_its_field_name():
    rows = np.array([[1.0, 4.0, 2.5, 7.0, 0.25, 0.75, 1.0], [2.0, 3.0, 2.5, 1.0, 0.5, 0.125, 0.0]])
    zones = _wire_zones(rows)
    for z, row in zip(zones, rows, strict=True):
        assert [getattr(z, f) for f in ZONE_FIELDS[:-1]] == row[:-1].tolist()
        assert z.kind == ZONE_KINDS[int(row[-1])]


edges = st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 7.25]) | st.floats(-1.0, 10.0)


@given(st.lists(st.floats(0.0, 8.0), max_size=30, unique=True), edges, edges, st.booleans())
def test_depth_between_is_the_quantity_priced_in_the_band(prices, low, high, open_end):
    px = np.array(sorted(prices))
    qty = np.arange(1.0, px.size + 1.0) ** 2  # distinct: any bucket wrongly in or out shows
    high = np.inf if open_end else high
    assert _depth_between(px, qty, low, high) == float(qty[(px >= low) & (px <= high)].sum())

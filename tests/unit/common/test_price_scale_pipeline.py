"""Prices are relative everywhere: the same market at 10^k times the price, tick included, gives
the same analysis at 10^k times the price and the same signal.

Why through the three services' handlers, in process: each stage has its own thresholds (bucket
width, zone widths, near-mid windows, fusion's components), and one absolute figure in any of
them breaks this for the symbols far from BTC's price (a coin at 0.006 put its whole book in one
1-dollar bucket and still produced actionable signals). The books are real (recorded Binance
and Binance.US REST snapshots, scaled exactly in decimal); trades are drawn at the book's prices.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.ai_fusion.config import FusionConfig
from depthflow.ai_fusion.handlers import FusionHandlers
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    SignalFused,
    TradeBatch,
    TradeProfile,
    ZonesDetected,
)
from depthflow.common.runtime import Delivery
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers
from tests.data import BINANCE_US, CRYPTOFEED
from tests.unit.peaks.test_real_books import snapshots

NOW = time.time_ns()
BOOKS = {
    **{s: (b, "0.01") for s, b in snapshots(CRYPTOFEED).items() if s in ("BTCUSDT", "ETHUSDT")},
    **{s: (b, "0.0001") for s, b in snapshots(BINANCE_US[0]).items()},
}
"""symbol -> (REST snapshot, tick as Binance states it)."""


Pick = tuple[int, bool, float]
"""A trade: the index of a level among the book's 50 best a side, buyer-maker, quantity."""


def scaled(texts: list[str], k: int) -> np.ndarray:
    """Decimal prices times 10^k, exactly, then to the nearest doubles (as a feed would parse them)."""
    return np.array([float(Decimal(t).scaleb(k)) for t in texts], dtype=np.float64)


def market(symbol: str, k: int, picks: list[Pick]) -> tuple[TradeBatch, DepthSnapshot]:
    """The symbol's recorded book at 10^k its price, and trades at some of its own levels."""
    book, tick = BOOKS[symbol]
    head = {"symbol": symbol, "venue": "binance", "ts_event": NOW, "ts_init": NOW, "origin_ts": NOW}
    bid_px, ask_px = scaled([p for p, _ in book["bids"]], k), scaled([p for p, _ in book["asks"]], k)
    bid_qty = np.array([float(q) for _, q in book["bids"]])
    ask_qty = np.array([float(q) for _, q in book["asks"]])
    tick_k = float(Decimal(tick).scaleb(k))
    levels = [p for p, _ in book["bids"][:50]] + [p for p, _ in book["asks"][:50]]
    px = scaled([levels[i % len(levels)] for i, _, _ in picks], k)
    n = len(picks)
    trades = TradeBatch(
        **head, first_trade_id=1, last_trade_id=n, ids=np.arange(1, n + 1, dtype=np.int64).tobytes(),
        px=px.tobytes(), qty=np.array([q for _, _, q in picks]).tobytes(),
        ts=np.full(n, NOW - 10**9, dtype=np.int64).tobytes(),
        buyer_maker=np.array([float(m) for _, m, _ in picks]).tobytes(), tick_size=tick_k,
    )
    depth = DepthSnapshot(
        **head, last_update_id=1, bid_px=bid_px.tobytes(), bid_qty=bid_qty.tobytes(),
        ask_px=ask_px.tobytes(), ask_qty=ask_qty.tobytes(), known_low=float(bid_px[-1]),
        known_high=float(ask_px[-1]), tick_size=tick_k,
    )
    return trades, depth


async def analyse(symbol: str, k: int, picks: list[Pick]) -> tuple[ZonesDetected, SignalFused]:
    """Trades, then the book, through fresh aggregator → peaks → ai-fusion handlers."""
    subjects = Subjects("")
    runtime = msgspec.structs.replace(AggregatorConfig().runtime, symbols=list(BOOKS))
    aggregator = AggregatorHandlers(AggregatorConfig(runtime=runtime), subjects)
    peaks = PeaksHandlers(PeaksConfig(runtime=runtime), subjects)
    fusion = FusionHandlers(FusionConfig(runtime=runtime), subjects)
    trades, depth = market(symbol, k, picks)
    d = Delivery("s", "X", 1, 1)
    assert await aggregator.on_trade_batch(trades, d) == []
    zones = signal = None
    for out in await aggregator.on_depth_snapshot(depth, d):
        if isinstance(out.message, TradeProfile):
            await peaks.on_trade_profile(out.message, d)
        else:
            assert isinstance(out.message, BookBuckets)
            [z] = await peaks.on_book_buckets(out.message, d)
            zones = z.message
            [s] = await fusion.on_zones_detected(zones, d)
            signal = s.message
    assert isinstance(zones, ZonesDetected)
    assert isinstance(signal, SignalFused)
    return zones, signal


def prices(z: ZonesDetected) -> list[float]:
    """Every price the analysis states, in a fixed order."""
    out = [z.mid, z.best_bid, z.best_ask, z.poc, z.value_area_low, z.value_area_high, z.bucket_size]
    for zone in (*z.support, *z.resistance, *z.resonance):
        out += [zone.low, zone.high, zone.price]
    out += z.high_volume_nodes + z.low_volume_nodes
    for band in z.vacuums:
        out += [band.low, band.high]
    return out


def sizes(z: ZonesDetected) -> list[float]:
    """Every figure that is no price: zone counts, volumes, shares, confidences."""
    out: list[float] = [len(z.support), len(z.resistance), len(z.resonance), len(z.vacuums),
                        z.bid_depth_near, z.ask_depth_near, z.trade_buy_volume, z.trade_sell_volume]
    for zone in (*z.support, *z.resistance, *z.resonance):
        out += [zone.volume, zone.strength, zone.confidence]
    return out


picks = st.lists(st.tuples(st.integers(0, 99), st.booleans(), st.floats(0.01, 50.0)), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symbol=st.sampled_from(sorted(BOOKS)), k=st.integers(-6, 3), picks=picks)
def test_scaling_every_price_by_a_power_of_ten_scales_the_analysis_and_keeps_the_signal(symbol, k, picks):
    base_zones, base_signal = asyncio.run(analyse(symbol, 0, picks))
    zones, signal = asyncio.run(analyse(symbol, k, picks))
    assert sizes(zones) == pytest.approx(sizes(base_zones), rel=1e-9, abs=1e-12)
    assert prices(zones) == pytest.approx([p * 10.0**k for p in prices(base_zones)], rel=1e-9)
    assert zones.tick_size == pytest.approx(base_zones.tick_size * 10.0**k, rel=1e-12)
    assert signal.side == base_signal.side
    assert signal.mode == base_signal.mode
    assert signal.score == pytest.approx(base_signal.score, abs=1e-9)
    assert signal.confidence == pytest.approx(base_signal.confidence, abs=1e-9)


def test_the_real_books_give_zones_on_both_sides_so_the_property_is_not_vacuous():
    for symbol in BOOKS:
        zones, _ = asyncio.run(analyse(symbol, 0, [(0, True, 1.0)]))
        assert zones.support, symbol
        assert zones.resistance, symbol
        assert zones.poc > 0, symbol

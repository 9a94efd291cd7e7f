"""Group ``analysis``: the full per-snapshot analysis, as the services run it, minus the bus.

One step = aggregator bucketing both sides of a 5000-level book and updating the trade profile
with a batch of trades, then peaks detecting on the bucketed book with that profile. It calls the
services' own handlers (message decoding views and message building included), so the figure is
what one snapshot costs a pipeline, not a kernel in isolation. Goal: p99 ≤ 1 ms.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from bench.report import Figure
from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.collector.generator import MarketGenerator
from depthflow.collector.publishing import depth_snapshot, trade_batch
from depthflow.common.messages import BookBuckets, TradeProfile
from depthflow.common.runtime import Delivery
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers

STEPS = 400
DELIVERY = Delivery("bench", "MD", 1, 1)


def run() -> list[Figure]:
    return asyncio.run(_run())


async def _run() -> list[Figure]:
    gen = MarketGenerator(seed=3, start_price=60000.0, tick=0.01, levels=5000, depth_span=0.02)
    # inputs are built before timing: the collector's cost is not the analysis's
    inputs = []
    for i in range(STEPS + 50):
        trades = gen.step(1.0)
        while not len(trades.px):
            trades = gen.step(1.0)
        inputs.append((depth_snapshot("BTCFDUSD", "binance", gen.book(i), gen.now_ns, "cadence"),
                       trade_batch("BTCFDUSD", "binance", trades)))
    agg = AggregatorHandlers(AggregatorConfig(), Subjects())
    peaks = PeaksHandlers(PeaksConfig(), Subjects())
    samples = []
    for i, (snap, trades) in enumerate(inputs):
        t = time.perf_counter_ns()
        (prof,) = await agg.on_trade_batch(trades, DELIVERY)
        (book,) = await agg.on_depth_snapshot(snap, DELIVERY)
        assert isinstance(prof.message, TradeProfile)
        assert isinstance(book.message, BookBuckets)
        await peaks.on_trade_profile(prof.message, DELIVERY)
        await peaks.on_book_buckets(book.message, DELIVERY)
        if i >= 50:  # warm-up: JIT, caches, the profile filling in
            samples.append(time.perf_counter_ns() - t)
    ms = np.array(samples) / 1e6
    return [
        Figure("analysis_median_ms", round(float(np.median(ms)), 3), "ms"),
        Figure("analysis_p99_ms", round(float(np.percentile(ms, 99)), 3), "ms"),
        Figure("analysis_levels_per_side", 5000, ""),
        Figure("analysis_book_buckets", int(book.message.levels_out), ""),
    ]

"""Group ``analysis``: the full per-snapshot analysis, as the services run it, minus the bus.

One step = aggregator bucketing both sides of a 5000-level book and updating the trade profile
with a batch of trades, then peaks detecting on the bucketed book with that profile. It calls the
services' own handlers (message decoding views and message building included), so the figure is
what one snapshot costs a pipeline, not a kernel in isolation. Goal: p99 ≤ 1 ms.

Why a 48 h history first: at steady state the profile holds 2880 minutes over a few thousand
price buckets, and every step then pays for that width (the profile message, the trade grid, its
peaks and levels) and for minutes leaving the windows. Timed on a profile a few minutes old, the
figure would flatter the service by the part that grows with the profile.

Why the anchor in the same run: the goal is absolute, but machines here differ by 1.5-2x from one
session to the next and drift within one; the anchor z-score kernel of ``bench.peaks``, timed
between the steps (its second call: warm, as ``peaks_anchor_3000_us`` is), gives
``analysis_median_vs_anchor`` and ``analysis_p99_vs_anchor``, which compare across machines
where the milliseconds do not (across CPU models only roughly: the anchor is one kernel).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from bench.peaks import anchor_zscore, profile
from bench.report import Figure
from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.collector.generator import MarketGenerator
from depthflow.collector.publishing import TradeArrays, depth_snapshot, trade_batch
from depthflow.common.messages import BookBuckets, TradeBatch, TradeProfile
from depthflow.common.runtime import Delivery
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers

STEPS = 400
DELIVERY = Delivery("bench", "MD", 1, 1)
START_PRICE = 60000.0
TICK = 0.01
HISTORY_MIN = 2880  # the profile's longest window
HISTORY_VOL_PER_MIN = 0.0005  # ~2.7 % over 48 h: a calm BTC
HISTORY_TRADES_PER_MIN = 600


def history(end_price: float, end_ns: int) -> list[TradeBatch]:
    """Minute batches of trades over the ``HISTORY_MIN`` minutes before ``end_ns``: a random walk
    that ends at ``end_price``, trades spread around each minute's price."""
    rng = np.random.default_rng(11)
    steps = rng.normal(0.0, HISTORY_VOL_PER_MIN, HISTORY_MIN)
    path = np.cumsum(steps)
    walk = end_price * np.exp(path - path[-1])  # ends at end_price
    batches = []
    next_id = 1
    for m, price in enumerate(walk):
        n = int(rng.poisson(HISTORY_TRADES_PER_MIN))
        t0 = end_ns - (HISTORY_MIN - m) * 60_000_000_000
        ts = np.sort(rng.integers(t0, t0 + 60_000_000_000, n)).astype(np.int64)
        px = np.round(price * (1 + rng.normal(0.0, HISTORY_VOL_PER_MIN / 2, n)) / TICK) * TICK
        trades = TradeArrays(np.arange(next_id, next_id + n, dtype=np.int64), px,
                             np.round(rng.lognormal(-3.0, 1.2, n), 5) + 0.00001, ts,
                             (rng.random(n) < 0.5).astype(np.float64))
        batches.append(trade_batch("BTCFDUSD", "binance", trades))
        next_id += n
    return batches


def run() -> list[Figure]:
    return asyncio.run(_run())


async def _run() -> list[Figure]:
    # the simulated steps end before now: the aggregator dead-letters trades stamped ahead of the clock
    start_ns = time.time_ns() - (STEPS + 60) * 1_000_000_000
    past = history(START_PRICE, start_ns)
    gen = MarketGenerator(seed=3, start_price=START_PRICE, tick=TICK, levels=5000, depth_span=0.02,
                          start_ns=start_ns)
    gen.next_trade_id = past[-1].last_trade_id + 1
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
    for batch in past:
        await agg.on_trade_batch(batch, DELIVERY)
    samples = []
    anchors = []
    anchor_vol, anchor_weights = profile()
    anchor_zscore(anchor_vol, anchor_weights, 2.0)
    for i, (snap, trades) in enumerate(inputs):
        t = time.perf_counter_ns()
        await agg.on_trade_batch(trades, DELIVERY)
        prof, book = await agg.on_depth_snapshot(snap, DELIVERY)  # the profile changed: it comes first
        assert isinstance(prof.message, TradeProfile)
        assert isinstance(book.message, BookBuckets)
        await peaks.on_trade_profile(prof.message, DELIVERY)
        await peaks.on_book_buckets(book.message, DELIVERY)
        if i >= 50:  # warm-up: caches, allocator
            samples.append(time.perf_counter_ns() - t)
            anchor_zscore(anchor_vol, anchor_weights, 2.0)  # warm, as bench.peaks times it
            t = time.perf_counter_ns()
            anchor_zscore(anchor_vol, anchor_weights, 2.0)
            anchors.append(time.perf_counter_ns() - t)
    ms = np.array(samples) / 1e6
    anchor_ms = float(np.median(anchors)) / 1e6
    return [
        Figure("analysis_median_ms", round(float(np.median(ms)), 3), "ms"),
        Figure("analysis_p99_ms", round(float(np.percentile(ms, 99)), 3), "ms"),
        Figure("analysis_anchor_us", round(anchor_ms * 1e3, 2), "us"),
        Figure("analysis_median_vs_anchor", round(float(np.median(ms)) / anchor_ms, 1), "x"),
        Figure("analysis_p99_vs_anchor", round(float(np.percentile(ms, 99)) / anchor_ms, 1), "x"),
        Figure("analysis_levels_per_side", 5000, ""),
        Figure("analysis_book_buckets", int(book.message.levels_out), ""),
        Figure("analysis_profile_buckets", len(prof.message.px) // 8, ""),
    ]

"""A restarted generator continues its trade ids, so the aggregator keeps applying its trades.

Consumers deduplicate trades by id (ARCHITECTURE §3): a second run that started its ids at 1
again had every trade dropped as already seen, and the 48 h profile froze.
"""

from __future__ import annotations

import numpy as np

from depthflow.common.codec import encode
from depthflow.common.messages import DepthSnapshot, TradeBatch, TradeProfile, f64, f64_bytes, i64
from tests.conftest import read_all, wait_for

SYMBOL = "BTCFDUSD"
RUN = {
    "DEPTHFLOW_SYMBOLS": SYMBOL,
    "DEPTHFLOW_COLLECTOR_MAX_SNAPSHOTS": "3",
    "DEPTHFLOW_COLLECTOR_SPEED": "2",
}


async def test_a_second_generator_run_still_moves_the_trade_profile(stack, bus):
    s = bus.subjects
    trade_subject = s.md_trade("binance", SYMBOL)
    await stack("aggregator", **RUN)

    async def one_run() -> list[TradeBatch]:
        before = len(await read_all(bus, "MD", trade_subject, TradeBatch))
        collector = await stack("collector", **RUN)

        async def finished() -> bool:
            return not collector.alive()["collector"]

        await wait_for(finished, within_s=60)
        assert collector.exit_codes["collector"] == 0
        batches = [m for _, m in await read_all(bus, "MD", trade_subject, TradeBatch)]
        assert len(batches) > before, "the run published no trades; the test would prove nothing"
        return batches[before:]

    first = await one_run()
    second = await one_run()
    first_ids = np.concatenate([i64(b.ids) for b in first])
    second_ids = np.concatenate([i64(b.ids) for b in second])
    assert second_ids.min() > first_ids.max()
    assert {b.tick_size for b in first + second} == {0.01}  # the instrument's configured tick

    # every trade of both runs is in the aggregator's window: none was dropped as a duplicate
    total = len(first_ids) + len(second_ids)
    # the profile goes out with the next book, and a run may end with trades: one more book
    last = second[-1]
    mid = float(np.median(f64(last.px)))
    low, high = mid * 0.999, mid * 1.001
    await bus.js.publish(s.md_depth("binance", SYMBOL), encode(DepthSnapshot(
        symbol=SYMBOL, venue="binance", ts_event=last.ts_event, ts_init=last.ts_init,
        origin_ts=last.origin_ts, last_update_id=1, bid_px=f64_bytes([low]), bid_qty=f64_bytes([1.0]),
        ask_px=f64_bytes([high]), ask_qty=f64_bytes([1.0]), known_low=low, known_high=high,
    )))

    async def all_applied() -> bool:
        profiles = await read_all(bus, "AGG", s.agg_profile("binance", SYMBOL), TradeProfile)
        return bool(profiles) and profiles[-1][1].trades_in_window == total

    await wait_for(all_applied, within_s=60)

"""A restarted aggregator or peaks service resumes exactly: state comes back from the Redis
checkpoint plus a replay of what was acknowledged after it, so nothing is lost or doubled."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from depthflow.aggregator.profile import RollingProfile
from depthflow.common.codec import encode
from depthflow.common.messages import TradeBatch, TradeProfile, f64, f64_bytes, i64_bytes
from tests.conftest import read_all, subject_count, wait_for

SYM = "BTCFDUSD"


def batches(n: int, first_id: int, seed: int) -> list[TradeBatch]:
    rng = np.random.default_rng(seed)
    out, tid = [], first_id
    now = time.time_ns()
    for i in range(n):
        k = int(rng.integers(1, 6))
        ts = np.full(k, now + i * 100_000_000, dtype=np.int64)
        out.append(TradeBatch(
            symbol=SYM, venue="binance", ts_event=int(ts[-1]), ts_init=now, origin_ts=int(ts[0]),
            first_trade_id=tid, last_trade_id=tid + k - 1, ids=i64_bytes(np.arange(tid, tid + k)),
            px=f64_bytes(rng.uniform(59990, 60010, k)), qty=f64_bytes(rng.uniform(0.001, 1, k)),
            ts=i64_bytes(ts), buyer_maker=f64_bytes(rng.integers(0, 2, k).astype(float)),
        ))
        tid += k
    return out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "drain"])
async def test_aggregator_resumes_exactly_after_restart(stack, bus, how):
    env = {"DEPTHFLOW_AGGREGATOR_CHECKPOINT_INTERVAL_S": "2"}
    first = await stack("aggregator", **env)
    part1, part2 = batches(40, 1, seed=1), batches(30, 10_000, seed=2)
    subject = bus.subjects.md_trade("binance", SYM)
    out = bus.subjects.agg_profile("binance", SYM)
    for b in part1:
        await bus.js.publish(subject, encode(b))

    async def done(n: int) -> bool:
        return await subject_count(bus, "AGG", out) >= n

    await wait_for(lambda: done(len(part1)), within_s=30)
    os.kill(first.procs[0].pid, how)
    first.procs.clear()
    for b in part2:  # published while the aggregator is down
        await bus.js.publish(subject, encode(b))
    await stack("aggregator", **env)
    await wait_for(lambda: done(len(part1) + len(part2)), within_s=30)

    oracle = RollingProfile(1.0)
    for b in part1 + part2:
        oracle.add(np.frombuffer(b.ids, np.int64), f64(b.px), f64(b.qty), np.frombuffer(b.ts, np.int64),
                   f64(b.buyer_maker))
    profiles = [m for _, m in await read_all(bus, "AGG", out, TradeProfile)]
    assert len(profiles) == len(part1) + len(part2)
    last = profiles[-1]
    px, buy, sell = oracle.arrays()
    assert last.trades_in_window == oracle.trades_in_window
    assert np.array_equal(f64(last.px), px)
    assert np.allclose(f64(last.buy_qty), buy, rtol=1e-12)
    assert np.allclose(f64(last.sell_qty), sell, rtol=1e-12)

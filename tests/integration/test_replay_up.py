"""``depthflow up --replay`` tells the truth: a symbol asked for that got no book is a warning on
the console and in the final JSON, with the reason, and the run exits non-zero; a futures
recording is refused before anything starts; the warnings are checked against the bus, so a
symbol without books is a warning even when the collector said nothing. The streams are sized
from the retention plan, and a budget too small for it stops start-up before anything starts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from depthflow.collector.replay_report import ReplayReport, ReplayWarning
from depthflow.common.bus import planned_limits
from depthflow.common.retention import Load
from depthflow.ctl.drain import drained, pending_work
from depthflow.ctl.streamplan import plan_streams
from depthflow.ctl.summary import replay_warnings
from depthflow.devstack import NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV
from depthflow.devstack.testing.servers import Isolated
from tests.data import BINANCE_FUTURES, BINANCE_US, HFT_0808, HFT_0809
from tests.integration.test_operator_commands import assert_stream_limits


def up(iso: Isolated | None, state: Path, symbols: str, *args: str,
       settings: dict[str, str] | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """``depthflow up`` in a process of its own, on the test's servers (None: no servers given)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DEPTHFLOW_") and k not in (NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV)}
    env |= (iso.urls.as_env() if iso is not None else {}) | (settings or {})
    prefix = iso.prefix if iso is not None else "unused"
    return subprocess.run([sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--prefix", prefix,
                           "--symbols", symbols, "up", *args],
                          env=env, capture_output=True, text=True, timeout=timeout_s)


async def test_a_replayed_symbol_without_a_book_fails_the_run_and_says_why(isolated: Isolated, tmp_path):
    replay = [a for p in BINANCE_US for a in ("--replay", str(p))]
    settings = {"DEPTHFLOW_STREAM_BUDGET_GIB": "2"}
    done = await asyncio.to_thread(up, isolated, tmp_path / "state", "MANAUSD,BTCUSD",
                                   "--duration", "10", "--speed", "0", *replay, settings=settings)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    reason = "no book: the symbol is not in the replayed files (they carry BATUSD, HNTUSD, MANAUSD, ZRXUSD)"
    assert f"WARNING BTCUSD: {reason}" in out
    assert "BINANCE_US.ws.1.0 (cryptofeed): 610 lines, 608 frames; skipped blank line 1" in out
    final = json.loads(out.strip().splitlines()[-1])
    assert final["warnings"] == [{"symbol": "BTCUSD", "reason": reason}]
    assert final["md.depth"] > 0  # MANAUSD's books were published
    # the streams were sized from the plan: two symbols at the collector's depth, within the budget
    await assert_stream_limits(isolated.urls.nats, isolated.prefix, planned_limits(Load(symbols=2), 2.0))
    assert f"[depthflow] streams {plan_streams(2, environ=settings).description}; KV buckets" in out


async def test_a_futures_recording_is_refused_before_anything_starts(tmp_path):
    state = tmp_path / "state"
    replay = [a for p in BINANCE_FUTURES for a in ("--replay", str(p))]
    done = await asyncio.to_thread(up, None, state, "SUSHIUSDT", "--duration", "5", *replay)
    assert done.returncode == 2
    assert (f"refused: {BINANCE_FUTURES[0]} is a Binance futures recording: it was recorded from "
            "fapi.binance.com. depthflow analyses spot markets only") in done.stdout
    assert not (state / "servers").exists()  # no server was started


async def test_a_budget_too_small_stops_start_up_before_anything_starts(tmp_path):
    state = tmp_path / "state"
    done = await asyncio.to_thread(up, None, state, "BTCFDUSD,ETHFDUSD", "--duration", "5",
                                   settings={"DEPTHFLOW_STREAM_BUDGET_GIB": "0.2"})
    assert done.returncode == 2
    assert "refused: a stream budget of 0.20 GiB keeps only" in done.stdout
    assert "raise stream_budget_gib or lower the depth" in done.stdout
    assert not (state / "servers").exists()


def test_the_bus_is_believed_over_a_silent_collector():
    silent = ReplayReport(finished=True, book_within_s=60.0, files=[], symbols={}, warnings=[])
    assert replay_warnings(silent, {"MANAUSD": 3}, ["MANAUSD", "ZRXUSD"]) == [
        ReplayWarning(symbol="ZRXUSD", reason="no book: md.depth has none for it")]
    said = ReplayWarning(symbol="ZRXUSD", reason="no book: gap while syncing")
    told = ReplayReport(finished=True, book_within_s=60.0, files=[], symbols={}, warnings=[said])
    assert replay_warnings(told, {"MANAUSD": 3}, ["MANAUSD", "ZRXUSD"]) == [said]
    (missing,) = replay_warnings(None, {"MANAUSD": 3}, ["MANAUSD"])
    assert "the collector wrote no replay report" in missing.reason


async def test_a_replay_without_a_duration_ends_once_every_stage_has_caught_up(isolated: Isolated, tmp_path):
    # the hftbacktest pair: hundreds of books, so the later stages are still busy when the
    # collector reaches the end of its files
    replay = [a for p in (HFT_0808, HFT_0809) for a in ("--replay", str(p))]
    done = await asyncio.to_thread(up, isolated, tmp_path / "state", "BTCUSDT",
                                   "--speed", "0", *replay, settings={"DEPTHFLOW_STREAM_BUDGET_GIB": "3"},
                                   timeout_s=180)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "the replay is done and every stage has caught up: stopping services" in out
    final = json.loads(out.strip().splitlines()[-1])
    # every book of the recording went through every stage before the stop
    books = final["md.depth"]
    assert books > 600
    assert final["agg.book"] == final["peaks.zones"] == final["signal.fused"] == books
    assert final["warnings"] == []


async def test_pending_work_counts_what_a_durable_consumer_has_not_acknowledged(bus, isolated: Isolated):
    subject = bus.subjects.md_depth("binance", "BTCUSDT")
    sub = await bus.js.pull_subscribe(subject, durable="drain-probe", stream=bus.subjects.stream("MD"))
    assert await pending_work(isolated.urls.nats, isolated.prefix) == 0
    for i in range(3):
        await bus.js.publish(subject, b"x%d" % i)
    assert await pending_work(isolated.urls.nats, isolated.prefix) == 3
    msgs = await sub.fetch(2, timeout=5)
    assert await pending_work(isolated.urls.nats, isolated.prefix) == 3  # 1 waiting + 2 unacknowledged
    for m in msgs:
        await m.ack_sync()
    assert await pending_work(isolated.urls.nats, isolated.prefix) == 1
    assert not await asyncio.to_thread(drained, isolated.urls.nats, isolated.prefix)

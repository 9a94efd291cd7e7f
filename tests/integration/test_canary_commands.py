"""``depthflow canary route|promote|rollback|status`` and the supervisor's automatic rollback, on
real servers, while messages keep flowing through the real aggregator processes.

The supervisor is this test's own loop over a real :class:`ServiceStack` and
:class:`LaneOperator` (what ``depthflow up`` runs each turn), holding the state folder's run
lock; the commands run as the operator runs them, as ``depthflow`` processes of their own. Each
test counts the outputs per input sequence (``aggregator:MD:<seq>:<n>`` ids): every book once,
in order, none lost; and the per-process counters say no input was handled by two lanes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from depthflow.common.messages import TradeProfile
from depthflow.common.routing import CANARY, STABLE, RouteStore
from depthflow.ctl.control import bootstrap
from depthflow.ctl.guard import CanaryGuard
from depthflow.ctl.operate import LaneOperator
from depthflow.ctl.stack import ServiceStack, process_exists
from depthflow.ctl.supervisor import RunLock
from depthflow.devstack.testing.plugin import TEST_LIMITS
from depthflow.devstack.testing.servers import Isolated
from tests.conftest import read_all, subject_count, wait_for
from tests.integration.test_lanes import ENV, PRICES, Feed, handled_books
from tests.integration.test_replay_up import up

FETCH_32 = {"DEPTHFLOW_AGGREGATOR_RUNTIME__FETCH_BATCH": "32"}


class Supervisor:
    """A stack of aggregator processes and the lanes operator, turned by a thread."""

    def __init__(self, iso: Isolated, state: Path, guard: CanaryGuard | None = None) -> None:
        self.iso, self.state = iso, state
        self.stack = ServiceStack(state)
        self.lines: list[str] = []
        self.lanes = LaneOperator(self.stack, state, iso.urls.nats, iso.prefix, self.lines.append,
                                  guard, every_s=0.5)
        self.lock = RunLock(state)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self, canary_env: dict[str, str] | None, symbols: list[str]) -> None:
        assert self.lock.acquire()
        self.lock.mark_ready(symbols=list(PRICES))
        env = {"DEPTHFLOW_PREFIX": self.iso.prefix, **ENV}
        self.stack.start(self.iso.urls, env, services=("aggregator",))
        if canary_env is not None:
            self.lanes.start_canary("aggregator", symbols, canary_env)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.lines += self.stack.supervise()
            self.lanes.tick()
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.stack.stop()
        self.lock.release()

    def process_keys(self) -> set[str]:
        return {p.key for p in self.stack.procs}

    def handled(self, symbol: str) -> int:
        """Inputs of ``symbol`` (books and trade batches) handled over every process ever run."""
        return sum(r.handled(symbol) for r in self.lanes.ledger.latest.values())


@pytest_asyncio.fixture
async def supervisor(isolated: Isolated, tmp_path: Path) -> AsyncIterator[Supervisor]:
    await bootstrap(isolated.urls.nats, isolated.prefix, "binance", TEST_LIMITS)
    sup = Supervisor(isolated, tmp_path / "state")
    yield sup
    await asyncio.to_thread(sup.close)


def depthflow(iso: Isolated, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPTHFLOW_")} | iso.urls.as_env()
    return subprocess.run([sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--prefix",
                           iso.prefix, *args], env=env, capture_output=True, text=True, timeout=300)


async def command(iso: Isolated, sup: Supervisor, *args: str) -> str:
    """Run ``depthflow ARGS`` on the supervisor's state folder; return what it printed (exit 0)."""
    done = await asyncio.to_thread(depthflow, iso, sup.state, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def books_out(bus, n: int) -> bool:
    return await subject_count(bus, "AGG", bus.subjects.agg_book()) >= n


async def flowing(bus, feed: Feed, more: int) -> None:
    """Wait until ``more`` books past those published so far are out."""
    seen = sum(len(v) for v in feed.books.values())
    await wait_for(lambda: books_out(bus, seen + more))


async def finish(bus, feed: Feed, stop: asyncio.Event, publisher: asyncio.Task[None]) -> None:
    stop.set()
    await publisher
    await wait_for(lambda: books_out(bus, sum(len(v) for v in feed.books.values())))
    assert await handled_books(bus) == feed.books  # none lost, none twice, each symbol in order
    for sym in PRICES:  # the rolling profile's state went with the symbol at every move
        profiles = [p for _, p in await read_all(
            bus, "AGG", bus.subjects.agg_profile("binance", sym), TradeProfile)]
        assert profiles[-1].trades_in_window == feed.trades[sym], sym


@contextlib.asynccontextmanager
async def books_flowing(sup: Supervisor, bus, canary_env: dict[str, str] | None,
                        symbols: list[str]) -> AsyncIterator[Feed]:
    """Start the supervisor (and a canary owning ``symbols``), feed books until the body is done,
    then check every book came out once, in order, with its state."""
    await asyncio.to_thread(sup.start, canary_env, symbols)
    feed, stop = Feed(bus), asyncio.Event()
    publisher = asyncio.create_task(feed.run(stop))
    try:
        await flowing(bus, feed, 20)
        yield feed
    finally:
        await finish(bus, feed, stop, publisher)


async def lane_gone(bus, supervisor: Supervisor) -> None:
    """No canary process, durable or confirmation is left; the route gives stable everything.
    Then the supervisor reads the counters of the processes left."""
    assert "aggregator.canary.0" not in supervisor.process_keys()
    with pytest.raises(NotFoundError):
        await bus.js.consumer_info(bus.subjects.stream("MD"), "aggregator-canary")
    store = await RouteStore.open(bus, "aggregator")
    assert set(await store.confirmations((STABLE, CANARY))) == {"stable.0"}
    route, _ = await store.read()
    assert route is not None
    assert route.current() == {}
    await asyncio.to_thread(supervisor.lanes.ledger.observe, supervisor.stack.procs)


async def test_route_then_promote_while_books_flow_moves_every_book_once(supervisor, bus, isolated):
    async with books_flowing(supervisor, bus, FETCH_32, []) as feed:
        said = await command(isolated, supervisor, "canary", "route", "aggregator", "ETHFDUSD")
        assert "aggregator: ETHFDUSD routed to the canary at fences {'MD':" in said
        await flowing(bus, feed, 20)
        status = await command(isolated, supervisor, "canary", "status", "aggregator")
        assert "  canary  owns ETHFDUSD" in status
        assert "  stable  owns BTCFDUSD" in status
        assert "confirmed canary.0: revision" in status
        assert "canary  aggregator-canary on MD: delivered" in status
        said = await command(isolated, supervisor, "canary", "promote", "aggregator")
        assert "aggregator: promoted; the canary is stopped and retired" in said
        await flowing(bus, feed, 20)
    await lane_gone(bus, supervisor)
    # stable now runs with the canary's settings
    assert [dict(p.env) for p in supervisor.stack.procs] == [FETCH_32]
    # every book handled by exactly one process: stable, canary, then the promoted stable
    for sym, seqs in feed.books.items():
        assert supervisor.handled(sym) == 2 * len(seqs), sym  # a trade batch before each book
    assert {lane for _, lane, _ in supervisor.lanes.ledger.latest} == {STABLE, CANARY}


async def test_rollback_moves_the_canary_symbols_back_and_stops_it(supervisor, bus, isolated):
    async with books_flowing(supervisor, bus, FETCH_32, ["ETHFDUSD"]) as feed:
        await flowing(bus, feed, 10)
        canary_pid = next(p.pid for p in supervisor.stack.procs if p.lane == CANARY)
        said = await command(isolated, supervisor, "canary", "rollback", "aggregator")
        assert "aggregator: ETHFDUSD back to stable at fences" in said
        # what the command says when it returns holds already: not once the canary has drained
        assert "aggregator: canary stopped and retired" in said
        assert not process_exists(canary_pid)
        with pytest.raises(NotFoundError):
            await bus.js.consumer_info(bus.subjects.stream("MD"), "aggregator-canary")
        await flowing(bus, feed, 20)
    await lane_gone(bus, supervisor)
    assert supervisor.handled("ETHFDUSD") == 2 * len(feed.books["ETHFDUSD"])
    canary_eth = sum(r.handled("ETHFDUSD") for (_, lane, _), r in supervisor.lanes.ledger.latest.items()
                     if lane == CANARY)
    assert canary_eth > 0
    for log, lane in (("aggregator.canary.0.log", CANARY), ("aggregator.log", STABLE)):
        lines = (supervisor.state / "logs" / log).read_text().splitlines()
        assert {json.loads(line)["lane"] for line in lines if line.startswith("{")} == {lane}
    # clear refusals, nothing changed: no canary now, unknown service or symbol
    for args, why in [
        (("route", "aggregator", "ETHFDUSD"), "no canary of aggregator is running"),
        (("route", "nosuch", "ETHFDUSD"), "unknown service 'nosuch'"),
        (("rollback", "collector"), "the collector has no input to route"),
    ]:
        done = await asyncio.to_thread(depthflow, isolated, supervisor.state, "canary", *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert why in done.stdout


async def test_a_canary_failing_its_symbols_is_rolled_back_by_the_supervisor(isolated, bus, tmp_path):
    await bootstrap(isolated.urls.nats, isolated.prefix, "binance", TEST_LIMITS)
    guard = CanaryGuard(window_s=5, min_messages=5)
    sup = Supervisor(isolated, tmp_path / "state", guard)
    # the canary's ETHFDUSD buckets are so fine that its trades would need millions of them:
    # refused (a dead letter) at the canary, never at stable
    failing = {"DEPTHFLOW_AGGREGATOR_BUCKET_SIZES": '{"ETHFDUSD": 1e-7}'}
    try:
        await asyncio.to_thread(sup.start, failing, ["ETHFDUSD"])
        feed, stop = Feed(bus), asyncio.Event()
        publisher = asyncio.create_task(feed.run(stop))
        try:
            async def rolled_back() -> bool:
                return any("aggregator: canary stopped and retired" in line for line in sup.lines)

            await wait_for(rolled_back, within_s=120)
            await flowing(bus, feed, 20)
        finally:
            stop.set()
            await publisher
        said = [line for line in sup.lines if "canary rolled back automatically" in line]
        assert said, sup.lines
        assert "error rate " in said[0]
        assert "> 3 x stable's 0.0% (floor 1%) over 5s" in said[0]
        await lane_gone(bus, sup)
        assert await subject_count(bus, "DLQ", bus.subjects.dlq()) > 0
    finally:
        await asyncio.to_thread(sup.close)


def test_up_refuses_a_guard_that_would_never_trip_before_anything_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPTHFLOW_")}
    state = tmp_path / "state"
    for args, why in [
        (["--canary", "peaks", "--canary-max-error-ratio", "1000"], "--canary-max-error-ratio:"),
        (["--canary", "peaks:NOSUCH"], "unknown symbol(s) NOSUCH"),
        (["--canary", "collector"], "the collector has no input to route"),
    ]:
        done = subprocess.run([sys.executable, "-m", "depthflow.ctl", "--state", str(state), "up",
                               "--duration", "1", *args],  # were it not refused, it ends by itself
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        assert why in done.stdout
    assert not (state / "servers").exists()


async def test_up_with_a_canary_shows_each_lane_in_the_summary_and_the_final_line(isolated, tmp_path):
    done = await asyncio.to_thread(up, isolated, tmp_path / "state", ",".join(PRICES), "--duration", "15",
                                   "--canary", "aggregator:ETHFDUSD")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "aggregator: ETHFDUSD routed to the canary at fences {'MD':" in out
    assert "starting aggregator.canary.0" in out
    assert "  aggregator stable x1  owns BTCFDUSD" in out  # the live summary and the final one
    assert "  aggregator canary x1  owns ETHFDUSD" in out
    final = json.loads(out.strip().splitlines()[-1])
    lanes = final["lanes"]["aggregator"]
    assert lanes["canary"]["symbols"] == ["ETHFDUSD"]
    assert lanes["stable"]["symbols"] == ["BTCFDUSD"]
    assert lanes["canary"]["handled"]["ETHFDUSD"] > 0
    assert lanes["canary"]["handled"]["BTCFDUSD"] == 0
    assert lanes["stable"]["handled"]["BTCFDUSD"] > 0
    assert lanes["stable"]["skipped"] > 0  # (read a moment apart: no exact match with the canary)


async def test_scale_to_two_replicas_and_back_while_books_flow(supervisor, bus, isolated):
    async with books_flowing(supervisor, bus, None, []) as feed:
        said = await command(isolated, supervisor, "scale", "aggregator", "2")
        assert "aggregator: 2 stable replica(s) running" in said
        assert supervisor.process_keys() == {"aggregator", "aggregator.stable.1"}

        async def second_replica_works() -> bool:  # the lanes' leader rebalanced onto it
            await asyncio.to_thread(supervisor.lanes.ledger.observe, supervisor.stack.procs)
            return any(r.outcome("ok") for (_, _, pid), r in supervisor.lanes.ledger.latest.items()
                       if pid == supervisor.stack.procs[-1].pid)

        await wait_for(second_replica_works)
        status = await command(isolated, supervisor, "canary", "status", "aggregator")
        assert "all stable; stable replicas 0,1" in status
        assert "stable  aggregator-stable-1 on MD: delivered" in status
        await flowing(bus, feed, 20)
        said = await command(isolated, supervisor, "scale", "aggregator", "1")
        assert supervisor.process_keys() == {"aggregator"}
        store = await RouteStore.open(bus, "aggregator")
        assert set(await store.confirmations((STABLE,))) == {"stable.0"}  # replica 1's is retired
        await flowing(bus, feed, 20)
    # (per-process counts are no invariant here: the replica that left hands nothing over, and
    # the one taking its symbols replays them from its checkpoint, publishing only what is new)
    assert set(await store.confirmations((STABLE,))) == {"stable.0"}

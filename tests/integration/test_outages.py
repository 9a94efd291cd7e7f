"""Every service outlives a Valkey restart and a NATS restart, with no supervisor to hide a crash:
the processes keep running, ``/readyz`` says 503 while NATS is away, the pipeline goes on
producing afterwards (checkpoints are written again), and once the collector stops, every
snapshot has exactly one output at every stage.

The servers are a dedicated embedded set (the session's shared servers are not disturbed),
restarted the way an operator or a crash would: the process ends, the same command line starts
again on the same port and data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import redis.exceptions

from depthflow import devstack
from depthflow.common.bus import Bus
from depthflow.ctl.control import SERVICES, bootstrap
from depthflow.ctl.stack import ServiceStack, readyz
from depthflow.devstack import EmbeddedServers, ServerUrls
from depthflow.devstack.testing.plugin import TEST_LIMITS
from depthflow.devstack.testing.servers import new_prefix
from tests.conftest import subject_count, wait_for
from tests.integration.test_supervisor import SYMBOLS, assert_exactly_once


@dataclass
class Servers:
    embedded: EmbeddedServers
    urls: ServerUrls
    argv: dict[str, list[str]]  # kind -> the command line it was started with

    def _record(self) -> dict:
        return json.loads(self.embedded.record_path.read_text())

    def stop(self, kind: str) -> Callable[[], None]:
        """End server ``kind`` gracefully; return what starts its very command line again."""
        record = self._record()
        pid = int(record["servers"][kind]["pid"])
        argv = self.argv[kind]
        os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # our child: EmbeddedServers started it in this process

        def start() -> None:
            with (self.embedded.logs_dir / f"{kind}.log").open("ab") as out:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
            record["servers"][kind]["pid"] = proc.pid  # so that stop() ends the new process
            self.embedded.record_path.write_text(json.dumps(record))

        return start


@pytest_asyncio.fixture
async def own_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Servers]:
    """Embedded servers of the test's own, with the command line of each (valkey rewrites its
    /proc cmdline, so it is caught where devstack spawns it)."""
    argv: dict[str, list[str]] = {}
    spawn = devstack._spawn

    def recording_spawn(cmd: list[str], log_path: Path, **kwargs: object) -> int:
        kind = next(k for k in ("nats", "valkey", "postgres") if k in Path(cmd[0]).name)
        argv[kind] = list(cmd)
        return spawn(cmd, log_path, **kwargs)

    monkeypatch.setattr(devstack, "_spawn", recording_spawn)
    embedded = EmbeddedServers(tmp_path / "servers")
    urls = embedded.start()
    try:
        yield Servers(embedded, urls, argv)
    finally:
        embedded.stop()


async def test_every_service_survives_a_valkey_and_a_nats_restart(
    own_servers: Servers, tmp_path: Path
) -> None:
    prefix = new_prefix()
    urls = own_servers.urls
    await bootstrap(urls.nats, prefix, "binance", TEST_LIMITS)
    stack = ServiceStack(tmp_path / "stack")
    bus = await Bus.connect(urls.nats, prefix, name="test")
    store = aioredis.from_url(urls.redis)
    try:
        await _run(stack, bus, store, own_servers, prefix)
    finally:
        stack.stop()
        await bus.close()
        await store.aclose()


async def _run(stack: ServiceStack, bus: Bus, store: aioredis.Redis, servers: Servers, prefix: str) -> None:
    env = {"DEPTHFLOW_PREFIX": prefix, "DEPTHFLOW_SYMBOLS": ",".join(SYMBOLS),
           "DEPTHFLOW_COLLECTOR_SPEED": "1"}
    await asyncio.to_thread(stack.start, servers.urls, env)
    pids = {p.name: p.pid for p in stack.procs}
    s = bus.subjects
    ckpt = f"{prefix}:ckpt:aggregator-stable:MD:{SYMBOLS[0]}"

    async def decisions() -> int:
        return await subject_count(bus, "RISK", s.risk_order())

    async def checkpoint_seq() -> int:
        try:
            raw = await store.get(ckpt)
        except redis.exceptions.ConnectionError:  # the test's own connection saw the restart too
            return 0
        return 0 if raw is None else int(msgspec.msgpack.decode(raw)["seq"])

    def all_alive() -> None:
        assert stack.alive() == dict.fromkeys(SERVICES, True), stack.exit_codes
        assert {p.name: p.pid for p in stack.procs} == pids

    async def grows(count, by: int = 2, within_s: float = 90.0) -> None:
        start = await count()

        async def more() -> bool:
            return await count() >= start + by

        await wait_for(more, within_s)

    await wait_for(lambda: _at_least(decisions, 2), within_s=90)
    await wait_for(lambda: _at_least(checkpoint_seq, 1), within_s=60)

    # Valkey: the aggregator's and peaks' checkpoints fail meanwhile and are written again after
    saved = await checkpoint_seq()
    servers.stop("valkey")()
    await grows(decisions)
    await wait_for(lambda: _at_least(checkpoint_seq, saved + 1), within_s=60)
    all_alive()

    # NATS: every service waits for the bus (not ready meanwhile), then goes on
    ports = [p.port for p in stack.procs]
    start_nats = servers.stop("nats")
    await wait_for(lambda: _none_ready(ports), within_s=30)
    start_nats()
    await wait_for(lambda: _all_ready(ports), within_s=60)
    await bus.wait_connected()
    await grows(decisions)
    all_alive()

    # stop the source; what was produced went through every stage exactly once
    collector = next(p for p in stack.procs if p.name == "collector")
    os.kill(collector.pid, signal.SIGTERM)
    await wait_for(lambda: _gone(stack), within_s=30)

    async def caught_up() -> bool:
        depth = await subject_count(bus, "MD", s.md_depth())
        return depth > 0 and await decisions() == depth

    await wait_for(caught_up, within_s=120)
    await assert_exactly_once(bus)


async def _at_least(count, n: int) -> bool:
    return await count() >= n


async def _none_ready(ports: list[int]) -> bool:
    return not any(readyz(p) for p in ports)


async def _all_ready(ports: list[int]) -> bool:
    return all(readyz(p) for p in ports)


async def _gone(stack: ServiceStack) -> bool:
    return not stack.alive()["collector"]

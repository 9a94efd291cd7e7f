"""The chart's bootstrap Job, run as rendered (command, arguments, environment) against real
servers: streams, KV buckets, trading state and risk's migrations, idempotent on upgrade."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import asyncpg

from depthflow.common.bus import Bus
from depthflow.common.subjects import Subjects
from depthflow.devstack.testing.servers import Isolated
from tests.deploy.chart import objects, one, release_values, render_values


def job_container(prefix: str) -> dict[str, Any]:
    values = release_values("risk", "stable", extra={"config": {"runtime": {"prefix": prefix}}})
    job = one(objects(render_values("risk", values)), "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


async def run_job(container: dict[str, Any], isolated: Isolated, **extra: str) -> tuple[int, str]:
    """Run the Job's container command here, its Secret references given the test's servers."""
    secrets = {
        "DEPTHFLOW_NATS_URL": isolated.urls.nats,
        "DEPTHFLOW_POSTGRES_URL": isolated.urls.postgres,
        "DEPTHFLOW_REDIS_URL": isolated.urls.redis,
    }
    env = {e["name"]: e["value"] if "value" in e else secrets[e["name"]] for e in container["env"]}
    command = [sys.executable if c == "python" else c for c in container["command"]]
    proc = await asyncio.create_subprocess_exec(
        *command,
        *container["args"],
        env={**env, **extra, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_bootstrap_job_prepares_bus_and_ledger_and_repeats_harmlessly(isolated: Isolated) -> None:
    container = job_container(isolated.prefix)
    code, out = await run_job(container, isolated)
    assert code == 0, out
    assert "migrations applied ['" in out  # risk's SQL applied now
    bus = await Bus.connect(isolated.urls.nats, isolated.prefix)
    try:
        await bus.verify()  # every stream with the subjects the services expect
        kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
        assert (await kv.get(Subjects.trading_state_key("binance"))).value == b"ACTIVE"
    finally:
        await bus.close()
    conn = await asyncpg.connect(isolated.urls.postgres)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'risk'") > 0
    finally:
        await conn.close()
    code, out = await run_job(container, isolated)  # the pre-upgrade run
    assert code == 0, out
    assert "migrations applied []" in out


async def test_bootstrap_job_refuses_a_misspelt_setting(isolated: Isolated) -> None:
    code, out = await run_job(job_container(isolated.prefix), isolated, DEPTHFLOW_SYMBOL="BTCUSDT")
    assert code == 2
    assert "unknown variable DEPTHFLOW_SYMBOL" in out

"""Postgres (or Redis) unreachable under a running risk: every signal still gets exactly one
decision, ``infrastructure_unavailable``, at once (no retries, no dead letter), ``/readyz`` says
not ready, and the decisions are in the ledger once the server is back; then risk trades again on
the clients' new connections (asyncpg's pool and redis-py reconnect by themselves).

The outage is a relay between risk and the session's server that the test cuts and restores
(tests/faults/tcp_proxy.py): real sockets, the real server, only the path fails.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from depthflow.common.messages import OrderApproved
from depthflow.ctl.stack import readyz
from tests.conftest import subject_count, wait_for
from tests.faults.tcp_proxy import TcpProxy
from tests.integration.test_bad_values import retries
from tests.integration.test_risk_untrusted import ENV, book, decisions, publish_marks, publish_signals, signal


async def _ready(port: int) -> bool:
    return await asyncio.to_thread(readyz, port)


async def _wait_ready(port: int, ready: bool) -> None:
    async def reached() -> bool:
        return await _ready(port) == ready

    await wait_for(reached, within_s=30)


@pytest.mark.parametrize("server", ["postgres", "redis"])
async def test_an_outage_gives_one_infrastructure_unavailable_decision_per_signal(
    stack, bus, isolated, server
):
    url = getattr(isolated.urls, server)
    async with TcpProxy.to_url(url) as proxy:
        s = await stack(
            "risk", **{f"DEPTHFLOW_{server.upper()}_URL": proxy.rewrite(url)},
            DEPTHFLOW_RISK_STORAGE_PROBE_INTERVAL_S="3", **ENV,
        )
        port = s.procs[0].port
        await publish_marks(bus, book())

        proxy.cut()
        # before the next probe: this one meets the broken connection in its own decision
        await publish_signals(bus, signal("outage-0"))
        await _wait_ready(port, False)
        # risk knows now: these are answered without waiting on storage
        await publish_signals(bus, signal("outage-1"), signal("outage-2"))
        during = await decisions(bus, 3)
        assert {d.reason for d in during.values()} == {"infrastructure_unavailable"}
        assert await subject_count(bus, "DLQ", bus.subjects.dlq()) == 0
        assert await asyncio.to_thread(retries, s) == {"risk": 0}  # answered, never handed back
        assert not await _ready(port)

        proxy.restore()
        await _wait_ready(port, True)
        conn = await asyncpg.connect(isolated.urls.postgres)
        try:
            rows = await conn.fetch("SELECT signal_id, reason FROM risk.decisions")
        finally:
            await conn.close()
        assert {r["signal_id"]: r["reason"] for r in rows} == {
            k: "infrastructure_unavailable" for k in during
        }

        # the pool reconnected by itself: the next signal is decided normally
        await publish_marks(bus, book())
        await publish_signals(bus, signal("after"))
        after = await decisions(bus, 4)
        assert isinstance(after["after"], OrderApproved)
        assert await subject_count(bus, "DLQ", bus.subjects.dlq()) == 0

        # with no signal at all, the probe alone turns /readyz to 503 and back
        proxy.cut()
        await _wait_ready(port, False)
        proxy.restore()
        await _wait_ready(port, True)


async def test_a_decision_kept_during_an_outage_survives_a_restart_of_risk(stack, bus, isolated):
    url = isolated.urls.postgres
    async with TcpProxy.to_url(url) as proxy:
        env = {"DEPTHFLOW_POSTGRES_URL": proxy.rewrite(url), **ENV}
        first = await stack("risk", **env)
        await publish_marks(bus, book())
        proxy.cut()
        await publish_signals(bus, signal("kept"))
        assert (await decisions(bus, 1))["kept"].reason == "infrastructure_unavailable"
        await asyncio.to_thread(first.stop)  # Postgres still unreachable: only Redis has it

        proxy.restore()
        await stack("risk", **env)

        async def recorded() -> bool:
            conn = await asyncpg.connect(url)
            try:
                return await conn.fetchval(
                    "SELECT reason FROM risk.decisions WHERE signal_id = 'kept'"
                ) == "infrastructure_unavailable"
            finally:
                await conn.close()

        await wait_for(recorded, within_s=30)

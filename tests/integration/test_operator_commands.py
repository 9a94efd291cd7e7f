"""``depthflow halt`` / ``resume`` act on a real venue or fail loudly: a misspelt venue must not
print success (and exit 0) while the real one keeps trading. ``depthflow bootstrap`` sizes the
streams from the retention plan for ``--symbols`` and the collector's depth, or refuses a budget
too small for it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from nats.js.errors import NotFoundError

from depthflow.common.bus import Bus, StreamLimits, planned_limits
from depthflow.common.kvkeys import live_entries
from depthflow.common.retention import Load
from depthflow.common.subjects import STREAM_DOMAINS, Subjects
from depthflow.ctl.control import RefusedCommand, bootstrap, set_trading_state
from depthflow.ctl.streamplan import plan_streams
from depthflow.devstack.testing.plugin import TEST_LIMITS
from depthflow.devstack.testing.servers import Isolated


def depthflow(iso: Isolated, *args: str, nats_url: str | None = None,
              settings: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPTHFLOW_")}
    env |= iso.urls.as_env() | (settings or {})
    if nats_url is not None:
        env["DEPTHFLOW_NATS_URL"] = nats_url
    return subprocess.run([sys.executable, "-m", "depthflow.ctl", "--prefix", iso.prefix, *args],
                          env=env, capture_output=True, text=True, timeout=60)


async def trading_state(bus: Bus, venue: str) -> bytes:
    kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
    return (await kv.get(Subjects.trading_state_key(venue))).value or b""


async def test_halt_and_resume_report_the_real_transition(bus: Bus, isolated: Isolated) -> None:
    await bootstrap(isolated.urls.nats, isolated.prefix, "binance", TEST_LIMITS)
    done = await asyncio.to_thread(depthflow, isolated, "--venue", "binance", "halt")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trading state ACTIVE -> HALTED (venue binance)" in done.stdout
    assert await trading_state(bus, "binance") == b"HALTED"
    done = await asyncio.to_thread(depthflow, isolated, "--venue", "binance", "resume")
    assert "trading state HALTED -> ACTIVE (venue binance)" in done.stdout
    assert await trading_state(bus, "binance") == b"ACTIVE"


async def test_an_unknown_venue_is_refused_and_nothing_is_written(bus: Bus, isolated: Isolated) -> None:
    await bootstrap(isolated.urls.nats, isolated.prefix, "binance", TEST_LIMITS)
    done = await asyncio.to_thread(depthflow, isolated, "--venue", "nosuchvenue", "halt")
    assert done.returncode == 2
    assert "venue 'nosuchvenue' has no trading state (venues: binance)" in done.stdout
    assert "->" not in done.stdout
    kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
    assert list(await live_entries(kv)) == [Subjects.trading_state_key("binance")]
    with pytest.raises(RefusedCommand, match="has no trading state"):
        await set_trading_state(isolated.urls.nats, isolated.prefix, "nosuchvenue", "HALTED")
    with pytest.raises(RefusedCommand, match="venue"):
        await set_trading_state(isolated.urls.nats, isolated.prefix, "bad.venue", "HALTED")


async def test_a_failure_exits_non_zero_without_printing_the_password(isolated: Isolated) -> None:
    await bootstrap(isolated.urls.nats, isolated.prefix, "binance", TEST_LIMITS)
    password = isolated.urls.nats.split("@")[0].rsplit(":", 1)[1]
    wrong = isolated.urls.nats.replace(password, "wrong-password")
    done = await asyncio.to_thread(depthflow, isolated, "halt", nats_url=wrong)
    assert done.returncode == 1
    assert "halt failed" in done.stdout
    assert "wrong-password" not in done.stdout + done.stderr


async def assert_stream_limits(nats_url: str, prefix: str, want: dict[str, StreamLimits]) -> None:
    """Every stream of ``prefix`` on the server holds exactly ``want``'s age and byte limits."""
    bus = await Bus.connect(nats_url, prefix)
    try:
        for name in STREAM_DOMAINS:
            cfg = (await bus.js.stream_info(bus.subjects.stream(name))).config
            assert cfg.max_bytes == want[name].max_bytes, name
            assert cfg.max_age == pytest.approx(want[name].max_age_s, rel=1e-9), name
    finally:
        await bus.close()


async def test_bootstrap_sizes_the_streams_from_the_plan(isolated: Isolated) -> None:
    settings = {"DEPTHFLOW_COLLECTOR_DEPTH": "1000", "DEPTHFLOW_STREAM_BUDGET_GIB": "1.5"}
    done = await asyncio.to_thread(depthflow, isolated, "--symbols", "SOLFDUSD", "bootstrap",
                                   settings=settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[depthflow] streams {plan_streams(1, environ=settings).description}; KV" in done.stdout
    assert "bootstrap done" in done.stdout
    want = planned_limits(Load(symbols=1, depth_levels=1000), budget_gib=1.5)
    await assert_stream_limits(isolated.urls.nats, isolated.prefix, want)


async def test_a_budget_too_small_for_the_plan_is_refused(isolated: Isolated) -> None:
    done = await asyncio.to_thread(depthflow, isolated, "bootstrap",
                                   settings={"DEPTHFLOW_STREAM_BUDGET_GIB": "0.2"})
    assert done.returncode == 2
    assert "refused: a stream budget of 0.20 GiB keeps only" in done.stdout
    assert "raise stream_budget_gib or lower the depth" in done.stdout
    bus = await Bus.connect(isolated.urls.nats, isolated.prefix)
    try:
        with pytest.raises(NotFoundError):
            await bus.js.stream_info(bus.subjects.stream("MD"))  # nothing was created
    finally:
        await bus.close()

"""Shared test helpers: run services as real processes in a test's namespace."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from depthflow.common.bus import Bus
from depthflow.common.codec import Decoder
from depthflow.ctl.control import bootstrap
from depthflow.ctl.stack import ServiceStack
from depthflow.devstack.testing.plugin import TEST_LIMITS
from depthflow.devstack.testing.servers import Isolated

# Hypothesis: "ci" (the default, what make test runs) draws the same examples on every run, so a
# property cannot pass on one run and fail on the next (derandomize; Hypothesis then keeps no
# database, by its own rule). "explore" (DEPTHFLOW_HYPOTHESIS=explore) draws new examples and
# keeps every failing one in tests/hypothesis-examples, in the repo: commit it, and pin the
# example in the test with @example so that ci runs it too.
EXAMPLES = Path(__file__).parent / "hypothesis-examples"
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", database=DirectoryBasedExampleDatabase(EXAMPLES), deadline=None,
                          print_blob=True)
settings.load_profile(os.environ.get("DEPTHFLOW_HYPOTHESIS", "ci"))


@pytest_asyncio.fixture
async def stack(isolated: Isolated, tmp_path) -> AsyncIterator[Callable[..., Awaitable[ServiceStack]]]:
    """Start services as separate processes against the test's servers and namespace."""
    stacks: list[ServiceStack] = []

    async def start(*services: str, **env: str) -> ServiceStack:
        await bootstrap(isolated.urls.nats, isolated.prefix, "binance", TEST_LIMITS)
        s = ServiceStack(tmp_path / f"stack{len(stacks)}")
        stacks.append(s)
        full_env = {"DEPTHFLOW_PREFIX": isolated.prefix, **env}
        await asyncio.to_thread(s.start, isolated.urls, full_env, services=services)
        return s

    yield start
    for s in stacks:
        await asyncio.to_thread(s.stop)


async def read_all(bus: Bus, stream: str, subject: str, type_, idle_s: float = 0.5) -> list:
    """Return every message on ``subject`` in ``stream`` (an ephemeral ordered read)."""
    dec = Decoder(type_)
    sub = await bus.js.subscribe(subject, stream=bus.subjects.stream(stream), ordered_consumer=True)
    out = []
    try:
        while True:
            try:
                m = await sub.next_msg(timeout=idle_s)
            except TimeoutError:
                return out
            out.append((m, dec.decode(m.data)))
    finally:
        await sub.unsubscribe()


async def wait_for(predicate: Callable[[], Awaitable[bool]], within_s: float = 60.0) -> None:
    """Poll ``predicate`` until true, or fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"condition not met within {within_s}s")


async def subject_count(bus: Bus, stream: str, subject: str) -> int:
    info = await bus.js.stream_info(bus.subjects.stream(stream), subjects_filter=subject)
    return sum((info.state.subjects or {}).values())

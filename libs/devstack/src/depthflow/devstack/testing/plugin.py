"""pytest plugin (loaded from the root ``pyproject.toml``): real servers, isolated per test.

- ``servers``: one set of real servers for the whole session (see :mod:`.servers`).
- ``isolated``: a unique prefix and database for one test, removed afterwards.
- ``bus``: a connected :class:`~depthflow.common.bus.Bus` in the test's namespace, bootstrapped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from depthflow.common.bus import Bus, planned_limits
from depthflow.common.retention import Load
from depthflow.common.subjects import STREAM_DOMAINS
from depthflow.devstack import ServerUrls
from depthflow.devstack.testing.servers import Isolated, drop_database, isolate, session_servers

TEST_LIMITS = planned_limits(Load(symbols=2, depth_levels=1000), budget_gib=2.0)
"""Each test namespace's streams: sized like production, within 2 GiB, because JetStream reserves
every stream's ``max_bytes`` from the server's store and tests keep a few namespaces alive."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.slow`` soaks unless ``DEPTHFLOW_SLOW=1``."""
    if os.environ.get("DEPTHFLOW_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow soak: set DEPTHFLOW_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerUrls]:
    # Outside pytest's own tmp tree: pytest resets its permissions at the next session start,
    # which the embedded Postgres (running as another user) needs to traverse.
    root = Path(tempfile.mkdtemp(prefix="depthflow-test-"))
    urls, teardown = session_servers(root)
    try:
        yield urls
    finally:
        teardown()
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def isolated(servers: ServerUrls) -> AsyncIterator[Isolated]:
    iso = await isolate(servers)
    try:
        yield iso
    finally:
        await _cleanup(iso, servers)


async def _cleanup(iso: Isolated, servers: ServerUrls) -> None:
    import redis.asyncio as aioredis

    with contextlib.suppress(Exception):
        bus = await Bus.connect(servers.nats, iso.prefix)
        for name in STREAM_DOMAINS:
            with contextlib.suppress(Exception):
                await bus.js.delete_stream(bus.subjects.stream(name))
        for bucket in ("routes", "control"):
            with contextlib.suppress(Exception):
                await bus.js.delete_key_value(bus.subjects.kv_bucket(bucket))
        await bus.close()
    r = aioredis.from_url(servers.redis)
    try:
        keys = [k async for k in r.scan_iter(match=f"{iso.prefix}:*")]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()
    await drop_database(servers.postgres, iso.prefix)


@pytest_asyncio.fixture
async def bus(isolated: Isolated) -> AsyncIterator[Bus]:
    b = await Bus.connect(isolated.urls.nats, isolated.prefix, name="test")
    await b.bootstrap(TEST_LIMITS)
    try:
        yield b
    finally:
        await b.close()

"""The one place tests get real NATS, PostgreSQL and Redis servers from.

Why one place: every suite (integration, contract, e2e) must run against the same kind of
servers, chosen the same way, so a green run means the same thing everywhere. The order is:

1. URLs from the environment (``DEPTHFLOW_NATS_URL``, ``DEPTHFLOW_POSTGRES_URL``,
   ``DEPTHFLOW_REDIS_URL``); each one set replaces its server from the next steps;
2. testcontainers, when a Docker engine answers;
3. otherwise :class:`~depthflow.devstack.EmbeddedServers` (pip-installed binaries).

``DEPTHFLOW_TEST_SERVERS=embedded`` or ``=docker`` skips the detection in step 2/3.

Whatever is chosen, the NATS server's version is checked, so a run pointed at Debian's
nats-server 2.9 on port 4222 fails at once with a clear message.

Tests share the session's servers and isolate themselves by name instead: a database per test
and a unique prefix for streams, subjects and Redis keys (:class:`Isolated`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from depthflow.devstack import (
    NATS_URL_ENV,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    EmbeddedServers,
    ServerUrls,
    require_nats_version,
    servers_from_env,
)

__all__ = [
    "SERVERS_MODE_ENV",
    "Isolated",
    "create_database",
    "database_url",
    "docker_available",
    "drop_database",
    "isolate",
    "new_prefix",
    "session_servers",
]

log = logging.getLogger(__name__)

#: "auto" (default), "embedded" or "docker": which fallback provides servers not set by URL.
SERVERS_MODE_ENV = "DEPTHFLOW_TEST_SERVERS"

NATS_IMAGE = "nats:2.11"
POSTGRES_IMAGE = "postgres:17"
VALKEY_IMAGE = "valkey/valkey:8"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


def _noop() -> None:
    return None


def docker_available(timeout: float = 5.0) -> bool:
    """Whether a Docker engine answers a ping within ``timeout`` seconds.

    Uses the docker SDK (what testcontainers itself uses), so it honours ``DOCKER_HOST`` and
    needs no docker CLI.
    """
    try:
        import docker

        client = docker.from_env(timeout=max(1, int(timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _docker_servers(need: set[str]) -> tuple[dict[str, str], Callable[[], None]]:
    """Start one container per needed server; small on purpose (untested without Docker)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    containers: list[Any] = []

    def teardown() -> None:
        for container in reversed(containers):
            with contextlib.suppress(Exception):
                container.stop()

    urls: dict[str, str] = {}
    try:
        if "nats" in need:
            nats = DockerContainer(NATS_IMAGE).with_command("-js").with_exposed_ports(4222)
            containers.append(nats)
            nats.start()
            wait_for_logs(nats, "Server is ready", timeout=60)
            host, port = nats.get_container_host_ip(), nats.get_exposed_port(4222)
            urls["nats"] = f"nats://{host}:{port}"
        if "postgres" in need:
            pg = PostgresContainer(
                POSTGRES_IMAGE,
                username="postgres",
                password="postgres",
                dbname="postgres",
                driver=None,
            )
            containers.append(pg)
            pg.start()
            urls["postgres"] = pg.get_connection_url()
        if "redis" in need:
            valkey = RedisContainer(VALKEY_IMAGE)
            containers.append(valkey)
            valkey.start()
            host, port = valkey.get_container_host_ip(), valkey.get_exposed_port(6379)
            urls["redis"] = f"redis://{host}:{port}/0"
    except BaseException:
        teardown()
        raise
    return urls, teardown


def session_servers(
    tmp_root: Path, environ: Mapping[str, str] | None = None
) -> tuple[ServerUrls, Callable[[], None]]:
    """Real servers for a test session: their URLs and a teardown callable (call it once).

    ``tmp_root`` holds the embedded servers' state (``tmp_root/servers``) when they are used.
    """
    env = os.environ if environ is None else environ
    urls = servers_from_env(env)
    teardown: Callable[[], None] = _noop
    if urls is None:
        need = {
            kind
            for kind, var in (
                ("nats", NATS_URL_ENV),
                ("postgres", POSTGRES_URL_ENV),
                ("redis", REDIS_URL_ENV),
            )
            if not env.get(var)
        }
        mode = (env.get(SERVERS_MODE_ENV) or "auto").strip().lower()
        if mode not in ("auto", "embedded", "docker"):
            raise ValueError(f"{SERVERS_MODE_ENV}={mode!r}; expected auto, embedded or docker")
        if mode == "docker" or (mode == "auto" and docker_available()):
            log.info("test servers: testcontainers for %s", sorted(need))
            found, teardown = _docker_servers(need)
            placeholder = ServerUrls(nats="", postgres="", redis="")
            urls = replace(placeholder, **found).with_env_overrides(env)
        else:
            log.info("test servers: embedded, state under %s", tmp_root / "servers")
            embedded = EmbeddedServers(tmp_root / "servers")
            urls = embedded.start().with_env_overrides(env)
            teardown = embedded.stop
    try:
        require_nats_version(urls.nats)
    except BaseException:
        teardown()
        raise
    return urls, teardown


# --------------------------------------------------------------------------------------------
# Per-test isolation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Isolated:
    """What one test may touch on the shared servers, so tests can run in any order.

    ``urls.postgres`` points at the test's own database; ``prefix`` starts every stream name,
    subject and Redis key the test creates.
    """

    urls: ServerUrls
    prefix: str  # e.g. "t3f9a2c1": lowercase letters and digits, no dots


def new_prefix() -> str:
    """A fresh prefix: valid as a stream name, subject token, Redis key part and DB name."""
    return "t" + secrets.token_hex(4)


def _check_identifier(name: str) -> None:
    # Database names are interpolated into SQL (CREATE DATABASE takes no parameters).
    if not _IDENTIFIER.match(name):
        raise ValueError(f"database name {name!r} must match {_IDENTIFIER.pattern}")


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` with its database replaced by ``name`` (credentials and query kept)."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` via ``admin_url`` and return the URL that connects to it."""
    import asyncpg

    _check_identifier(name)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` even if a leaked connection still uses it; fine if absent."""
    import asyncpg

    _check_identifier(name)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def isolate(urls: ServerUrls, prefix: str | None = None) -> Isolated:
    """A fresh prefix plus a database of that name; undo with ``drop_database``."""
    prefix = prefix or new_prefix()
    db_url = await create_database(urls.postgres, prefix)
    return Isolated(urls=replace(urls, postgres=db_url), prefix=prefix)

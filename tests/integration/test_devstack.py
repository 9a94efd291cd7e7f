"""Embedded servers: real processes, no mocks.

Proves what `depthflow up` / `depthflow down` promise: the three servers answer, start() is
idempotent, a half-dead stack heals, and stop() then start() loses nothing that was written.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis
import redis.exceptions

from depthflow.devstack import (
    NATS_URL_ENV,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    EmbeddedServers,
    ServerUrls,
    nats_server_version,
    require_nats_version,
    servers_from_env,
)
from depthflow.devstack.testing.servers import (
    create_database,
    drop_database,
    isolate,
    session_servers,
)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    servers = EmbeddedServers(tmp_path_factory.mktemp("devstack"))
    try:
        yield servers
    finally:
        servers.stop()


def _pids(servers: EmbeddedServers) -> dict[str, int]:
    record = json.loads(servers.record_path.read_text())
    return {kind: info["pid"] for kind, info in record["servers"].items()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # The test process is the servers' parent: an exited server lingers as a zombie until
    # reaped, and a zombie still answers kill(pid, 0).
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    return state != "Z"


def _eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def fake_nats_server(version: str) -> AsyncIterator[str]:
    """A TCP server that greets like nats-server does, announcing ``version``."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"FAKE","version":"' + version.encode() + b'"}\r\n')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def test_start_is_idempotent(embedded: EmbeddedServers) -> None:
    t0 = time.monotonic()
    urls = embedded.start()
    first = time.monotonic() - t0
    pids = _pids(embedded)

    t0 = time.monotonic()
    again = embedded.start()
    second = time.monotonic() - t0

    assert again == urls
    assert _pids(embedded) == pids
    assert embedded.running() == urls
    for url in (urls.nats, urls.postgres, urls.redis):
        assert "@127.0.0.1:" in url or "//127.0.0.1:" in url
    assert urls.postgres.startswith("postgresql://postgres:")
    assert urls.postgres.endswith("/postgres")
    assert urls.redis.endswith("/0")
    assert all(_alive(pid) for pid in pids.values())
    print(f"cold start {first:.2f}s, idempotent start {second * 1000:.0f}ms")


async def test_all_three_answer(embedded: EmbeddedServers) -> None:
    urls = embedded.start()

    nc = await nats.connect(urls.nats)
    try:
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.x", b"1")
        assert ack.stream == "T"
        await js.delete_stream("T")
    finally:
        await nc.close()

    conn = await asyncpg.connect(urls.postgres)
    try:
        # the server behind the URL is the one started here: its data dir and its recorded pid
        assert await conn.fetchval("SHOW data_directory") == str(embedded.pg_data)
        pid_file = await conn.fetchval("SELECT pg_read_file('postmaster.pid')")
        assert int(pid_file.split()[0]) == _pids(embedded)["postgres"]
        assert (await conn.fetchval("SHOW server_version")).startswith("18")
    finally:
        await conn.close()

    r = aioredis.from_url(urls.redis)
    try:
        assert await r.ping()
        assert (await r.config_get("appendonly"))["appendonly"] == "yes"
    finally:
        await r.aclose()


async def test_stop_then_start_loses_nothing(embedded: EmbeddedServers) -> None:
    urls = embedded.start()
    nc = await nats.connect(urls.nats)
    try:
        js = nc.jetstream()
        await js.add_stream(name="DURABLE", subjects=["durable.>"])
        await js.publish("durable.a", b"kept")
    finally:
        await nc.close()
    await _execute(urls.postgres, "CREATE TABLE kept (id int PRIMARY KEY, note text)",
                   "INSERT INTO kept VALUES (1, 'written before down')")
    r = aioredis.from_url(urls.redis)
    try:
        await r.set("kept", "written before down")
    finally:
        await r.aclose()

    pids = _pids(embedded)
    t0 = time.monotonic()
    await asyncio.to_thread(embedded.stop)
    stopped_in = time.monotonic() - t0
    assert not any(_alive(pid) for pid in pids.values())
    assert not embedded.record_path.exists()
    assert embedded.running() is None
    await asyncio.to_thread(embedded.stop)  # stopping twice is fine

    t0 = time.monotonic()
    urls = await asyncio.to_thread(embedded.start)
    restarted_in = time.monotonic() - t0
    assert set(_pids(embedded).values()).isdisjoint(pids.values())

    nc = await nats.connect(urls.nats)
    try:
        js = nc.jetstream()
        msg = await js.get_msg("DURABLE", seq=1)
        assert msg.data == b"kept"
        assert msg.subject == "durable.a"
        await js.delete_stream("DURABLE")
    finally:
        await nc.close()
    conn = await asyncpg.connect(urls.postgres)
    try:
        assert await conn.fetchval("SELECT note FROM kept WHERE id = 1") == "written before down"
        await conn.execute("DROP TABLE kept")
    finally:
        await conn.close()
    r = aioredis.from_url(urls.redis)
    try:
        assert await r.get("kept") == b"written before down"
        await r.delete("kept")
    finally:
        await r.aclose()
    print(f"stop {stopped_in:.2f}s, warm start {restarted_in:.2f}s")


async def test_start_heals_a_half_dead_stack(embedded: EmbeddedServers) -> None:
    urls = embedded.start()
    pids = _pids(embedded)
    os.kill(pids["valkey"], signal.SIGKILL)
    assert await asyncio.to_thread(_eventually, lambda: embedded.running() is None)

    healed = await asyncio.to_thread(embedded.start)
    new_pids = _pids(embedded)
    assert set(new_pids.values()).isdisjoint(pids.values())
    assert not _alive(pids["nats"])
    assert not _alive(pids["postgres"])
    assert embedded.running() == healed
    r = aioredis.from_url(healed.redis)
    try:
        assert await r.ping()
    finally:
        await r.aclose()
    assert healed.nats == urls.nats  # free ports are reused, so URLs usually stay put


async def test_require_nats_version(embedded: EmbeddedServers) -> None:
    urls = embedded.start()
    version = await asyncio.to_thread(require_nats_version, urls.nats)
    assert version >= (2, 11, 0)
    assert nats_server_version(urls.nats) == version

    async with fake_nats_server("2.9.25") as old:
        with pytest.raises(RuntimeError, match=r"is 2\.9\.25; depthflow needs ≥ 2\.11") as err:
            await asyncio.to_thread(require_nats_version, old)
        assert old in str(err.value)
        assert "consumer pause" in str(err.value)

    async with fake_nats_server("2.11.0-RC.1") as new_enough:
        assert await asyncio.to_thread(require_nats_version, new_enough) == (2, 11, 0)


def test_urls_from_environment() -> None:
    embedded = ServerUrls(
        nats="nats://127.0.0.1:1", postgres="postgresql://x@127.0.0.1:2/p", redis="redis://h:3/0"
    )
    assert servers_from_env({}) is None
    assert servers_from_env({NATS_URL_ENV: "nats://elsewhere:4222"}) is None
    full = {
        NATS_URL_ENV: "nats://n:4222",
        POSTGRES_URL_ENV: "postgresql://u@p:5432/db",
        REDIS_URL_ENV: "redis://r:6379/1",
    }
    assert servers_from_env(full) == ServerUrls(
        nats="nats://n:4222", postgres="postgresql://u@p:5432/db", redis="redis://r:6379/1"
    )
    mixed = embedded.with_env_overrides({POSTGRES_URL_ENV: "postgresql://u@p:5432/db"})
    assert mixed == ServerUrls(
        nats=embedded.nats, postgres="postgresql://u@p:5432/db", redis=embedded.redis
    )
    assert embedded.with_env_overrides({REDIS_URL_ENV: ""}) == embedded


async def test_per_test_database(embedded: EmbeddedServers) -> None:
    urls = embedded.start()
    iso = await isolate(urls)
    assert iso.prefix.isalnum()
    assert iso.prefix.islower()
    assert iso.urls.nats == urls.nats
    assert iso.urls.postgres.endswith(f"/{iso.prefix}")
    conn = await asyncpg.connect(iso.urls.postgres)
    assert await conn.fetchval("SELECT current_database()") == iso.prefix
    # A connection left open must not block the drop.
    await drop_database(urls.postgres, iso.prefix)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await conn.fetchval("SELECT 1")
    await conn.close()
    admin = await asyncpg.connect(urls.postgres)
    try:
        exists = await admin.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", iso.prefix
        )
        assert exists == 0
    finally:
        await admin.close()
    await drop_database(urls.postgres, iso.prefix)  # absent is fine

    db_url = await create_database(urls.postgres, "plain_name")
    assert db_url == urls.postgres.rsplit("/", 1)[0] + "/plain_name"
    await drop_database(urls.postgres, "plain_name")
    with pytest.raises(ValueError, match="must match"):
        await create_database(urls.postgres, 'bad"; DROP DATABASE postgres; --')


async def test_session_servers_prefers_environment(
    embedded: EmbeddedServers, tmp_path: Path
) -> None:
    urls = embedded.start()
    env = urls.as_env()
    chosen, teardown = await asyncio.to_thread(session_servers, tmp_path, env)
    assert chosen == urls
    teardown()
    assert embedded.running() == urls  # the environment's servers are not ours to stop
    assert not (tmp_path / "servers").exists()

    async with fake_nats_server("2.9.25") as old:
        env[NATS_URL_ENV] = old
        with pytest.raises(RuntimeError, match=r"2\.9\.25"):
            await asyncio.to_thread(session_servers, tmp_path, env)


async def test_session_servers_embedded_fallback(embedded: EmbeddedServers, tmp_path: Path) -> None:
    outer = embedded.start()
    env = {"DEPTHFLOW_TEST_SERVERS": "embedded", REDIS_URL_ENV: outer.redis}
    chosen, teardown = await asyncio.to_thread(session_servers, tmp_path, env)
    try:
        assert chosen.redis == outer.redis  # the variable that is set wins
        assert chosen.nats != outer.nats
        assert chosen.postgres != outer.postgres
        conn = await asyncpg.connect(chosen.postgres)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(teardown)
    assert EmbeddedServers(tmp_path / "servers").running() is None


# ---- credentials: nothing listens without authentication ------------------------------------


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{parts.hostname}:{parts.port}"))


async def test_every_server_refuses_a_connection_without_credentials(
    embedded: EmbeddedServers,
) -> None:
    urls = embedded.start()
    creds = embedded.credentials()
    assert creds is not None
    assert creds.nats_password in urls.nats
    assert creds.postgres_password in urls.postgres
    assert creds.valkey_password in urls.redis

    for url in (_without_password(urls.nats), urls.nats.replace(creds.nats_password, "wrong")):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=2)

    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(urls.postgres.replace(creds.postgres_password, "wrong"))
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        # no password at all: the server asks for one (scram), so no trust line matched
        await asyncpg.connect(_without_password(urls.postgres), password="")
    hba = (embedded.pg_data / "pg_hba.conf").read_text()
    assert "trust" not in hba.replace("no trust", "")

    r = aioredis.from_url(_without_password(urls.redis))
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await r.set("written", "without a password")
    finally:
        await r.aclose()
    r = aioredis.from_url(urls.redis)
    try:
        assert await r.ping()
    finally:
        await r.aclose()


def test_credentials_are_private_and_kept_across_restarts(embedded: EmbeddedServers) -> None:
    urls = embedded.start()
    creds = embedded.credentials()
    for name in ("credentials.json", "nats.conf", "valkey.conf"):
        assert stat.S_IMODE((embedded.state_dir / name).stat().st_mode) == 0o600, name
    assert not (embedded.state_dir / "pg.pwfile").exists()
    # the hand-over file and the logs hold no secret, and neither does any printed form
    record = embedded.record_path.read_text()
    for password in creds.passwords():
        assert password not in record
        assert password not in repr(urls)
        assert password not in repr(creds)
        assert password not in str(urls.masked())
    assert urls.masked().nats.startswith("nats://depthflow:***@127.0.0.1:")
    assert urls.masked().postgres.startswith("postgresql://postgres:***@127.0.0.1:")

    embedded.stop()
    again = embedded.start()
    assert embedded.credentials() == creds
    assert again == urls


async def test_a_state_folder_from_before_credentials_gets_them(tmp_path: Path) -> None:
    """An older .state: trust auth, no credentials file. The next start closes it, data kept."""
    old = EmbeddedServers(tmp_path / "old")
    try:
        urls = old.start()
        await _execute(urls.postgres, "CREATE TABLE kept (note text)",
                       "INSERT INTO kept VALUES ('from the old run')")
        await asyncio.to_thread(old.stop)
        # what an older depthflow left behind
        old.credentials_path.unlink()
        (old.pg_data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")

        urls = await asyncio.to_thread(old.start)
        creds = old.credentials()
        assert creds is not None
        assert creds.postgres_password in urls.postgres
        conn = await asyncpg.connect(urls.postgres)
        try:
            assert await conn.fetchval("SELECT note FROM kept") == "from the old run"
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(urls.postgres.replace(creds.postgres_password, "wrong"))
    finally:
        await asyncio.to_thread(old.stop)

"""Apply a service's SQL migrations, once each, in file-name order.

Why here: every service that owns tables (risk, ai-fusion) needs the same runner, and a service
must be able to start on an empty database. Each migration runs in its own transaction under a
Postgres advisory lock, so two replicas starting together apply it exactly once.
"""

from __future__ import annotations

import zlib
from importlib import resources

import asyncpg


async def migrate(conn: asyncpg.Connection, schema: str, package: str) -> list[str]:
    """Apply pending ``*.sql`` files from ``package`` (e.g. ``depthflow.risk.migrations``).

    Return the names applied now.
    """
    files = sorted(
        (f for f in resources.files(package).iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    lock = zlib.crc32(f"depthflow-migrate-{schema}".encode())
    applied_now = []
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
        for f in files:
            if f.name in done:
                continue
            async with conn.transaction():
                await conn.execute(f.read_text())
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', f.name
                )
            applied_now.append(f.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied_now

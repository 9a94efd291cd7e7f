"""Create or update the streams, KV buckets and trading state, and apply a service's migrations.

Why in ``libs/common``: on Kubernetes the bootstrap runs as a Job (the Helm chart's
pre-install/pre-upgrade hook) in a service's own image, which holds that service and
``libs/common`` only; the ``depthflow`` CLI (with its dev servers) is in no image. ``depthflow
bootstrap`` and ``depthflow up`` call the same :func:`bootstrap`.

The Job runs ``python -m depthflow.common.bootstrap --service risk --migrations
depthflow.risk.migrations:risk``: settings come from the environment like a service's
(``DEPTHFLOW_NATS_URL``, ``DEPTHFLOW_PREFIX``, ``DEPTHFLOW_SYMBOLS``, ...), so the same loader
refuses a misspelt variable. Streams are sized by the retention plan for the configured symbols
with the collector's default load, within ``stream_budget_gib``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping

import asyncpg
import msgspec
from nats.js.errors import KeyNotFoundError

from depthflow.common.bus import Bus, StreamLimits, planned_limits
from depthflow.common.config import SERVICES, ConfigError, RuntimeConfig, load_config
from depthflow.common.migrations import migrate
from depthflow.common.retention import Load
from depthflow.common.subjects import Subjects

__all__ = ["BootstrapSettings", "bootstrap", "main", "run"]


async def bootstrap(
    nats_url: str, prefix: str, venue: str, limits: dict[str, StreamLimits] | None = None
) -> None:
    """Create or update streams and KV buckets; start trading ACTIVE if no state exists yet.

    ``limits`` come from :func:`depthflow.common.bus.planned_limits` (the default plan if None)."""
    bus = await Bus.connect(nats_url, prefix, name="depthflow-ctl")
    try:
        await bus.bootstrap(limits)
        kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
        try:
            await kv.get(Subjects.trading_state_key(venue))
        except KeyNotFoundError:
            await kv.create(Subjects.trading_state_key(venue), b"ACTIVE")
    finally:
        await bus.close()


class BootstrapSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The shared runtime settings only: the Job has no service section."""

    runtime: RuntimeConfig = RuntimeConfig()


async def run(service: str, migrations: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Bootstrap the bus, then apply ``migrations`` (``package:schema``, or empty for none).

    Return the migrations applied now."""
    package, _, schema = migrations.partition(":")
    if migrations and not (package and schema):
        raise ConfigError(f"--migrations must be package:schema, was {migrations!r}")
    needs = ("nats", "postgres") if migrations else ("nats",)
    rt = load_config(BootstrapSettings, service, environ, needs=needs).runtime
    limits = planned_limits(Load(symbols=len(rt.symbols)), budget_gib=rt.stream_budget_gib)
    await bootstrap(rt.nats_url, rt.prefix, rt.venue, limits)
    if not migrations:
        return []
    conn = await asyncpg.connect(rt.postgres_url, timeout=rt.startup_timeout_s)
    try:
        return await migrate(conn, schema, package)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depthflow.common.bootstrap", allow_abbrev=False)
    parser.add_argument("--service", required=True, choices=SERVICES)
    parser.add_argument("--migrations", default="", help="package:schema of the SQL to apply")
    args = parser.parse_args(argv)
    try:
        applied = asyncio.run(run(args.service, args.migrations))
    except (ConfigError, ValueError) as exc:
        print(f"bootstrap refused: {exc}", file=sys.stderr)
        return 2
    print(f"bootstrap done: streams, KV buckets, trading state; migrations applied {applied}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

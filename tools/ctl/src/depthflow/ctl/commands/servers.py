"""The servers a command talks to, and the summary read from them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from depthflow.common.bus import Bus
from depthflow.ctl.commands.console import say
from depthflow.ctl.summary import Snapshot, collect
from depthflow.devstack import EmbeddedServers, ServerUrls, servers_from_env


def server_urls(state: Path, start: bool) -> tuple[ServerUrls, bool]:
    """Return the server URLs and whether they are embedded ones: the environment's, else the
    state folder's embedded servers (started if asked)."""
    env_urls = servers_from_env()
    if env_urls is not None:
        return env_urls, False
    embedded = EmbeddedServers(state / "servers")
    urls = embedded.start() if start else embedded.running()
    if urls is None:
        raise SystemExit("depthflow is not running (no servers in the state folder)")
    return urls.with_env_overrides(), True


async def _snapshot(urls: ServerUrls, prefix: str, venue: str) -> Snapshot:
    bus = await Bus.connect(urls.nats, prefix, name="depthflow-summary", within_s=5.0)
    try:
        return await collect(bus, urls.postgres, venue)
    finally:
        await bus.close()


def snapshot(urls: ServerUrls, prefix: str, venue: str) -> Snapshot:
    """The summary now (a server that does not answer raises)."""
    return asyncio.run(_snapshot(urls, prefix, venue))


def try_snapshot(urls: ServerUrls, prefix: str, venue: str) -> Snapshot | None:
    """The summary, or None while a server is away (a summary never stops the supervisor)."""
    try:
        return snapshot(urls, prefix, venue)
    except Exception as exc:
        say(f"summary unavailable: {type(exc).__name__}: {exc}")
        return None

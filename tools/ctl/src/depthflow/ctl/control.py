"""Bootstrap the bus and operate the trading state (``depthflow bootstrap | halt | resume``)."""

from __future__ import annotations

from nats.js.errors import KeyNotFoundError

from depthflow.common.bus import Bus
from depthflow.common.subjects import Subjects

SERVICES = ("collector", "aggregator", "peaks", "ai-fusion", "risk")


async def bootstrap(nats_url: str, prefix: str, venue: str) -> None:
    """Create or update streams and KV buckets; start trading ACTIVE if no state exists yet."""
    bus = await Bus.connect(nats_url, prefix, name="depthflow-ctl")
    try:
        await bus.bootstrap()
        kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
        try:
            await kv.get(Subjects.trading_state_key(venue))
        except KeyNotFoundError:
            await kv.create(Subjects.trading_state_key(venue), b"ACTIVE")
    finally:
        await bus.close()


async def set_trading_state(nats_url: str, prefix: str, venue: str, state: str) -> str:
    """Set the trading state (an operator's halt or resume); return the previous one."""
    bus = await Bus.connect(nats_url, prefix, name="depthflow-ctl")
    try:
        kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
        try:
            prev = (await kv.get(Subjects.trading_state_key(venue))).value or b""
        except KeyNotFoundError:
            prev = b""
        await kv.put(Subjects.trading_state_key(venue), state.encode())
        return prev.decode() or "UNKNOWN"
    finally:
        await bus.close()

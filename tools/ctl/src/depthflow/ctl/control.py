"""Bootstrap the bus and operate the trading state (``depthflow bootstrap | halt | resume``)."""

from __future__ import annotations

from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from depthflow.common.bootstrap import bootstrap
from depthflow.common.bus import Bus
from depthflow.common.config import SERVICES
from depthflow.common.kvkeys import live_entries
from depthflow.common.subjects import Subjects

__all__ = ["SERVICES", "RefusedCommand", "bootstrap", "set_trading_state"]

TRADING_STATES = ("ACTIVE", "HALTED")
# An operator waiting on halt wants an answer soon: connect or fail within this bound.
CONNECT_S = 5.0


class RefusedCommand(Exception):
    """An operator command that cannot do what it was asked: the message says why."""


async def set_trading_state(nats_url: str, prefix: str, venue: str, state: str) -> str:
    """Set a venue's trading state (an operator's halt or resume); return the previous one.

    A venue is one that has a trading state, created by ``depthflow bootstrap`` or ``up`` for
    the configured venue: halting a misspelt venue must not print success while the real one
    keeps trading. The write is conditional on the state read, so the transition reported is
    the one made (a concurrent change makes the command fail instead).
    """
    if state not in TRADING_STATES:
        raise RefusedCommand(f"unknown trading state {state!r}; one of {', '.join(TRADING_STATES)}")
    try:
        key = Subjects.trading_state_key(venue)
    except ValueError as exc:
        raise RefusedCommand(str(exc)) from None
    bus = await Bus.connect(nats_url, prefix, name="depthflow-ctl", within_s=CONNECT_S)
    try:
        try:
            kv = await bus.js.key_value(bus.subjects.kv_bucket("control"))
        except BucketNotFoundError:
            raise RefusedCommand("no control bucket: run `depthflow bootstrap` (or `up`) first") from None
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            known = await _known_venues(kv)
            raise RefusedCommand(
                f"venue {venue!r} has no trading state (venues: {', '.join(known) or 'none'}); "
                "a venue gets one from `depthflow --venue VENUE bootstrap`"
            ) from None
        await kv.update(key, state.encode(), last=entry.revision)
        return (entry.value or b"").decode() or "UNKNOWN"
    finally:
        await bus.close()


async def _known_venues(kv: KeyValue) -> list[str]:
    marker = Subjects.trading_state_key("x")[:-1]
    return [k[len(marker):] for k in await live_entries(kv, marker)]

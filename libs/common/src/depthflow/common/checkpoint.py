"""Per-symbol state checkpoints in Redis, tagged with the input stream sequence they include.

Why: a restarted aggregator must not need 48 hours of replay to rebuild its profiles, and must
resume *exactly*: no trade counted twice or lost. The runtime saves a checkpoint between two
messages (never while one is half-applied), so a checkpoint at sequence S holds exactly the
messages up to S. On start it restores that state and replays, without publishing, the messages
after S that the durable consumer had already acknowledged; everything later arrives through the
consumer as usual. One key per symbol lets a symbol's state move on its own (canary lanes).

A save that fails (the store restarting, say) costs nothing but time: the previous checkpoint
still holds an exact earlier state, so the runtime logs the failure and saves again at the next
interval; the connection pool reconnects by itself once the store is back.
"""

from __future__ import annotations

from typing import Protocol, cast

import msgspec
import redis.asyncio as aioredis


class IncompatibleState(ValueError):
    """A saved state in a format this build does not read (an upgrade changed it).

    ``load_state`` raises it; the runtime then treats the symbol as never checkpointed and
    rebuilds its state by replaying the stream from its first retained message. Anything else a
    ``load_state`` raises stops start-up: a state that should be readable and is not is a fault.
    """


class Checkpointed(Protocol):
    """What a handler object offers to be checkpointed."""

    def checkpoint_symbols(self) -> list[str]: ...

    def dump_state(self, symbol: str) -> bytes: ...

    def load_state(self, symbol: str, blob: bytes) -> None: ...


class _Entry(msgspec.Struct, frozen=True):
    seq: int
    state: bytes


class CheckpointStore:
    """Checkpoints of one service lane: ``<prefix>:ckpt:<service>-<lane>:<stream>:<symbol>``."""

    def __init__(self, client: aioredis.Redis, prefix: str, durable: str) -> None:
        self.r = client
        self.base = f"{prefix or 'depthflow'}:ckpt:{durable}"

    @classmethod
    def connect(cls, url: str, prefix: str, durable: str) -> CheckpointStore:
        return cls(
            aioredis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0), prefix, durable
        )

    async def ping(self) -> None:
        """Raise unless the store answers (start-up checks this within its bound)."""
        await self.r.ping()

    async def close(self) -> None:
        await self.r.aclose()

    async def save(self, stream: str, seq: int, states: dict[str, bytes]) -> None:
        """Write every symbol's state at ``seq`` in one transaction."""
        if not states:
            return
        async with self.r.pipeline(transaction=True) as p:
            for symbol, blob in states.items():
                p.set(f"{self.base}:{stream}:{symbol}", msgspec.msgpack.encode(_Entry(seq, blob)))
            await p.execute()

    async def load(self, stream: str) -> dict[str, tuple[int, bytes]]:
        """Return ``symbol -> (seq, state)`` for ``stream``."""
        out: dict[str, tuple[int, bytes]] = {}
        prefix = f"{self.base}:{stream}:"
        async for key in self.r.scan_iter(match=f"{prefix}*"):
            # the client is built without decode_responses: values are bytes
            raw = cast("bytes | None", await self.r.get(key))
            if raw is None:
                continue
            entry = msgspec.msgpack.decode(raw, type=_Entry)
            out[key.decode()[len(prefix) :]] = (entry.seq, entry.state)
        return out

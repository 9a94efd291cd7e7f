"""Hot state in Redis: the marks' mirror, the order-rate counter, and the trading-state mirror.

Nothing here is a record of money: the ledger is. If Redis cannot be read, risk rejects
(fails closed) rather than trading on guesses. Marks live in risk's memory; Redis holds a copy
only so a restarted risk has them at once. A stale or missing copy is harmless: a mark carries
its book's ``ts_init`` and the checks refuse one that is too old.
"""

from __future__ import annotations

import time
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis
import redis.exceptions

from depthflow.common.messages import RejectReason, TradingState
from depthflow.risk.checks import Mark

# What "Redis is unreachable" looks like (redis-py's errors are not OSErrors).
HOT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class HotState:
    """Keys live under ``<prefix>:risk:`` so deployments and tests never collide."""

    def __init__(self, client: aioredis.Redis, prefix: str, venue: str) -> None:
        self.r = client
        self.base = f"{prefix or 'depthflow'}:risk:{venue}"

    @classmethod
    def connect(cls, url: str, prefix: str, venue: str) -> HotState:
        return cls(aioredis.from_url(url, socket_timeout=2.0), prefix, venue)

    async def close(self) -> None:
        await self.r.aclose()

    async def set_mark(self, symbol: str, mark: Mark) -> None:
        blob = msgspec.msgpack.encode((mark.bid, mark.ask, mark.ts_ns))
        await self.r.hset(f"{self.base}:marks", symbol, blob)

    async def marks(self) -> dict[str, Mark]:
        """The mirrored marks; an entry in another format is skipped (no mark: fail closed)."""
        raw = await self._hash(f"{self.base}:marks", tuple[float, float, int])
        return {symbol: Mark(*fields) for symbol, fields in raw.items()}

    def _minute_key(self, now_s: float | None = None) -> str:
        return f"{self.base}:orders:{int((now_s or time.time()) // 60)}"

    async def orders_this_minute(self) -> int:
        v = await self.r.get(self._minute_key())
        return int(v or 0)

    async def count_order(self) -> None:
        key = self._minute_key()
        async with self.r.pipeline(transaction=True) as p:
            p.incr(key)
            p.expire(key, 180)
            await p.execute()

    async def mirror_state(self, state: TradingState) -> None:
        await self.r.set(f"{self.base}:trading-state", state)

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except HOT_ERRORS:
            return False

    # Decisions made while the ledger was unreachable, spooled here (when Redis is up) so that a
    # restart before Postgres returns still records them: signal_id -> (signal bytes, reason, detail).

    async def spool(self, signal_id: str, signal: bytes, reason: RejectReason, detail: str) -> None:
        blob = msgspec.msgpack.encode((signal, reason, detail))
        await self.r.hset(f"{self.base}:kept", signal_id, blob)

    async def spooled(self) -> dict[str, tuple[bytes, RejectReason, str]]:
        """The spooled decisions (one in another format, or with a reason outside the closed set,
        is skipped: it stays on ``risk.order.*``)."""
        return await self._hash(f"{self.base}:kept", tuple[bytes, RejectReason, str])

    async def _hash(self, key: str, type_: Any) -> dict[str, Any]:
        """A hash of msgpack values, skipping a value that does not decode as ``type_``."""
        out = {}
        # the client is built without decode_responses: keys and values are bytes
        for k, v in cast("dict[bytes, bytes]", await self.r.hgetall(key)).items():
            try:
                out[k.decode()] = msgspec.msgpack.decode(v, type=type_)
            except msgspec.DecodeError:
                continue
        return out

    async def unspool(self, signal_id: str) -> None:
        await self.r.hdel(f"{self.base}:kept", signal_id)

"""Hot state in Redis: latest marks, the order-rate counter, and the trading-state mirror.

Nothing here is a record of money: the ledger is. If Redis cannot be read, risk rejects
(fails closed) rather than trading on guesses.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis


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

    async def set_mark(self, symbol: str, mid: float) -> None:
        await self.r.hset(f"{self.base}:marks", symbol, repr(mid))

    async def marks(self) -> dict[str, float]:
        raw = await self.r.hgetall(f"{self.base}:marks")
        return {k.decode(): float(v) for k, v in raw.items()}

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

    async def mirror_state(self, state: str) -> None:
        await self.r.set(f"{self.base}:trading-state", state)

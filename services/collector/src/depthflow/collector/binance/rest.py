"""Binance REST over aiohttp, every call through the weight budget.

Only market-data endpoints, no key needed: ``/api/v3/depth`` and ``/api/v3/exchangeInfo``.
A call waits for the budget, never retries by itself before ``Retry-After``, and hands back the
raw body with its receive time so the recorder can keep it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import aiohttp

from depthflow.collector.binance.ratelimit import WeightBudget, depth_weight

log = logging.getLogger("depthflow.collector.rest")
EXCHANGE_INFO_WEIGHT = 20


class RestError(Exception):
    """A REST call that did not return data (status and body kept for the log)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


class RestClient:
    """Rate-limited market-data REST calls against ``base_url``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        budget: WeightBudget,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.clock = clock

    async def _get(self, path: str, params: dict[str, str], weight: int) -> tuple[bytes, int]:
        while (wait := self.budget.wait_s(weight, self.clock())) > 0:
            log.info("waiting for request weight", extra={"path": path, "wait_s": round(wait, 2)})
            await asyncio.sleep(wait)
        self.budget.spend(weight, self.clock())
        async with self.session.get(
            f"{self.base_url}{path}", params=params, timeout=aiohttp.ClientTimeout(total=15)
        ) as resp:
            body = await resp.read()
            recv_ns = time.time_ns()
            self.budget.on_response(resp.status, dict(resp.headers), self.clock())
            if resp.status != 200:
                raise RestError(resp.status, body.decode(errors="replace"))
            return body, recv_ns

    async def depth(self, symbol: str, limit: int) -> tuple[bytes, int]:
        """``GET /api/v3/depth``: the raw body and its receive time (ns)."""
        return await self._get(
            "/api/v3/depth", {"symbol": symbol, "limit": str(limit)}, depth_weight(limit)
        )

    async def exchange_info(self, symbols: list[str]) -> tuple[bytes, int]:
        """``GET /api/v3/exchangeInfo`` for ``symbols``."""
        return await self._get(
            "/api/v3/exchangeInfo",
            {"symbols": json.dumps(symbols, separators=(",", ":"))},
            EXCHANGE_INFO_WEIGHT,
        )

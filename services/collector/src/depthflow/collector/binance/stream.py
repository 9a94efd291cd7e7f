"""One Binance combined-stream websocket: ``/stream?streams=<s1>/<s2>/...``.

aiohttp answers the server's pings with pongs carrying the same payload (``autoping``), which is
what Binance requires (a ping every 20 s, disconnect after a minute without a pong). Each text
frame is handed on with its receive time; what it means is the session's business.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import aiohttp

from depthflow.collector.recording import Frame


def stream_names(symbols: list[str], trade_stream: str) -> list[str]:
    """Stream names for ``symbols``: lowercase, diff depth every 100 ms plus trades."""
    names = []
    for s in symbols:
        names += [f"{s.lower()}@depth@100ms", f"{s.lower()}@{trade_stream}"]
    return names


def backoff_s(attempt: int, base: float = 0.25, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter: many clients never reconnect in lockstep."""
    return random.uniform(0, min(cap, base * 2**attempt))


async def pump(
    session: aiohttp.ClientSession,
    ws_url: str,
    streams: list[str],
    deliver: Callable[[Frame], None],
    stop: asyncio.Event,
    connected: asyncio.Event | None = None,
) -> str:
    """Read one connection until it ends or ``stop`` is set; return why it ended."""
    url = f"{ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"
    async with session.ws_connect(url, autoping=True, heartbeat=None, max_msg_size=0) as ws:
        if connected is not None:
            connected.set()
        stopper = asyncio.create_task(stop.wait())
        try:
            while True:
                reader = asyncio.create_task(ws.receive())
                done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    reader.cancel()
                    return "stopped"
                msg = reader.result()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    deliver(Frame(time.time_ns(), "ws", None, msg.data.encode()))
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    deliver(Frame(time.time_ns(), "ws", None, msg.data))
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                    return f"closed ({msg.type.name})"
        finally:
            stopper.cancel()

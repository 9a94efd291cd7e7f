"""The relay relays, a cut resets open connections and refuses new ones, a restore relays again
(against a real echo server over loopback sockets)."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.tcp_proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    finally:
        writer.close()


async def test_relays_cuts_and_restores():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    try:
        async with TcpProxy("127.0.0.1", target) as proxy:
            assert proxy.rewrite(f"postgresql://u:p@127.0.0.1:{target}/db?x=1") == (
                f"postgresql://u:p@127.0.0.1:{proxy.port}/db?x=1"
            )
            assert await _roundtrip(proxy.port, b"hello") == b"hello"

            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"x")
            assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
            proxy.cut()
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):  # the open one is gone
                await asyncio.wait_for(reader.readexactly(1), 5)
            writer.close()
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await _roundtrip(proxy.port, b"refused")

            proxy.restore()
            assert await _roundtrip(proxy.port, b"again") == b"again"
    finally:
        server.close()
        await server.wait_closed()

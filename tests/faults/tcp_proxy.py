"""A TCP relay that can cut and restore a connection path: a network-fault injector for tests.

Why a relay instead of stopping a server: the test servers are shared by the whole session, so a
test that needs "Postgres is down" puts this relay between one service and the server and cuts
it. Everything on both sides is real (real sockets, the real server, the service's real driver);
only the path between them fails, as it does when a server dies or a network partitions.

    async with TcpProxy("127.0.0.1", 5432) as proxy:
        url = proxy.rewrite(postgres_url)   # the service connects here
        proxy.cut()                         # existing connections reset, new ones refused
        proxy.restore()                     # relays again

While cut, the listening port stays bound (a restored relay is at the same address) and every
new connection is accepted and reset at once, which a client sees as the server going away.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    """Relay ``listen_host:<port>`` to ``target_host:target_port`` until cut or stopped."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = 0  # chosen by the OS at start
        self.accepted = 0  # connections accepted, relayed or reset: lets a test see traffic
        self._server: asyncio.Server | None = None
        self._cut = False
        self._transports: set[asyncio.BaseTransport] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A relay to the host and port of ``url`` (for instance a ``postgresql://`` URL)."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 0)

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by the relay's (user, path and query kept)."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.listen_host}:{self.port}"))

    @property
    def is_cut(self) -> bool:
        return self._cut

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Reset every relayed connection and refuse (accept, then reset) new ones."""
        self._cut = True
        for t in list(self._transports):
            t.abort()
        self._transports.clear()

    def restore(self) -> None:
        """Relay new connections again."""
        self._cut = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._cut:  # cut while connecting
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._transports.update((writer.transport, up_writer.transport))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # one side ended: end the other too, as a broken path would
            self._transports.discard(dst.transport)
            with contextlib.suppress(Exception):
                dst.close()

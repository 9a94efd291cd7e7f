"""The live Binance session: one combined stream for every symbol, REST snapshots to sync the
books, and nothing lost across reconnects and rotations.

Tasks, all feeding one queue that a single consumer drains in order (so the session sees frames
exactly as they arrived, and the recorder keeps that order):

- **connections**: keeps one websocket open. A dropped one is reopened with jittered exponential
  backoff (the books then see a gap and resync). A planned rotation (before Binance's 24 h limit,
  on ``serverShutdown``, or when the feed went stale) opens the next connection first and holds
  its frames until the old one has caught up, then switches: duplicates are dropped by update and
  trade ids, so no diff or trade is lost or doubled.
- **snapshots**: fetches a REST snapshot for every book that is waiting for one, through the
  weight budget and at most once per ``resync_min_interval_s`` per symbol.
- **watchdog**: publishes ``MarketDataStale`` when a symbol's book stops updating and
  ``MarketDataRecovered`` when it resumes; a long silence forces a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from depthflow.collector.binance.payloads import FrameError, decode_exchange_info
from depthflow.collector.binance.ratelimit import ResyncPacer, WeightBudget
from depthflow.collector.binance.rest import RestClient, RestError
from depthflow.collector.binance.stream import backoff_s, pump, stream_names
from depthflow.collector.recording import Frame, Recorder
from depthflow.collector.session import MarketSession
from depthflow.collector.sources import Source
from depthflow.common.bus import Bus
from depthflow.common.messages import MarketDataRecovered, MarketDataStale, Message

log = logging.getLogger("depthflow.collector.live")


@dataclass
class _Tap:
    """Where one connection's frames go: straight to the queue, or held during a rotation."""

    queue: asyncio.Queue[Frame]
    holding: bool = False
    held: list[Frame] = field(default_factory=list)
    first_ns: int = 0
    last_ns: int = 0

    def deliver(self, frame: Frame) -> None:
        self.first_ns = self.first_ns or frame.recv_ns
        self.last_ns = frame.recv_ns
        if self.holding:
            self.held.append(frame)
        else:
            self.queue.put_nowait(frame)

    def release(self) -> None:
        for f in self.held:
            self.queue.put_nowait(f)
        self.held.clear()
        self.holding = False


@dataclass
class _Conn:
    task: asyncio.Task[str]
    stop: asyncio.Event
    tap: _Tap
    opened: float


class LiveSource(Source):
    """Publish exact books and trades from Binance (or anything speaking its protocol)."""

    async def run(self, bus: Bus) -> None:
        cfg = self.cfg
        rt = cfg.runtime
        self.bus = bus
        self.session = MarketSession(
            rt.venue,
            set(rt.symbols),
            depth=cfg.depth,
            snapshot_interval_ms=round(cfg.snapshot_interval_s * 1000),
            trade_interval_ms=round(cfg.trade_interval_s * 1000),
        )
        self.queue: asyncio.Queue[Frame] = asyncio.Queue()
        self.rotate = asyncio.Event()
        self.budget = WeightBudget()
        self.pacer = ResyncPacer(cfg.resync_min_interval_s)
        self.recorder = Recorder(Path(cfg.record_dir)) if cfg.record_dir else None
        self.rotations = 0
        self.reconnects = 0
        async with aiohttp.ClientSession() as http:
            self.rest = RestClient(http, cfg.rest_url, self.budget)
            await self._exchange_info()
            tasks = [
                asyncio.create_task(self._connections(http), name="connections"),
                asyncio.create_task(self._snapshots(), name="snapshots"),
                asyncio.create_task(self._watchdog(), name="watchdog"),
            ]
            try:
                await self._consume()
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self.recorder is not None:
                    self.recorder.close()
        log.info("live session ended", extra=dict(self.session.stats))

    async def _exchange_info(self) -> None:
        symbols = list(self.cfg.runtime.symbols)
        while not self.stopping.is_set():
            try:
                raw, recv_ns = await self.rest.exchange_info(symbols)
                info = decode_exchange_info(raw)
            except (RestError, aiohttp.ClientError, TimeoutError, FrameError) as exc:
                log.warning("exchangeInfo failed, retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff_s(3))
                continue
            if self.recorder is not None:
                self.recorder.write(Frame(recv_ns, "exchange_info", None, raw))
            self.budget.limit_per_minute = info.request_weight_per_minute
            unknown = [s for s in symbols if s not in info.symbols]
            if unknown:
                raise ValueError(f"symbols unknown to the exchange: {unknown}")
            self.session.state_ticks({s: rules.tick_size for s, rules in info.symbols.items()})
            for s, rules in info.symbols.items():
                log.info("instrument", extra={"symbol": s, "status": rules.status, "tick": rules.tick_size,
                                              "step": rules.step_size})
            return

    # --- the consumer: one ordered path from frames to the bus ---------------------------------

    async def _consume(self) -> None:
        last_flush = 0.0
        while not self.stopping.is_set():
            try:
                frame = await asyncio.wait_for(self.queue.get(), timeout=0.05)
            except TimeoutError:
                frame = None
            out: list[Message] = []
            if frame is not None:
                if self.recorder is not None:
                    self.recorder.write(frame)
                out.extend(self.session.on_frame(frame))
                if self.session.shutdown_requested:
                    self.session.shutdown_requested = False
                    log.info("serverShutdown received: rotating the connection")
                    self.rotate.set()
            now = time.time()
            if now - last_flush >= self.cfg.trade_interval_s:
                out += self.session.flush(before_ms=int(now * 1000))
                last_flush = now
            for msg in out:
                await self._publish_md(self.bus.subjects, msg)  # type: ignore[arg-type]

    # --- connections ---------------------------------------------------------------------------

    async def _open(self, http: aiohttp.ClientSession, holding: bool) -> _Conn:
        streams = stream_names(list(self.cfg.runtime.symbols), self.cfg.trade_stream)
        attempt = 0
        while True:
            stop, connected = asyncio.Event(), asyncio.Event()
            tap = _Tap(self.queue, holding=holding)
            task = asyncio.create_task(pump(http, self.cfg.ws_url, streams, tap.deliver, stop, connected))
            waiter = asyncio.create_task(connected.wait())
            await asyncio.wait({task, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if connected.is_set():
                return _Conn(task, stop, tap, time.monotonic())
            stop.set()
            err = task.exception() if task.done() else "timeout"
            task.cancel()
            delay = backoff_s(attempt)
            log.warning("websocket connect failed", extra={"error": str(err), "retry_s": round(delay, 2)})
            attempt += 1
            await asyncio.sleep(delay)

    async def _connections(self, http: aiohttp.ClientSession) -> None:
        conn = await self._open(http, holding=False)
        while True:
            age = time.monotonic() - conn.opened
            rotate_wait = asyncio.create_task(self.rotate.wait())
            await asyncio.wait(
                {conn.task, rotate_wait},
                timeout=max(0.0, self.cfg.rotate_after_s - age),
                return_when=asyncio.FIRST_COMPLETED,
            )
            rotate_wait.cancel()
            if conn.task.done():
                reason = "error" if conn.task.exception() else conn.task.result()
                log.warning("websocket ended, reconnecting", extra={"reason": reason})
                self.reconnects += 1
                conn = await self._open(http, holding=False)
                continue
            self.rotate.clear()
            conn = await self._rotate(http, conn)

    async def _rotate(self, http: aiohttp.ClientSession, old: _Conn) -> _Conn:
        new = await self._open(http, holding=True)
        # hold the new connection's frames until the old one has delivered frames received after
        # the new one's first: from then on, everything older is in the queue already
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not old.task.done():
            if new.tap.first_ns and old.tap.last_ns > new.tap.first_ns + 200_000_000:
                break
            await asyncio.sleep(0.02)
        old.stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.task, timeout=2)
        new.tap.release()
        self.rotations += 1
        log.info("websocket rotated", extra={"rotations": self.rotations})
        return new

    # --- snapshots -----------------------------------------------------------------------------

    async def _snapshots(self) -> None:
        inflight: set[str] = set()
        fetches: set[asyncio.Task[None]] = set()

        async def fetch(symbol: str) -> None:
            try:
                raw, recv_ns = await self.rest.depth(symbol, self.cfg.depth)
                self.queue.put_nowait(Frame(recv_ns, "rest_depth", symbol, raw))
            except (RestError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("depth snapshot failed", extra={"symbol": symbol, "error": str(exc)})
            finally:
                self.pacer.mark(symbol, time.monotonic())
                inflight.discard(symbol)

        while True:
            for symbol in self.session.needs_snapshot():
                if symbol not in inflight and self.pacer.wait_s(symbol, time.monotonic()) == 0:
                    inflight.add(symbol)
                    task = asyncio.create_task(fetch(symbol))
                    fetches.add(task)
                    task.add_done_callback(fetches.discard)
            await asyncio.sleep(0.05)

    # --- staleness -----------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        symbols = list(self.cfg.runtime.symbols)
        seen = {s: 0 for s in symbols}
        fresh_at = {s: time.monotonic() for s in symbols}
        stale: dict[str, float] = {}
        venue = self.cfg.runtime.venue
        while True:
            await asyncio.sleep(min(1.0, self.cfg.stale_after_s / 4))
            now = time.monotonic()
            for s in symbols:
                book = self.session.books.get(s)
                uid = book.update_id if book is not None else 0
                if uid and uid != seen[s]:
                    seen[s], fresh_at[s] = uid, now
                    if s in stale:
                        silent = now - stale.pop(s)
                        await self._status(MarketDataRecovered, s, venue, silent_s=silent)
                silent = now - fresh_at[s]
                if silent > self.cfg.stale_after_s and s not in stale:
                    stale[s] = fresh_at[s]
                    await self._status(MarketDataStale, s, venue, silent_s=silent, reason="no book update")
                if silent > 3 * self.cfg.stale_after_s and s in stale and not self.rotate.is_set():
                    fresh_at[s] = now  # one forced rotation per silence period
                    self.rotate.set()

    async def _status(self, type_: type, symbol: str, venue: str, **fields: object) -> None:
        now = time.time_ns()
        msg = type_(symbol=symbol, venue=venue, ts_event=now, ts_init=now, origin_ts=now, **fields)
        log.warning(type_.__name__, extra={"symbol": symbol})
        subject = self.bus.subjects.md_status(venue, symbol)
        await self._publish(subject, msg, f"collector:{symbol}:status:{now}")


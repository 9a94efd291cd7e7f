"""Where the collector's market data comes from: the synthetic generator or recorded files.

Each source is a task of the collector service; every message it publishes starts its own trace.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.context import Context

from depthflow.collector.config import CollectorConfig, InstrumentConfig
from depthflow.collector.generator import MarketGenerator
from depthflow.collector.publishing import depth_snapshot, trade_batch
from depthflow.collector.recording import Recording
from depthflow.collector.replay_report import build_report
from depthflow.collector.session import MarketSession
from depthflow.common.bus import Bus
from depthflow.common.codec import Decoder, InvalidMessage
from depthflow.common.messages import DepthSnapshot, TradeBatch
from depthflow.common.runtime import Output, Service
from depthflow.common.subjects import Subjects

log = logging.getLogger("depthflow.collector")


class Source:
    """What every source shares: the service to publish through and a run id for message ids."""

    def __init__(self, cfg: CollectorConfig, service: Service) -> None:
        self.cfg = cfg
        self.service = service
        self.stopping = service.stopping
        # message ids carry the run, so a restarted source is not taken for a redelivery
        self.run_id = time.time_ns()
        self.published = {"depth": 0, "trade": 0}

    async def run(self, bus: Bus) -> None:
        """Publish this source's market data until it ends or the service stops."""
        raise NotImplementedError

    async def _publish(self, subject: str, msg: msgspec.Struct, msg_id: str) -> None:
        # each market event starts its own trace, carried downstream in the NATS headers
        with self.service.tracer.start_as_current_span(
            f"collector {subject}", context=Context(), kind=trace.SpanKind.PRODUCER
        ):
            await self.service.publish(Output(subject, msg), msg_id=msg_id)

    async def _publish_md(self, subjects: Subjects, msg: DepthSnapshot | TradeBatch) -> None:
        if isinstance(msg, DepthSnapshot):
            subject = subjects.md_depth(msg.venue, msg.symbol)
            key = f"depth:{msg.last_update_id}"
            self.published["depth"] += 1
        else:
            subject = subjects.md_trade(msg.venue, msg.symbol)
            key = f"trade:{msg.first_trade_id}"
            self.published["trade"] += 1
        await self._publish(subject, msg, f"collector:{msg.symbol}:{key}:{self.run_id}")


_TRADE_DECODER: Decoder[TradeBatch] = Decoder(TradeBatch)


async def first_trade_id(bus: Bus, trade_subject: str, now_ns: int) -> int:
    """The first trade id a new generator run may use on ``trade_subject``.

    Why: consumers deduplicate trades by id, so a run that started again at 1 would have every
    trade dropped as already seen and the profile would freeze. A run continues after the last
    id on the stream, and never starts below the current time in microseconds, so ids still
    grow when the stream was purged or aged out (a run makes far fewer than 10^6 trades a
    second, so a later run's epoch is above every id of an earlier one).
    """
    epoch = now_ns // 1000
    try:
        raw = await bus.js.get_last_msg(bus.subjects.stream("MD"), trade_subject)
    except NotFoundError:
        return epoch
    try:
        last = _TRADE_DECODER.decode(raw.data or b"").last_trade_id
    except InvalidMessage:
        log.warning("last trade batch on the stream is unreadable; ids start at the time epoch",
                    extra={"subject": trade_subject})
        return epoch
    return max(last + 1, epoch)


class GeneratorSource(Source):
    """Publish a seeded synthetic market for every configured symbol.

    The market moves in simulated time, ``speed`` times faster than the wall clock, but its
    messages are stamped on the wall clock (see :meth:`_stamp`): consumers refuse events from
    the future, and a run at speed 10 would otherwise stamp them ever further ahead.
    """

    def _stamp(self, sim_ns: np.ndarray) -> np.ndarray:
        """Map simulated times (which start at ``run_id``) to the wall clock.

        At speed N the run is paced so that N simulated seconds take one wall second, so
        ``run_id + elapsed / N`` is the wall time of the event; as fast as possible (speed 0)
        has no such mapping, and its events carry the time they are published.
        """
        if self.cfg.speed > 0:
            return self.run_id + ((sim_ns - self.run_id) / self.cfg.speed).astype(np.int64)
        return np.full_like(sim_ns, time.time_ns())

    def _instrument(self, symbol: str) -> InstrumentConfig:
        return self.cfg.instruments.get(
            symbol,
            InstrumentConfig(start_price=self.cfg.default_start_price, tick=self.cfg.default_tick),
        )

    async def run(self, bus: Bus) -> None:
        await asyncio.gather(*(self._run_symbol(bus, s) for s in self.cfg.runtime.symbols))
        log.info("generator finished", extra=self.published)

    async def _run_symbol(self, bus: Bus, symbol: str) -> None:
        cfg = self.cfg
        venue = cfg.runtime.venue
        inst = self._instrument(symbol)
        depth_subject = bus.subjects.md_depth(venue, symbol)
        trade_subject = bus.subjects.md_trade(venue, symbol)
        # per-symbol seed: stable across runs, different between symbols
        gen = MarketGenerator(
            seed=cfg.seed * 1_000_003 + zlib.crc32(symbol.encode()),
            start_price=inst.start_price,
            tick=inst.tick,
            levels=cfg.generator_levels,
            depth_span=inst.depth_span,
            start_ns=self.run_id,
            first_trade_id=await first_trade_id(bus, trade_subject, self.run_id),
        )
        steps_per_snapshot = max(1, round(cfg.snapshot_interval_s / cfg.trade_interval_s))
        wall_start = time.monotonic()
        sim_elapsed = 0.0
        snapshots = 0
        step = 0
        while not self.stopping.is_set():
            trades = gen.step(cfg.trade_interval_s)
            trades = replace(trades, ts=self._stamp(trades.ts))
            sim_elapsed += cfg.trade_interval_s
            step += 1
            if len(trades.px):
                await self._publish(
                    trade_subject,
                    trade_batch(symbol, venue, trades, tick_size=inst.tick),
                    f"collector:{symbol}:trade:{self.run_id}:{trades.ids[0]}",
                )
                self.published["trade"] += 1
            if step % steps_per_snapshot == 0:
                snapshots += 1
                stamp = int(self._stamp(np.array([gen.now_ns], dtype=np.int64))[0])
                msg = depth_snapshot(
                    symbol, venue, gen.book(snapshots), stamp, "cadence", tick_size=inst.tick
                )
                await self._publish(
                    depth_subject, msg, f"collector:{symbol}:depth:{self.run_id}:{snapshots}"
                )
                self.published["depth"] += 1
                if cfg.max_snapshots and snapshots >= cfg.max_snapshots:
                    return
            if cfg.speed > 0:
                ahead = sim_elapsed / cfg.speed - (time.monotonic() - wall_start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            else:
                await asyncio.sleep(0)


class ReplaySource(Source):
    """Replay recorded files through the same session code as live data.

    The files are one stream merged by receive time (:class:`Recording`, inspected and refused if
    unfit before anything runs). ``speed`` 1 keeps the recorded receive-time gaps, N runs N times
    faster, 0 as fast as possible. At the end, or when stopped, the replay report (per file what
    was skipped, per symbol what was published, warnings for symbols without a book) is logged and
    written to ``replay_report`` when set.
    """

    def __init__(self, cfg: CollectorConfig, service: Service) -> None:
        super().__init__(cfg, service)
        self.recording = Recording(cfg.replay_paths, cfg.replay_format)

    async def run(self, bus: Bus) -> None:
        cfg = self.cfg
        rt = cfg.runtime
        session = MarketSession(
            rt.venue,
            set(rt.symbols),
            depth=cfg.depth,
            snapshot_interval_ms=round(cfg.snapshot_interval_s * 1000),
            trade_interval_ms=round(cfg.trade_interval_s * 1000),
        )
        finished = False
        try:
            await self._replay(bus.subjects, session)
            finished = not self.stopping.is_set()
        finally:
            self._report(session, finished)

    async def _replay(self, subjects: Subjects, session: MarketSession) -> None:
        wall_start = time.monotonic()
        first_ns: int | None = None
        for n, frame in enumerate(self.recording.frames()):
            if self.stopping.is_set():
                return
            first_ns = frame.recv_ns if first_ns is None else first_ns
            if self.cfg.speed > 0:
                ahead = (frame.recv_ns - first_ns) / 1e9 / self.cfg.speed - (time.monotonic() - wall_start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            elif n % 256 == 0:
                await asyncio.sleep(0)
            for msg in session.on_frame(frame):
                await self._publish_md(subjects, msg)
        for msg in session.flush():
            await self._publish_md(subjects, msg)

    def _report(self, session: MarketSession, finished: bool) -> None:
        symbols = list(self.cfg.runtime.symbols)
        ticks = {s: session.ticks.tick(s) for s in session.facts}
        report = build_report(self.recording, symbols, session.facts, ticks,
                              self.cfg.replay_book_within_s, finished)
        for f in report.files:
            if f.skipped:
                log.warning("replay skipped unusable lines", extra={"file": f.path, "skipped": f.skipped})
        for w in report.warnings:
            log.warning("replay gave no book", extra={"symbol": w.symbol, "reason": w.reason})
        log.info("replay finished" if finished else "replay stopped",
                 extra={**self.published, **dict(session.stats)})
        if self.cfg.replay_report:
            path = Path(self.cfg.replay_report)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(msgspec.json.encode(report))
            tmp.replace(path)  # a reader never sees half a report

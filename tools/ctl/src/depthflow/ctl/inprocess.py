"""The market-data half of the pipeline in one process: collector session → aggregator → peaks.

Why: ``depthflow plot --replay`` (and tests) need what peaks would have published for a recorded
file without servers or processes. The services' own session and handlers run here, fed with
the deliveries the bus would make, so the result is the pipeline's, not a re-implementation.
It lives in the ctl, not in ``libs/common``: it wires three services, and the library knows none.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.collector.recording import read_frames
from depthflow.collector.session import MarketSession
from depthflow.common.messages import BookBuckets, DepthSnapshot, TradeBatch, TradeProfile, ZonesDetected
from depthflow.common.runtime import Delivery
from depthflow.common.subjects import Subjects
from depthflow.ctl.latest import Latest
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers


class InProcessPipeline:
    """Aggregator and peaks handlers of one symbol, fed with what a collector session emits.

    :attr:`latest` is the last zones with the book and the profile they were computed from: the
    profile peaks held then, not a later one, so POC and value area always match the trade bars
    drawn next to them.
    """

    def __init__(self, venue: str, symbol: str) -> None:
        self.venue, self.symbol = venue, symbol
        self._subjects = Subjects()
        self._agg = AggregatorHandlers(AggregatorConfig(), self._subjects)
        self._peaks = PeaksHandlers(PeaksConfig(), self._subjects)
        self._seq = itertools.count(1)
        self._profile: TradeProfile | None = None
        self.latest: Latest | None = None

    def _delivery(self, subject: str, stream: str) -> Delivery:
        return Delivery(subject, stream, next(self._seq), 1)

    async def feed(self, msgs: Sequence[object]) -> None:
        """Hand each market-data message to the aggregator, and its outputs to peaks."""
        for m in msgs:
            if isinstance(m, DepthSnapshot):
                d = self._delivery(self._subjects.md_depth(self.venue, self.symbol), "MD")
                for out in await self._agg.on_depth_snapshot(m, d):  # [profile if changed, book]
                    d = self._delivery(out.subject, "AGG")
                    if isinstance(out.message, TradeProfile):
                        self._profile = out.message
                        await self._peaks.on_trade_profile(self._profile, d)
                        continue
                    assert isinstance(out.message, BookBuckets)
                    for z in await self._peaks.on_book_buckets(out.message, d):
                        assert isinstance(z.message, ZonesDetected)
                        self.latest = (out.message, self._profile, z.message)
            elif isinstance(m, TradeBatch):  # updates the aggregator's profile; publishes nothing
                d = self._delivery(self._subjects.md_trade(self.venue, self.symbol), "MD")
                await self._agg.on_trade_batch(m, d)


async def latest_from_replay(
    path: Path, symbol: str, until_s: float | None = None, *, venue: str = "binance"
) -> Latest:
    """Replay ``path`` through the in-process pipeline; return the last zones and the book and
    profile they were computed from (at ``until_s`` seconds of recorded time after the first
    frame, or at the end of the file)."""
    session = MarketSession(venue, {symbol}, depth=5000)
    pipeline = InProcessPipeline(venue, symbol)
    first_ns: int | None = None
    for frame in read_frames(Path(path)):
        first_ns = frame.recv_ns if first_ns is None else first_ns
        if until_s is not None and frame.recv_ns - first_ns > until_s * 1e9:
            break
        await pipeline.feed(session.on_frame(frame))
    # trades still waiting for their 100 ms window: the services would publish them too, but no
    # book follows them here, so they change no zones; fed anyway so the order of calls is real
    await pipeline.feed(session.flush())
    if pipeline.latest is None:
        where = f"in the first {until_s:g} s of" if until_s is not None else "in"
        raise LookupError(f"no {symbol} book {where} {path} (frames: {dict(session.stats)})")
    return pipeline.latest

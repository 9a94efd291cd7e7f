"""Frames in, ``md.*`` messages out: the collector's core, shared by live and replay.

A :class:`MarketSession` parses each frame, keeps one :class:`LocalBook` per symbol, batches
trades into 100 ms windows of trade time, and emits a ``DepthSnapshot`` of every synced book at
the configured cadence of *event* time (so a replay at any speed publishes the same books as the
live run did) and right after each (re)sync. Malformed frames are counted and dropped with a log
line; they never stop the session.

Every message carries the symbol's price tick (:mod:`ticks`): the one ``exchangeInfo`` states
(live, or an ``exchange_info`` frame of our recordings), else the finest grid the symbol's price
strings have shown. Per symbol, :class:`SymbolFacts` keeps what a replay report needs to say
why a symbol got no book (no snapshot, a refused one, a gap while syncing).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from depthflow.collector.binance.payloads import (
    DepthDiff,
    FrameError,
    Ignored,
    RestDepth,
    ServerShutdown,
    Trade,
    decode_exchange_info,
    decode_rest_depth,
    decode_stream_frame,
)
from depthflow.collector.book import BookState, LocalBook, Outcome
from depthflow.collector.publishing import TradeArrays, depth_snapshot, trade_batch
from depthflow.collector.recording import Frame
from depthflow.collector.ticks import TickTracker, level_prices, trade_prices
from depthflow.common.messages import TS_FLOOR_NS, DepthSnapshot, TradeBatch

MarketData = DepthSnapshot | TradeBatch
"""What a session publishes: books and trade batches (feed health is the live source's)."""

log = logging.getLogger("depthflow.collector.session")
MS = 1_000_000


def _check_time(event: DepthDiff | Trade) -> None:
    """A frame stamped before any market data existed (``E``/``T`` of 0, seconds for ms) is
    malformed: the messages it would become refuse such a timestamp (``TS_FLOOR_NS``)."""
    ms = min(event.event_ms, getattr(event, "trade_ms", event.event_ms))
    if ms * MS < TS_FLOOR_NS:
        raise FrameError("timestamp before 2017", f"{ms} ms")


@dataclass
class SymbolFacts:
    """What happened to one symbol's book, in recorded time (receive ns of the frames)."""

    first_frame_ns: int | None = None
    first_book_ns: int | None = None
    books: int = 0
    diffs: int = 0
    snapshots: Counter[str] = field(default_factory=Counter)  # outcome (or "malformed (<reason>)")
    gaps: int = 0  # out of sequence diffs on a live book


@dataclass
class _Trades:
    window: int = -1
    items: list[Trade] = field(default_factory=list)


def parse_csv_trade(frame: Frame) -> Trade:
    """A public-dump aggTrades row: ``id,price,qty,first_id,last_id,time,is_buyer_maker[,..]``."""
    try:
        cols = frame.raw.split(b",")
        t_ms = frame.recv_ns // MS
        px, qty = float(cols[1]), float(cols[2])
        if not (px > 0 and qty > 0):
            raise ValueError("price and quantity must be positive")
        return Trade(
            symbol=frame.symbol or "", event_ms=t_ms, trade_ms=t_ms, id=int(cols[0]),
            first_trade_id=int(cols[3]), last_trade_id=int(cols[4]), px=px, qty=qty,
            buyer_maker=cols[6].strip().lower() in (b"true", b"1"), kind="aggTrade",
        )
    except (ValueError, IndexError) as exc:
        raise FrameError(f"bad aggTrades CSV row: {exc}") from exc


class MarketSession:
    """Turn frames into ``DepthSnapshot`` and ``TradeBatch`` messages for the symbols it follows."""

    def __init__(
        self,
        venue: str,
        symbols: set[str] | None = None,
        depth: int = 5000,
        snapshot_interval_ms: int = 1000,
        trade_interval_ms: int = 100,
    ) -> None:
        self.venue = venue
        self.symbols = symbols
        self.depth = depth
        self.snapshot_interval_ms = snapshot_interval_ms
        self.trade_interval_ms = trade_interval_ms
        self.books: dict[str, LocalBook] = {}
        self._next_emit: dict[str, int] = {}
        self._trades: dict[str, _Trades] = {}
        self._last_trade_id: dict[str, int] = {}
        self.stats: Counter[str] = Counter()
        self.shutdown_requested = False
        self.ticks = TickTracker()
        self.facts: dict[str, SymbolFacts] = {}
        self._recv_ns = 0  # receive time of the frame being handled

    def book(self, symbol: str) -> LocalBook:
        b = self.books.get(symbol)
        if b is None:
            b = self.books[symbol] = LocalBook(symbol)
        return b

    def follows(self, symbol: str) -> bool:
        if self.symbols is None or symbol in self.symbols:
            facts = self.facts.setdefault(symbol, SymbolFacts())
            if facts.first_frame_ns is None:
                facts.first_frame_ns = self._recv_ns
            return True
        self.stats["other_symbol"] += 1
        return False

    def state_ticks(self, ticks: dict[str, float]) -> None:
        """Ticks the exchange states (exchangeInfo ``PRICE_FILTER``), the truth for those symbols."""
        for symbol, tick in ticks.items():
            self.ticks.state(symbol, tick)

    def needs_snapshot(self) -> list[str]:
        """Symbols whose book is waiting for a REST snapshot (buffering diffs)."""
        return [s for s, b in self.books.items() if b.state is BookState.SYNCING and b.first_buffered_id]

    # --- input ---------------------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> list[MarketData]:
        self.stats["frames"] += 1
        self._recv_ns = frame.recv_ns
        try:
            if frame.kind == "ws":
                event = decode_stream_frame(frame.raw)
            elif frame.kind == "rest_depth":
                if not frame.symbol:
                    raise FrameError("missing field", "REST depth snapshot without a symbol")
                snap = self._decode_snapshot(frame.symbol, frame.raw)
                return self.on_snapshot(frame.symbol, snap, frame.recv_ns, level_prices(frame.raw))
            elif frame.kind == "agg_trade_csv":
                event = parse_csv_trade(frame)
            elif frame.kind == "exchange_info":
                info = decode_exchange_info(frame.raw)
                self.state_ticks({s: r.tick_size for s, r in info.symbols.items()})
                return []
            else:
                self.stats["ignored"] += 1
                return []
            if isinstance(event, DepthDiff | Trade):
                _check_time(event)
        except FrameError as exc:
            self.stats["malformed"] += 1
            log.warning("malformed frame dropped", extra={"reason": str(exc), "frame": frame.raw[:200]})
            return []
        if isinstance(event, DepthDiff):
            return self.on_diff(event, level_prices(frame.raw))
        if isinstance(event, Trade):
            prices = trade_prices(frame.raw) if frame.kind == "ws" else frame.raw.split(b",")[1:2]
            return self.on_trade(event, prices)
        if isinstance(event, ServerShutdown):
            self.shutdown_requested = True
            self.stats["server_shutdown"] += 1
            return []
        assert isinstance(event, Ignored)
        self.stats["ignored"] += 1
        return []

    def _decode_snapshot(self, symbol: str, raw: bytes) -> RestDepth:
        """Decode a REST snapshot; a malformed one is also noted against its symbol."""
        try:
            return decode_rest_depth(raw)
        except FrameError as exc:
            if self.follows(symbol):
                self.facts[symbol].snapshots[f"malformed ({exc.reason})"] += 1
            raise

    def on_snapshot(
        self, symbol: str, snap: RestDepth, recv_ns: int, prices: list[bytes]
    ) -> list[MarketData]:
        """Sync ``symbol`` 's book from a REST snapshot; ``prices`` are its price strings."""
        if not self.follows(symbol):
            return []
        self._observe_prices(symbol, prices)
        book = self.book(symbol)
        if book.state is BookState.LIVE:
            book.reset()  # a fresh snapshot asked for by the caller: resync from it
        outcome = book.on_snapshot(snap)
        self.stats[f"snapshot_{outcome.value}"] += 1
        self.facts[symbol].snapshots[outcome.value] += 1
        if outcome is Outcome.SYNCED:
            self._next_emit[symbol] = 0
            return [self._depth(symbol, book, recv_ns, "resync")]
        return []

    def on_diff(self, diff: DepthDiff, prices: list[bytes]) -> list[MarketData]:
        """Apply a depth diff; ``prices`` are its price strings (for the tick)."""
        if not self.follows(diff.symbol):
            return []
        self._observe_prices(diff.symbol, prices)
        facts = self.facts[diff.symbol]
        facts.diffs += 1
        book = self.book(diff.symbol)
        outcome = book.on_diff(diff)
        self.stats[f"diff_{outcome.value}"] += 1
        facts.gaps += outcome is Outcome.GAP
        if outcome in (Outcome.GAP, Outcome.CROSSED):
            log.warning("book out of sync, resyncing", extra={"symbol": diff.symbol, "why": outcome.value})
            return []
        if outcome is not Outcome.APPLIED:
            return []
        event_ms = diff.event_ms
        due = self._next_emit.get(diff.symbol, 0)
        if event_ms < due:
            return []
        interval = self.snapshot_interval_ms
        self._next_emit[diff.symbol] = (event_ms // interval + 1) * interval
        return [self._depth(diff.symbol, book, event_ms * MS, "cadence")]

    def on_trade(self, trade: Trade, prices: list[bytes]) -> list[MarketData]:
        """Batch a trade; ``prices`` is its price string (for the tick)."""
        if not self.follows(trade.symbol):
            return []
        self._observe_prices(trade.symbol, prices)
        last = self._last_trade_id.get(trade.symbol)
        if last is not None:
            if trade.id <= last:
                self.stats["trade_duplicate"] += 1
                return []
            if trade.id != last + 1:
                self.stats["trade_id_gap"] += 1
        self._last_trade_id[trade.symbol] = trade.id
        pending = self._trades.setdefault(trade.symbol, _Trades())
        window = trade.trade_ms // self.trade_interval_ms
        out: list[MarketData] = []
        if pending.items and window != pending.window:
            out.append(self._trade_batch(trade.symbol, pending.items))
            pending.items = []
        pending.window = window
        pending.items.append(trade)
        return out

    def flush(self, before_ms: int | None = None) -> list[MarketData]:
        """Emit trades waiting for their window to close: all of them (end of input), or those
        whose window ended before ``before_ms`` (live: a quiet market must not hold trades back)."""
        out: list[MarketData] = []
        for symbol, pending in self._trades.items():
            if before_ms is not None and (pending.window + 1) * self.trade_interval_ms > before_ms:
                continue
            if pending.items:
                out.append(self._trade_batch(symbol, pending.items))
                pending.items = []
        return out

    def _observe_prices(self, symbol: str, prices: list[bytes]) -> None:
        before = self.ticks.tick(symbol)
        if self.ticks.observe(symbol, prices) and self.facts[symbol].books:
            # books already went out with the coarser tick; consumers see the change from here on
            log.info("tick refined by a finer price", extra={
                "symbol": symbol, "was": before, "tick": self.ticks.tick(symbol)})

    # --- output --------------------------------------------------------------------------------

    def _depth(self, symbol: str, book: LocalBook, ts_event: int, reason: str) -> DepthSnapshot:
        self.stats["depth_published"] += 1
        facts = self.facts[symbol]
        facts.books += 1
        if facts.first_book_ns is None:
            facts.first_book_ns = self._recv_ns
        return depth_snapshot(symbol, self.venue, book.view(self.depth), ts_event, reason,
                              tick_size=self.ticks.tick(symbol))

    def _trade_batch(self, symbol: str, trades: list[Trade]) -> TradeBatch:
        self.stats["trades_published"] += len(trades)
        n = len(trades)
        arrays = TradeArrays(
            ids=np.fromiter((t.id for t in trades), np.int64, n),
            px=np.fromiter((t.px for t in trades), np.float64, n),
            qty=np.fromiter((t.qty for t in trades), np.float64, n),
            ts=np.fromiter((t.trade_ms * MS for t in trades), np.int64, n),
            buyer_maker=np.fromiter((t.buyer_maker for t in trades), np.float64, n),
        )
        return trade_batch(symbol, self.venue, arrays, tick_size=self.ticks.tick(symbol))

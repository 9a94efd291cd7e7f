"""Books and trades as arrays, and the one place the collector turns them into ``md.*`` messages."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from depthflow.common.messages import DepthSnapshot, TradeBatch, f64_bytes, i64_bytes


@dataclass(frozen=True)
class BookView:
    """A book as arrays (bids descending, asks ascending) inside its known price range."""

    update_id: int
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray
    known_low: float
    known_high: float


@dataclass(frozen=True)
class TradeArrays:
    """Trades in time order (``ts`` in ns); ``buyer_maker`` 1.0 when the seller was the aggressor."""

    ids: np.ndarray
    px: np.ndarray
    qty: np.ndarray
    ts: np.ndarray
    buyer_maker: np.ndarray


def depth_snapshot(
    symbol: str, venue: str, book: BookView, ts_event: int, reason: str, *, tick_size: float = 0.0
) -> DepthSnapshot:
    """Return the wire form of a book; ``tick_size`` 0.0 means the tick is unknown."""
    return DepthSnapshot(
        symbol=symbol,
        venue=venue,
        ts_event=ts_event,
        ts_init=time.time_ns(),
        origin_ts=ts_event,
        last_update_id=book.update_id,
        bid_px=f64_bytes(book.bid_px),
        bid_qty=f64_bytes(book.bid_qty),
        ask_px=f64_bytes(book.ask_px),
        ask_qty=f64_bytes(book.ask_qty),
        known_low=book.known_low,
        known_high=book.known_high,
        reason=reason,  # type: ignore[arg-type]
        tick_size=tick_size,
    )


def trade_batch(symbol: str, venue: str, trades: TradeArrays, *, tick_size: float = 0.0) -> TradeBatch:
    """Return the wire form of trades (which must not be empty); ``tick_size`` as in a book."""
    return TradeBatch(
        symbol=symbol,
        venue=venue,
        ts_event=int(trades.ts[-1]),
        ts_init=time.time_ns(),
        origin_ts=int(trades.ts[0]),
        first_trade_id=int(trades.ids[0]),
        last_trade_id=int(trades.ids[-1]),
        ids=i64_bytes(trades.ids),
        px=f64_bytes(trades.px),
        qty=f64_bytes(trades.qty),
        ts=i64_bytes(trades.ts),
        buyer_maker=f64_bytes(trades.buyer_maker),
        tick_size=tick_size,
    )

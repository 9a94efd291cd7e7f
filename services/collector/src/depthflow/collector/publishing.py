"""Turn source arrays into bus messages: the one place collector builds ``md.*`` messages."""

from __future__ import annotations

import time

import numpy as np

from depthflow.collector.generator import BookArrays, TradeArrays
from depthflow.common.messages import DepthSnapshot, TradeBatch, f64_bytes, i64_bytes


def depth_snapshot(
    symbol: str, venue: str, book: BookArrays, ts_event: int, update_id: int, reason: str = "cadence"
) -> DepthSnapshot:
    """Return the wire form of a book."""
    return DepthSnapshot(
        symbol=symbol,
        venue=venue,
        ts_event=ts_event,
        ts_init=time.time_ns(),
        origin_ts=ts_event,
        last_update_id=update_id,
        bid_px=f64_bytes(book.bid_px),
        bid_qty=f64_bytes(book.bid_qty),
        ask_px=f64_bytes(book.ask_px),
        ask_qty=f64_bytes(book.ask_qty),
        known_low=book.known_low,
        known_high=book.known_high,
        reason=reason,  # type: ignore[arg-type]
    )


def trade_batch(symbol: str, venue: str, trades: TradeArrays) -> TradeBatch:
    """Return the wire form of trades (which must not be empty)."""
    ts_event = int(trades.ts[-1])
    return TradeBatch(
        symbol=symbol,
        venue=venue,
        ts_event=ts_event,
        ts_init=time.time_ns(),
        origin_ts=int(trades.ts[0]),
        first_trade_id=trades.first_id,
        last_trade_id=trades.first_id + len(trades.px) - 1,
        ids=i64_bytes(np.arange(trades.first_id, trades.first_id + len(trades.px))),
        px=f64_bytes(trades.px),
        qty=f64_bytes(trades.qty),
        ts=i64_bytes(trades.ts),
        buyer_maker=f64_bytes(trades.buyer_maker),
    )

"""Every message that crosses the bus, as a ``msgspec.Struct``.

Why structs: they encode and decode as MessagePack in well under a microsecond, validate types on
decode, and are immutable, so a handler can never mutate what another handler sees.

Conventions (ARCHITECTURE §3):
- Data are nouns (``DepthSnapshot``), events past tense (``ZonesDetected``), commands imperative.
- Every message carries ``symbol``, ``venue``, ``ts_event`` (when the fact happened), ``ts_init``
  (when this message was built) and ``origin_ts`` (the market event it derives from), all integer
  nanoseconds, so end-to-end latency is measurable at every stage.
- Numeric arrays travel as raw little-endian float64 bytes; read them with :func:`f64` (zero copy).
- ``v`` is the schema version. A consumer rejects a version it cannot read, to the dead-letter
  subject, through ``__post_init__`` raising ``ValueError`` (msgspec turns that into a decode error).
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec
import numpy as np

SCHEMA_VERSION = 1
F64 = np.dtype("<f8")
I64 = np.dtype("<i8")

Side = Literal["BUY", "SELL"]
SignalSide = Literal["BUY", "SELL", "FLAT"]
TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]


def f64(buf: bytes) -> np.ndarray:
    """Return a read-only float64 view of ``buf`` (zero copy)."""
    return np.frombuffer(buf, dtype=F64)


def i64(buf: bytes) -> np.ndarray:
    """Return a read-only int64 view of ``buf`` (zero copy)."""
    return np.frombuffer(buf, dtype=I64)


def f64_bytes(values: np.ndarray | list[float]) -> bytes:
    """Return ``values`` as little-endian float64 bytes, the wire form of every price array."""
    return np.ascontiguousarray(values, dtype=F64).tobytes()


def i64_bytes(values: np.ndarray | list[int]) -> bytes:
    """Return ``values`` as little-endian int64 bytes (timestamps, ids)."""
    return np.ascontiguousarray(values, dtype=I64).tobytes()


def _check_arrays(name: str, *bufs: bytes) -> None:
    # Arrays of one message must be whole float64s and of equal length; anything else is corrupt.
    n = len(bufs[0])
    for b in bufs:
        if len(b) % 8:
            raise ValueError(f"{name}: array of {len(b)} bytes is not a whole number of 8-byte values")
        if len(b) != n:
            raise ValueError(f"{name}: parallel arrays differ in length ({n} != {len(b)} bytes)")


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Fields every message carries."""

    v: int = SCHEMA_VERSION
    symbol: str
    venue: str
    ts_event: int
    ts_init: int
    origin_ts: int

    def __post_init__(self) -> None:
        if self.v > SCHEMA_VERSION:
            raise ValueError(f"schema version {self.v} is newer than supported {SCHEMA_VERSION}")
        if not self.symbol or "." in self.symbol or " " in self.symbol:
            raise ValueError(f"symbol must be non-empty without dots or spaces, was {self.symbol!r}")


def header_from(source: Message) -> dict[str, object]:
    """Return the common fields of a message derived from ``source``: same symbol, venue,
    event time and origin, built now. Keeping origin_ts is what makes end-to-end latency
    measurable at every stage."""
    return {
        "symbol": source.symbol,
        "venue": source.venue,
        "ts_event": source.ts_event,
        "ts_init": time.time_ns(),
        "origin_ts": source.origin_ts,
    }


# --- market data (collector → aggregator) -------------------------------------------------------


class DepthSnapshot(Message, frozen=True, kw_only=True):
    """The local order book of one symbol: bids descending, asks ascending.

    ``known_low``/``known_high`` bound the price range the book is known over: levels outside it
    are unknown, not empty (a 5000-level snapshot does not see the whole book).
    """

    last_update_id: int
    bid_px: bytes
    bid_qty: bytes
    ask_px: bytes
    ask_qty: bytes
    known_low: float
    known_high: float
    reason: Literal["cadence", "resync", "replay"] = "cadence"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_arrays("bids", self.bid_px, self.bid_qty)
        _check_arrays("asks", self.ask_px, self.ask_qty)


class TradeBatch(Message, frozen=True, kw_only=True):
    """Trades of one symbol in arrival order; ``buyer_maker`` 1.0 means the seller was aggressor.

    ``ids`` (int64) are the exchange's trade ids (aggregate ids for aggTrades): consumers
    deduplicate by them, and they need not be consecutive (a feed can skip).
    """

    first_trade_id: int
    last_trade_id: int
    ids: bytes
    px: bytes
    qty: bytes
    ts: bytes
    buyer_maker: bytes

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_arrays("trades", self.ids, self.px, self.qty, self.ts, self.buyer_maker)
        if self.last_trade_id < self.first_trade_id:
            raise ValueError("last_trade_id is before first_trade_id")


class MarketDataStale(Message, frozen=True, kw_only=True):
    """No book update arrived for ``silent_s`` seconds: downstream must not trust the book."""

    silent_s: float
    reason: str


class MarketDataRecovered(Message, frozen=True, kw_only=True):
    """Book updates flow again after a stale period of ``silent_s`` seconds."""

    silent_s: float


# --- aggregates (aggregator → peaks, ai-fusion, risk) ------------------------------------------


class BookBuckets(Message, frozen=True, kw_only=True):
    """A book bucketed by price: bucket ``k`` holds every level with ``floor(p / size) == k``.

    Volumes are conserved: ``volume_out == volume_in`` per side up to float rounding.
    """

    bucket_size: float
    bid_px: bytes
    bid_qty: bytes
    ask_px: bytes
    ask_qty: bytes
    bid_volume_in: float
    bid_volume_out: float
    ask_volume_in: float
    ask_volume_out: float
    levels_in: int
    levels_out: int
    best_bid: float
    best_ask: float
    known_low: float
    known_high: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_arrays("bid buckets", self.bid_px, self.bid_qty)
        _check_arrays("ask buckets", self.ask_px, self.ask_qty)


class TradeProfile(Message, frozen=True, kw_only=True):
    """Traded volume by price bucket over the rolling window, buy and sell separately."""

    bucket_size: float
    window_s: int
    px: bytes
    buy_qty: bytes
    sell_qty: bytes
    last_trade_id: int
    trades_in_window: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_arrays("profile", self.px, self.buy_qty, self.sell_qty)


# --- analysis (peaks → ai-fusion) ---------------------------------------------------------------


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    """A price band where volume concentrates: support below the mid, resistance above.

    ``strength`` is the zone's share of its side's volume; ``confidence`` in [0, 1] grows with the
    statistical distance of its peak from the profile (see peaks/detection.py).
    """

    low: float
    high: float
    price: float
    volume: float
    strength: float
    confidence: float


class PriceBand(msgspec.Struct, frozen=True, kw_only=True):
    """A price interval ``[low, high)``."""

    low: float
    high: float


class ZonesDetected(Message, frozen=True, kw_only=True):
    """Peaks and levels found on one bucketed book (plus the latest trade profile)."""

    mid: float
    best_bid: float
    best_ask: float
    poc: float
    value_area_low: float
    value_area_high: float
    support: list[Zone]
    resistance: list[Zone]
    bid_depth_near: float
    ask_depth_near: float
    trade_buy_volume: float
    trade_sell_volume: float
    high_volume_nodes: list[float] = []
    low_volume_nodes: list[float] = []
    vacuums: list[PriceBand] = []  # only inside the book's known range
    resonance: list[Zone] = []  # where book peaks and trade peaks coincide
    # the reference design's flat output, kept for consumers written against it
    support_levels: list[float] = []
    resistance_levels: list[float] = []
    poc_levels: list[float] = []
    liquidity_vacuum_zones: list[PriceBand] = []
    resonance_zones: list[PriceBand] = []


# --- signals (ai-fusion → risk) -----------------------------------------------------------------


class SignalFused(Message, frozen=True, kw_only=True):
    """A weighted score in [-1, 1] and the action it implies, with the inputs that made it."""

    signal_id: str
    score: float
    confidence: float
    side: SignalSide
    mode: Literal["TRADING", "LEARNING"]
    components: dict[str, float]
    mid: float
    best_bid: float
    best_ask: float


# --- risk (risk → ledger, operators) ------------------------------------------------------------


class OrderApproved(Message, frozen=True, kw_only=True):
    """A signal passed every pre-trade check and became an order."""

    client_order_id: str
    signal_id: str
    side: Side
    qty: float
    price: float
    notional: float
    execution: Literal["paper", "live"]


class OrderRejected(Message, frozen=True, kw_only=True):
    """A signal did not become an order; ``reason`` is a stable code, ``detail`` for people."""

    signal_id: str
    reason: str
    detail: str


class OrderFilled(Message, frozen=True, kw_only=True):
    """An order was executed (paper or live)."""

    client_order_id: str
    side: Side
    qty: float
    price: float
    fee: float
    position_after: float
    cash_after: float
    equity_after: float
    execution: Literal["paper", "live"]


class TradingStateChanged(Message, frozen=True, kw_only=True):
    """The trading state moved (for instance to HALTED by the drawdown kill switch)."""

    state: TradingState
    reason: str
    equity: float
    high_water_mark: float


# --- dead letters ------------------------------------------------------------------------------


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """An input a service could not use, kept whole with the reason so nothing is lost."""

    service: str
    subject: str
    stream: str
    stream_seq: int
    reason: str
    payload: bytes
    headers: dict[str, str]
    ts_init: int

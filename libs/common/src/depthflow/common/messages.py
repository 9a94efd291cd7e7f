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

Every value is validated in ``__post_init__``, which msgspec runs on decode *and* on construction.
Why in the types: one NaN quantity that got through once poisoned a 48 h profile and made every
later signal a maximum-confidence BUY; checked here, a bad value can neither be read off the bus
(it becomes a dead letter with the reason, at once, never a retry) nor be built by a producer (it
gets the ``ValueError`` at construction, before anything is published). The rules: every float is
finite; prices are > 0 (bucket edges, zone and band bounds >= 0: a bucket of prices below its
width has edge 0, an empty book side has best price 0); quantities and volumes >= 0; parallel
arrays are whole float64s of one length; bids strictly descending, asks, bucket edges and profile
prices strictly ascending (no duplicates); every timestamp is at or after :data:`TS_FLOOR_NS`;
confidence in [0, 1]; score and components in [-1, 1]; ``buyer_maker`` 0 or 1; a band's low <= its
high. What needs the deployment (venue, configured symbols, the clock's future bound) is checked
by the runtime (``Service.admission_error``). Arrays are checked with a few vectorised passes (a
sorted array needs only its order and its two ends checked), so a 5000-level book pays tens of
microseconds (``make bench ONLY=codec``: ``codec_depth5000_validate_us``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple, TypedDict

import msgspec
import numpy as np

SCHEMA_VERSION = 1
TS_FLOOR_NS = 1_483_228_800_000_000_000
"""2017-01-01T00:00:00Z in ns: no market event this system reads is older (Binance opened in July
2017), so an earlier timestamp is a unit or zero-value bug (``ts 0``, seconds for nanoseconds),
not data. The future bound needs the clock and is the runtime's (``max_future_s``)."""
F64 = np.dtype("<f8")
I64 = np.dtype("<i8")

Side = Literal["BUY", "SELL"]
SignalSide = Literal["BUY", "SELL", "FLAT"]
TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]
FusionMode = Literal["TRADING", "LEARNING"]
Execution = Literal["paper", "live"]
ZoneKind = Literal["wave", "wall"]
"""What a ``Zone`` is: a wave peak (a hump several buckets wide, volume accepted over a range of
prices) or a wall (one or two buckets standing out of a background their neighbours share: one
big order at a round price). See ``services/peaks/README.md``."""
RejectReason = Literal[
    # the order risk's checks apply in (services/risk/src/depthflow/risk/checks.py)
    "unknown_venue", "unknown_symbol", "invalid_signal", "future_timestamp", "trading_halted",
    "state_unavailable", "signal_flat", "learning_mode", "low_confidence", "stale_signal",
    "no_fresh_mark", "position_unmarked", "bad_quote", "quote_off_mark", "no_equity",
    "drawdown_kill_switch", "order_rate", "reducing_only", "daily_loss_limit", "position_limit",
    "insufficient_cash", "no_position", "below_min_notional",
    # storage could not record the decision in time: fail closed
    "infrastructure_unavailable",
]
"""Why a closed set: operators, reports and the rollout verdict count rejections by reason; a
reason nobody declared would be counted nowhere. A new check adds its code here first."""


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


_INF = math.inf


class Rule(NamedTuple):
    """A condition on one float and how a reason states it. ``ok`` is written so that NaN fails."""

    text: str
    ok: Callable[[Any], bool]


FINITE = Rule("finite", lambda x: -_INF < x < _INF)
POSITIVE = Rule("finite and > 0", lambda x: 0.0 < x < _INF)
NON_NEGATIVE = Rule("finite and >= 0", lambda x: 0.0 <= x < _INF)
UNIT = Rule("in [0, 1]", lambda x: 0.0 <= x <= 1.0)
SIGNED_UNIT = Rule("in [-1, 1]", lambda x: -1.0 <= x <= 1.0)


def _check(owner: object, rule: Rule, *names: str) -> None:
    """Raise ``ValueError`` naming the first of ``owner``'s fields ``names`` that breaks ``rule``."""
    for name in names:
        x = getattr(owner, name)
        if not rule.ok(x):
            raise ValueError(f"{type(owner).__name__}.{name} is {x!r}: must be {rule.text}")


def _check_each(label: str, values: Iterable[float], rule: Rule) -> None:
    """The same for the items of a list field (``label`` names it)."""
    for i, x in enumerate(values):
        if not rule.ok(x):
            raise ValueError(f"{label}[{i}] is {x!r}: must be {rule.text}")


def _check_band(owner: object, low: str, high: str) -> None:
    a, b = getattr(owner, low), getattr(owner, high)
    if a > b:
        raise ValueError(f"{type(owner).__name__}.{low} {a!r} is above {high} {b!r}")


def _explain(name: str, a: np.ndarray, ok: np.ndarray, rule: str) -> None:
    """Raise the reason for the first ``False`` of ``ok`` (the slow path, taken only on failure)."""
    i = int(np.argmin(ok))
    raise ValueError(f"{name}[{i}] is {a[i].item()!r}: must be {rule}")


_INF_BITS = np.uint64(0x7FF0000000000000)  # +inf's bits: every finite double >= +0.0 lies below


def check_quantities(name: str, a: np.ndarray) -> None:
    """Every value finite and >= 0 (quantities, volumes).

    Why one unsigned maximum of the bits: a finite double >= +0.0 has its sign bit clear and an
    exponent below all ones, so its bits, read as an unsigned integer, lie below +inf's; a
    negative number (sign bit set), inf or NaN lies at or above. One integer reduction instead
    of a minimum and a maximum (~2.3 against ~3.8 us on 2400 values, every profile and book
    message). Only -0.0 is refused by the bits yet valid; the exact test then passes it.
    """
    bits = (a if a.dtype == np.float64 else a.astype(np.float64)).view(np.uint64)  # native doubles
    if a.size and not bits.max() < _INF_BITS:
        with np.errstate(invalid="ignore"):
            ok = (a >= 0.0) & (a < _INF)
        if not ok.all():
            _explain(name, a, ok, NON_NEGATIVE.text)


def check_prices(name: str, a: np.ndarray, order: int = 0, zero_ok: bool = False) -> None:
    """Every value finite and > 0 (>= 0 with ``zero_ok``: bucket edges), and with ``order`` +1/-1
    strictly ascending/descending.

    Why so cheap for sorted arrays: once every step is strictly in order (a NaN fails its steps),
    the lowest and highest values are the two ends, so checking those bounds every value.
    """
    if a.size == 0:
        return
    low, high = (a[0], a[-1]) if order >= 0 else (a[-1], a[0])
    if order == 0:
        low, high = a.min(), a.max()
        in_order = True
    else:
        in_order = bool((a[1:] > a[:-1]).all() if order > 0 else (a[1:] < a[:-1]).all())
    if in_order and (low >= 0.0 if zero_ok else low > 0.0) and high < _INF:
        return
    with np.errstate(invalid="ignore"):
        ok = ((a >= 0.0) if zero_ok else (a > 0.0)) & (a < _INF)
    if not ok.all():
        _explain(name, a, ok, NON_NEGATIVE.text if zero_ok else POSITIVE.text)
    steps = a[1:] > a[:-1] if order > 0 else a[1:] < a[:-1]
    i = int(np.argmin(steps)) + 1
    way = "ascending" if order > 0 else "descending"
    raise ValueError(f"{name}[{i}] is {a[i].item()!r} after {a[i - 1].item()!r}: must be strictly {way}")


def _check_known_range(owner: DepthSnapshot | BookBuckets) -> None:
    # 0.0 is "unknown" (an empty side); otherwise the range must not be inverted
    _check(owner, NON_NEGATIVE, "known_low", "known_high")
    if owner.known_high > 0.0:
        _check_band(owner, "known_low", "known_high")


def _check_book(owner: DepthSnapshot | BookBuckets, edges: bool) -> None:
    """Both sides: aligned arrays, prices in order, quantities >= 0. A raw book's bids descend;
    bucketed sides both ascend, by lower edge, which may be 0."""
    kind = type(owner).__name__
    _check_arrays(f"{kind} bids", owner.bid_px, owner.bid_qty)
    _check_arrays(f"{kind} asks", owner.ask_px, owner.ask_qty)
    check_prices(f"{kind}.bid_px", f64(owner.bid_px), 1 if edges else -1, zero_ok=edges)
    check_quantities(f"{kind}.bid_qty", f64(owner.bid_qty))
    check_prices(f"{kind}.ask_px", f64(owner.ask_px), 1, zero_ok=edges)
    check_quantities(f"{kind}.ask_qty", f64(owner.ask_qty))
    _check_known_range(owner)


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
        if not self.venue or "." in self.venue or " " in self.venue:
            raise ValueError(f"venue must be non-empty without dots or spaces, was {self.venue!r}")
        for name in ("ts_event", "ts_init", "origin_ts"):
            ts = getattr(self, name)
            if ts < TS_FLOOR_NS:
                raise ValueError(
                    f"{type(self).__name__}.{name} is {ts}: before the floor {TS_FLOOR_NS} (2017-01-01)"
                )


class Header(TypedDict):
    """The fields every message carries, typed, so ``Message(**header_from(m), ...)`` type-checks."""

    symbol: str
    venue: str
    ts_event: int
    ts_init: int
    origin_ts: int


def header_from(source: Message) -> Header:
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
    tick_size: float = 0.0  # the symbol's price tick (exchangeInfo, or the finest seen); 0 = unknown

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_book(self, edges=False)
        _check(self, NON_NEGATIVE, "tick_size")


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
    tick_size: float = 0.0  # as in DepthSnapshot

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, NON_NEGATIVE, "tick_size")
        _check_arrays("trades", self.ids, self.px, self.qty, self.ts, self.buyer_maker)
        if self.last_trade_id < self.first_trade_id:
            raise ValueError("last_trade_id is before first_trade_id")
        check_prices("TradeBatch.px", f64(self.px))
        check_quantities("TradeBatch.qty", f64(self.qty))
        ts = i64(self.ts)
        if ts.size and ts.min() < TS_FLOOR_NS:
            _explain("TradeBatch.ts", ts, ts >= TS_FLOOR_NS, f"at or after {TS_FLOOR_NS} (2017-01-01)")
        side = f64(self.buyer_maker)
        if not ((side == 0.0) | (side == 1.0)).all():
            _explain("TradeBatch.buyer_maker", side, (side == 0.0) | (side == 1.0), "0 or 1")


class MarketDataStale(Message, frozen=True, kw_only=True):
    """No book update arrived for ``silent_s`` seconds: downstream must not trust the book."""

    silent_s: float
    reason: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, NON_NEGATIVE, "silent_s")


class MarketDataRecovered(Message, frozen=True, kw_only=True):
    """Book updates flow again after a stale period of ``silent_s`` seconds."""

    silent_s: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, NON_NEGATIVE, "silent_s")


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
    tick_size: float = 0.0  # the symbol's price tick the bucket size is a multiple of; 0 = unknown

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_book(self, edges=True)
        _check(self, POSITIVE, "bucket_size")
        _check(self, NON_NEGATIVE, "tick_size")
        _check(self, NON_NEGATIVE, "bid_volume_in", "bid_volume_out", "ask_volume_in", "ask_volume_out",
               "best_bid", "best_ask")
        if self.levels_in < 0 or self.levels_out < 0:
            raise ValueError(f"level counts must be >= 0, were {self.levels_in} and {self.levels_out}")


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
        check_prices("TradeProfile.px", f64(self.px), 1, zero_ok=True)
        check_quantities("TradeProfile.buy_qty", f64(self.buy_qty))
        check_quantities("TradeProfile.sell_qty", f64(self.sell_qty))
        _check(self, POSITIVE, "bucket_size")
        if self.window_s <= 0 or self.trades_in_window < 0:
            raise ValueError(f"window_s must be > 0 and trades_in_window >= 0, were "
                             f"{self.window_s} and {self.trades_in_window}")


# --- analysis (peaks → ai-fusion) ---------------------------------------------------------------


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    """A price band where volume concentrates: support below the mid, resistance above.

    ``strength`` is the zone's share of its side's volume; ``confidence`` in [0, 1] grows with how
    far its peak stands out of its local background, in local-noise units (see
    ``depthflow.peaks.detectors``); ``kind`` says whether it is a wave peak or a wall (added in
    issue 10; a message without it is a wave).
    """

    low: float
    high: float
    price: float
    volume: float
    strength: float
    confidence: float
    kind: ZoneKind = "wave"

    def __post_init__(self) -> None:
        _check(self, NON_NEGATIVE, "low", "high", "price", "volume", "strength")
        _check(self, UNIT, "confidence")
        _check_band(self, "low", "high")


class PriceBand(msgspec.Struct, frozen=True, kw_only=True):
    """A price interval ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check(self, NON_NEGATIVE, "low", "high")
        _check_band(self, "low", "high")


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
    bucket_size: float = 0.0  # of the book the zones come from; prices are multiples of it
    tick_size: float = 0.0  # the symbol's price tick (display precision); 0 = unknown

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, NON_NEGATIVE, "mid", "best_bid", "best_ask", "poc", "value_area_low", "value_area_high",
               "bid_depth_near", "ask_depth_near", "trade_buy_volume", "trade_sell_volume")
        _check_band(self, "value_area_low", "value_area_high")
        _check(self, NON_NEGATIVE, "bucket_size", "tick_size")
        for name in ("high_volume_nodes", "low_volume_nodes"):
            _check_each(f"ZonesDetected.{name}", getattr(self, name), NON_NEGATIVE)


# --- signals (ai-fusion → risk) -----------------------------------------------------------------


class SignalFused(Message, frozen=True, kw_only=True):
    """A weighted score in [-1, 1] and the action it implies, with the inputs that made it."""

    signal_id: str
    score: float
    confidence: float
    side: SignalSide
    mode: FusionMode
    components: dict[str, float]
    mid: float
    best_bid: float
    best_ask: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, SIGNED_UNIT, "score")
        _check(self, UNIT, "confidence")
        _check(self, NON_NEGATIVE, "mid", "best_bid", "best_ask")
        for name, x in self.components.items():
            if not SIGNED_UNIT.ok(x):
                raise ValueError(f"SignalFused.components[{name!r}] is {x!r}: must be {SIGNED_UNIT.text}")


# --- risk (risk → ledger, operators) ------------------------------------------------------------


class OrderApproved(Message, frozen=True, kw_only=True):
    """A signal passed every pre-trade check and became an order."""

    client_order_id: str
    signal_id: str
    side: Side
    qty: float
    price: float
    notional: float
    execution: Execution

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, POSITIVE, "qty", "price")
        _check(self, NON_NEGATIVE, "notional")


class OrderRejected(Message, frozen=True, kw_only=True):
    """A signal did not become an order; ``reason`` is a stable code, ``detail`` for people."""

    signal_id: str
    reason: RejectReason
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
    execution: Execution

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, POSITIVE, "qty", "price")
        _check(self, NON_NEGATIVE, "fee")
        _check(self, FINITE, "position_after", "cash_after", "equity_after")


class TradingStateChanged(Message, frozen=True, kw_only=True):
    """The trading state moved (for instance to HALTED by the drawdown kill switch)."""

    state: TradingState
    reason: str
    equity: float
    high_water_mark: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, FINITE, "equity", "high_water_mark")


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

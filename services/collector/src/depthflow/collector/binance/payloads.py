"""Binance spot payloads (JSON bytes) → numpy arrays and small typed records.

Why this module exists: the live session and the replay of recorded files read the same JSON, and
both must be fast on the book path and strict everywhere. Binance sends prices and quantities as
decimal strings (``"61837.63000000"``); parsing them into ``Decimal`` or through ``json.loads``
costs a Python object per number. Here msgspec parses them straight into floats and the level
lists become float64 arrays with one ``np.fromiter``: a 5000+5000-level REST snapshot (320 kB)
decodes about three times faster than with ``json.loads`` + ``Decimal``, checks included, and a
20-level depth diff in about 14 us (``python -m bench --only collector``).

How strictness and speed are combined:

- Scalars (ids, times, symbols, flags) are decoded by *strict* msgspec decoders: ``"E": "123"``
  or ``"m": 1`` is an error, not silently coerced.
- Only numbers that Binance sends as strings are decoded by *lax* decoders
  (``strict=False`` turns ``"61837.63"`` into ``61837.63``). For a depth diff the level lists
  are kept as ``msgspec.Raw`` by the strict pass and parsed by a lax level decoder; a trade's
  ``p``/``q`` likewise. For the REST snapshot the lists are parsed in the lax pass and the one
  scalar, ``lastUpdateId``, is kept raw and decoded strictly. Either way each byte is parsed at
  most twice (skipped over once, parsed once) and no number becomes a Python ``str``.
- Lax parsing accepts ``"nan"`` and ``"inf"`` and signs, so every price and quantity is checked:
  finite, price > 0, quantity >= 0 (> 0 for a trade). Small frames (diffs, trades) declare these
  as msgspec bounds (``Meta(gt=0, le=DBL_MAX)``), checked in C as each number is parsed, since
  numpy's fixed cost per call (~1 us) would exceed the work on 20 levels. The 10 000-level REST
  snapshot is checked afterwards by two numpy reductions, which are cheaper there than a bound
  check per number. Either way, only once a check has failed is the exact level looked for, to
  name it and the reason in the error.

Every malformed input raises :class:`FrameError` and nothing else: msgspec's errors (including
invalid UTF-8 and ``RecursionError`` on absurdly nested JSON) are translated, and numpy is only
called on arrays whose shape is known to be right.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from dataclasses import dataclass
from typing import Annotated, Final, Literal, NoReturn

import msgspec
import numpy as np
from msgspec import Meta, Raw, Struct

__all__ = [
    "REASONS",
    "DepthDiff",
    "ExchangeInfo",
    "FrameError",
    "Ignored",
    "RateLimit",
    "RestDepth",
    "ServerShutdown",
    "SymbolRules",
    "Trade",
    "decode_exchange_info",
    "decode_rest_depth",
    "decode_stream_frame",
]

# ---------------------------------------------------------------------------------------------
# Errors

REASONS: Final = frozenset(
    {
        "invalid JSON",  # not JSON at all, invalid UTF-8, trailing bytes, nested too deeply
        "wrong type",  # a field or the frame has the wrong JSON type
        "missing field",  # a required field is absent
        "out of range",  # an id or time < 0 or beyond int64, an unknown enum value
        "level not a pair",  # a book level that is not a [price, qty] array of two
        "bad number",  # a price or quantity that is not a number (or overflows a float)
        "non-finite price",
        "non-finite qty",
        "non-positive price",
        "negative qty",
        "non-positive qty",  # a trade of size 0
        "u < U",  # depth diff whose final update id is below its first
        "l < f",  # aggTrade whose last trade id is below its first
        "book not sorted",  # REST snapshot: bids not strictly descending or asks not ascending
        "crossed book",  # REST snapshot: best bid >= best ask
        "unknown event",  # an ``e`` this module does not know
        "missing event type",  # an object with neither ``e`` nor a known envelope
        "request error",  # a websocket request reply carrying ``error``
        "missing filter",  # exchangeInfo: a symbol without PRICE_FILTER or LOT_SIZE
        "missing rate limit",  # exchangeInfo: no REQUEST_WEIGHT per minute
    }
)


class FrameError(Exception):
    """A frame (websocket message or REST body) that cannot be used.

    ``reason`` is one of the short fixed phrases in :data:`REASONS`, fit for a metric label or
    a counter key; ``detail`` says where and what (field path, level, value) for the log, and
    ``str(error)`` is ``"<reason>: <detail>"``. The caller counts or logs it and carries on:
    one bad frame must never stop a session.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[FrameError], tuple[str, str]]:
        # Exception pickles as cls(*args); args holds the joined message, not (reason, detail).
        return (FrameError, (self.reason, self.detail))


_MAX_DETAIL = 120


def _clip(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."


_PATH = re.compile(r" - at `(\$[^`]*)`$")
# A level is `$[3]` in a diff's side (decoded on its own) or `$.bids[3]` in a REST snapshot;
# `$[3][0]` / `$.bids[3][0]` is its price. No other decoder here reports such paths.
_LEVEL = re.compile(r"^\$(?:\.(?:bids|asks))?\[\d+\]$")
_VALUE = re.compile(r"^\$(?:\.(?:bids|asks))?\[\d+\]\[\d+\]$")
_CONSTRAINT = re.compile(r"Expected `\w+` (?:[<>]=?|of length)")  # a Meta bound, not a type


def _from_validation(exc: msgspec.ValidationError, where: str) -> FrameError:
    """Translate msgspec's message into a fixed reason, keeping its message as the detail."""
    msg = str(exc)
    m = _PATH.search(msg)
    path = m.group(1) if m else "$"
    detail = f"{where}: {msg}"
    if msg.startswith("Object missing required field"):
        return FrameError("missing field", detail)
    if _VALUE.match(path):
        return FrameError("bad number", detail)
    if _LEVEL.match(path):
        return FrameError("level not a pair", detail)
    if _CONSTRAINT.match(msg) or msg.startswith(("Invalid enum value", "Integer value out")):
        return FrameError("out of range", detail)
    if msg.startswith("Number out of range"):
        return FrameError("bad number", detail)
    return FrameError("wrong type", detail)  # "Expected `int`, got `str`" and the like


# msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 inside a string, and
# RecursionError for JSON nested deeper than its limit; both mean "not usable JSON" here.
_NOT_JSON: Final = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)


def _from_decode(exc: Exception, where: str) -> FrameError:
    return FrameError("invalid JSON", f"{where}: {exc}")


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, eq=False)
class RestDepth:
    """A REST order-book snapshot (``GET /api/v3/depth?symbol=BTCUSDT&limit=5000``).

    Bids keep the order received (descending price), asks too (ascending); both are checked to
    be strictly monotonic and not crossed, so the arrays are a book as they stand. The arrays
    are read-only float64. ``eq=False``: comparing arrays element-wise is the caller's choice.

    Raw payload::

        {"lastUpdateId": 50093239218,
         "bids": [["61837.63000000", "3.78826000"], ["61837.62000000", "0.61700000"], ...],
         "asks": [["61837.64000000", "1.54698000"], ...]}
    """

    last_update_id: int
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray


@dataclass(frozen=True, eq=False)
class DepthDiff:
    """One ``<symbol>@depth`` / ``@depth@100ms`` event: absolute quantities at changed levels.

    ``first_id``/``final_id`` are Binance's ``U``/``u``; a diff is in sequence when its
    ``first_id`` is the previous ``final_id`` + 1. A quantity of 0 removes the level. Levels
    keep the order received (Binance sends bids descending, asks ascending) but that order is
    not checked: applying a diff is per level, so rejecting an unsorted but otherwise valid diff
    would only force a resync. Read-only float64 arrays, possibly empty.

    Raw payload (inside ``{"stream": "btcusdt@depth@100ms", "data": ...}``)::

        {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT",
         "U": 50093239189, "u": 50093239202,
         "b": [["61737.63000000", "0.00000000"], ...],
         "a": [["61837.64000000", "1.54698000"], ...]}
    """

    symbol: str
    event_ms: int
    first_id: int
    final_id: int
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray


@dataclass(frozen=True, slots=True)
class Trade:
    """One ``<symbol>@trade`` or ``<symbol>@aggTrade`` event.

    ``kind`` is ``"trade"`` (``id`` = ``first_trade_id`` = ``last_trade_id`` = ``t``) or
    ``"aggTrade"`` (``id`` = ``a``, the aggregate id, covering trade ids ``f``..``l``).
    ``buyer_maker`` True means the seller was the aggressor.

    Raw payloads::

        {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259,
         "p": "61837.63000000", "q": "0.02000000", "T": 1723161255342, "m": true, "M": true}
        {"e": "aggTrade", "E": 1617566591315, "s": "BTCUSDT", "a": 665076760,
         "p": "58001.03000000", "q": "0.08620500", "f": 745522877, "l": 745522877,
         "T": 1617566591314, "m": true, "M": true}
    """

    symbol: str
    event_ms: int
    trade_ms: int
    id: int
    first_trade_id: int
    last_trade_id: int
    px: float
    qty: float
    buyer_maker: bool
    kind: Literal["aggTrade", "trade"]


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server will close the connection soon: reconnect now, before data is lost.

    Raw payloads: ``{"e": "serverShutdown", "E": 1770123456789}``, plain, in a combined
    envelope, or wrapped as ``{"event": {...}}`` (the WebSocket API's form).
    """

    event_ms: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid frame that the collector does not use; ``stream`` names it for counting.

    ``stream`` is the combined-stream name when there is one (``"btcusdt@bookTicker"``,
    ``"btcusdt@kline_1m"``), else the event type (``"kline"``, ``"bookTicker"``), or
    ``"result"`` for a request reply such as ``{"result": null, "id": 1}``. An ignored frame's
    payload is only checked to be well-formed JSON (bookTicker is recognised by its stream name
    without decoding the payload: it is most of the traffic and carries no ``e``).
    """

    stream: str


# ---------------------------------------------------------------------------------------------
# JSON shapes

_Int = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # ids and times: non-negative int64
_Symbol = Annotated[str, Meta(min_length=1)]
_Levels = list[tuple[float, float]]
# Bounds reject NaN (every comparison with NaN is false) and ±inf as msgspec parses each number.
_Px = Annotated[float, Meta(gt=0.0, le=sys.float_info.max)]
_Qty = Annotated[float, Meta(ge=0.0, le=sys.float_info.max)]
_TradeQty = Annotated[float, Meta(gt=0.0, le=sys.float_info.max)]
_CheckedLevels = list[tuple[_Px, _Qty]]
_NONE: Final = Raw()  # an absent Raw field decodes to this (len 0)


class _RestDepthPayload(Struct, gc=False):
    lastUpdateId: Raw  # decoded strictly by _ID; the level lists are read by the lax pass
    bids: _Levels
    asks: _Levels


class _Envelope(Struct, gc=False):
    """The outer object of any websocket frame; unknown keys (a raw payload's) are skipped."""

    stream: str = ""
    data: Raw = _NONE  # combined stream: {"stream": "...", "data": {...}}
    event: Raw = _NONE  # WebSocket API event: {"event": {...}}
    result: Raw = _NONE  # request reply: {"result": null, "id": 1}
    error: Raw = _NONE  # request error: {"error": {"code": 2, "msg": "..."}, "id": 1}


class _Event(Struct, tag_field="e", gc=False):
    pass


class _DiffPayload(_Event, tag="depthUpdate"):
    E: _Int
    s: _Symbol
    U: _Int
    u: _Int
    b: Raw
    a: Raw


class _TradePayload(_Event, tag="trade"):
    E: _Int
    s: _Symbol
    t: _Int
    p: Raw
    q: Raw
    T: _Int
    m: bool


class _AggTradePayload(_Event, tag="aggTrade"):
    E: _Int
    s: _Symbol
    a: _Int
    p: Raw
    q: Raw
    f: _Int
    l: _Int  # noqa: E741 - Binance's field name
    T: _Int
    m: bool


class _ShutdownPayload(_Event, tag="serverShutdown"):
    E: _Int


class _Unused(_Event):
    """Known events the collector does not use: recognised, not validated."""


class _Kline(_Unused, tag="kline"):
    pass


class _Ticker(_Unused, tag="24hrTicker"):
    pass


class _MiniTicker(_Unused, tag="24hrMiniTicker"):
    pass


class _AvgPrice(_Unused, tag="avgPrice"):
    pass


class _BookTickerPayload(Struct, gc=False):
    """A raw bookTicker payload, which has no ``e``: only used to recognise one on the slow path."""

    u: _Int
    s: _Symbol
    b: str
    B: str
    a: str
    A: str


_Payload = (
    _DiffPayload
    | _TradePayload
    | _AggTradePayload
    | _ShutdownPayload
    | _Kline
    | _Ticker
    | _MiniTicker
    | _AvgPrice
)

_REST_DEPTH: Final = msgspec.json.Decoder(_RestDepthPayload, strict=False)
_ID: Final = msgspec.json.Decoder(_Int)
_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_PAYLOAD: Final = msgspec.json.Decoder(_Payload)
_BOOK_TICKER: Final = msgspec.json.Decoder(_BookTickerPayload)
_LEVELS: Final = msgspec.json.Decoder(_Levels, strict=False)
_CHECKED_LEVELS: Final = msgspec.json.Decoder(_CheckedLevels, strict=False)
_NUMBER: Final = msgspec.json.Decoder(float, strict=False)
_PX: Final = msgspec.json.Decoder(_Px, strict=False)
_TRADE_QTY: Final = msgspec.json.Decoder(_TradeQty, strict=False)
_BOUND = re.compile(r"Expected `float` [<>]=? \S+ - at `\$\[(\d+)\]\[([01])\]`$")

_INF: Final = math.inf
_MIN: Final = np.minimum.reduce
_MAX: Final = np.maximum.reduce
_EMPTY: Final = np.empty(0, np.float64)
_EMPTY.flags.writeable = False
_PARTIAL_DEPTH = re.compile(r"@depth\d+(?:@\d+ms)?$")  # <symbol>@depth20@100ms: no ``e`` either

# ---------------------------------------------------------------------------------------------
# Levels → arrays


def _level_arrays(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], *, check: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both sides as four read-only contiguous float64 arrays; with ``check``, check every value.

    Both sides go through one ``np.fromiter`` (the measured fastest path from a list of float
    pairs) and one transposing copy, so prices and quantities are each contiguous and the value
    checks are two reductions for the whole frame, not per side. ``minimum`` propagates NaN and
    NaN fails every comparison, so ``min > 0`` and ``min >= 0`` reject it without an
    ``isfinite`` pass. ``check=False`` is for levels already bounded by msgspec.
    """
    nb, n = len(bids), len(bids) + len(asks)
    if n == 0:
        return _EMPTY, _EMPTY, _EMPTY, _EMPTY
    flat = np.fromiter(
        itertools.chain(itertools.chain.from_iterable(bids), itertools.chain.from_iterable(asks)),
        np.float64,
        2 * n,
    )
    cols = flat.reshape(n, 2).T.copy()
    if check:
        px_min, qty_min = _MIN(cols, axis=1).tolist()
        if not (px_min > 0.0 and qty_min >= 0.0 and _MAX(cols, axis=None) < _INF):
            _raise_bad_level(cols, nb)
    cols.setflags(write=False)
    px, qty = cols[0], cols[1]
    return px[:nb], qty[:nb], px[nb:], qty[nb:]


def _raise_bad_level(cols: np.ndarray, nb: int) -> NoReturn:
    """Name the first bad level; only called once the fast check has failed."""
    px, qty = cols[0], cols[1]
    bad = ~((px > 0.0) & (px < _INF) & (qty >= 0.0) & (qty < _INF))
    i = int(np.flatnonzero(bad)[0])
    side, k = ("bids", i) if i < nb else ("asks", i - nb)
    p, q = float(px[i]), float(qty[i])
    raise FrameError(_level_reason(p, q), f"{side}[{k}] = [{p!r}, {q!r}]")


def _level_reason(px: float, qty: float, *, trade: bool = False) -> str:
    """Why a price/quantity pair is unusable (the pair is known to be bad)."""
    if not math.isfinite(px):
        return "non-finite price"
    if not px > 0.0:
        return "non-positive price"
    if not math.isfinite(qty):
        return "non-finite qty"
    return "non-positive qty" if trade else "negative qty"


def _decode_side(raw: Raw, side: str) -> list[tuple[float, float]]:
    """One side of a diff, every value bounded by msgspec as it is parsed."""
    try:
        return _CHECKED_LEVELS.decode(raw)
    except msgspec.ValidationError as exc:
        bound = _BOUND.search(str(exc))
        if bound is None:
            raise _from_validation(exc, side) from None
        i, is_px = int(bound.group(1)), bound.group(2) == "0"
        try:  # the slow path: read the side again unbounded to see the offending values
            p, q = _LEVELS.decode(raw)[i]
        except msgspec.ValidationError:  # a later level is malformed too: judge by the bound
            upper = "<=" in bound.group(0)  # only +inf exceeds DBL_MAX once parsed
            if is_px:
                reason = "non-finite price" if upper else "non-positive price"
            else:
                reason = "non-finite qty" if upper else "negative qty"
            raise FrameError(reason, f"{side}[{i}]: {exc}") from None
        raise FrameError(_level_reason(p, q), f"{side}[{i}] = [{p!r}, {q!r}]") from None


def _check_book_order(bid_px: np.ndarray, ask_px: np.ndarray) -> None:
    if bid_px.size > 1 and not (bid_px[1:] < bid_px[:-1]).all():
        i = int(np.flatnonzero(~(bid_px[1:] < bid_px[:-1]))[0]) + 1
        raise FrameError("book not sorted", f"bids[{i}] = {bid_px[i]!r} after {bid_px[i - 1]!r}")
    if ask_px.size > 1 and not (ask_px[1:] > ask_px[:-1]).all():
        i = int(np.flatnonzero(~(ask_px[1:] > ask_px[:-1]))[0]) + 1
        raise FrameError("book not sorted", f"asks[{i}] = {ask_px[i]!r} after {ask_px[i - 1]!r}")
    if bid_px.size and ask_px.size and not bid_px[0] < ask_px[0]:
        raise FrameError("crossed book", f"best bid {bid_px[0]!r} >= best ask {ask_px[0]!r}")


# ---------------------------------------------------------------------------------------------
# REST depth


def decode_rest_depth(raw: bytes | str) -> RestDepth:
    """Decode a REST depth snapshot (``GET /api/v3/depth``) into arrays.

    The level lists are parsed by a lax decoder (numeric strings → float) in one pass, and only
    ``lastUpdateId`` is held back and decoded strictly, so ``"lastUpdateId": "5"`` is refused
    while the whole 10 000-level body is read once. Checks: finite values, price > 0,
    quantity >= 0, bids strictly descending, asks strictly ascending, best bid < best ask.
    Either side may be empty (a thin book).

    >>> d = decode_rest_depth(b'{"lastUpdateId":7,"bids":[["99.5","1.0"]],"asks":[["100.5","2"]]}')
    >>> d.last_update_id, d.bid_px.tolist(), d.ask_qty.tolist()
    (7, [99.5], [2.0])
    """
    try:
        body = _REST_DEPTH.decode(raw)
        last_update_id = _ID.decode(body.lastUpdateId)
    except msgspec.ValidationError as exc:
        raise _from_validation(exc, "depth") from None
    except _NOT_JSON as exc:
        raise _from_decode(exc, "depth") from None
    bid_px, bid_qty, ask_px, ask_qty = _level_arrays(body.bids, body.asks, check=True)
    _check_book_order(bid_px, ask_px)
    return RestDepth(last_update_id, bid_px, bid_qty, ask_px, ask_qty)


# ---------------------------------------------------------------------------------------------
# Websocket frames


def decode_stream_frame(raw: bytes | str) -> DepthDiff | Trade | ServerShutdown | Ignored:
    """Decode one websocket text frame: a combined-stream envelope or a raw payload.

    Accepted shapes::

        {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", ...}}   # /stream?streams=
        {"e": "depthUpdate", ...}                                             # /ws/<stream>
        {"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", ...}} # → Ignored
        {"result": null, "id": 1}                                             # → Ignored("result")
        {"event": {"e": "serverShutdown", "E": 1770123456789}}                # → ServerShutdown

    The envelope is read first with ``data`` kept raw, so a bookTicker frame (no ``e``; most of
    the traffic when subscribed) is recognised from its stream name without parsing its
    payload. The payload is then decoded in one pass by a union tagged on ``e``: depthUpdate →
    :class:`DepthDiff`, trade/aggTrade → :class:`Trade`, serverShutdown →
    :class:`ServerShutdown`, kline/24hrTicker/24hrMiniTicker/avgPrice → :class:`Ignored`; any
    other ``e`` is ``FrameError("unknown event")``, since a stream we subscribed to changing
    shape should be seen, not skipped.
    """
    stream = ""
    try:
        env = _ENVELOPE.decode(raw)
        if env.data:
            stream = env.stream
            if stream.endswith("bookTicker"):
                return Ignored(stream)
            if not stream:
                raise FrameError("missing field", "`stream` beside `data`")
            payload = _PAYLOAD.decode(env.data)
        elif env.event:
            payload = _PAYLOAD.decode(env.event)
        elif env.result:
            return Ignored("result")
        elif env.error:
            raise FrameError("request error", _clip(bytes(env.error)))
        else:
            payload = _PAYLOAD.decode(raw)
    except msgspec.ValidationError as exc:
        return _unrecognised(exc, raw, stream)
    except _NOT_JSON as exc:
        raise _from_decode(exc, stream or "frame") from None

    if type(payload) is _DiffPayload:
        if payload.u < payload.U:
            raise FrameError("u < U", f"{stream or payload.s}: U={payload.U} u={payload.u}")
        bids = _decode_side(payload.b, "bids")
        asks = _decode_side(payload.a, "asks")
        bid_px, bid_qty, ask_px, ask_qty = _level_arrays(bids, asks, check=False)
        return DepthDiff(payload.s, payload.E, payload.U, payload.u, bid_px, bid_qty, ask_px, ask_qty)
    if type(payload) is _TradePayload:
        px, qty = _trade_numbers(payload.p, payload.q, stream or payload.s)
        t = payload.t
        return Trade(payload.s, payload.E, payload.T, t, t, t, px, qty, payload.m, "trade")
    if type(payload) is _AggTradePayload:
        if payload.l < payload.f:
            raise FrameError("l < f", f"{stream or payload.s}: f={payload.f} l={payload.l}")
        px, qty = _trade_numbers(payload.p, payload.q, stream or payload.s)
        return Trade(
            payload.s, payload.E, payload.T, payload.a, payload.f, payload.l, px, qty, payload.m, "aggTrade"
        )
    if type(payload) is _ShutdownPayload:
        return ServerShutdown(payload.E)
    return Ignored(stream or str(type(payload).__struct_config__.tag))


def _trade_numbers(p: Raw, q: Raw, where: str) -> tuple[float, float]:
    try:
        return _PX.decode(p), _TRADE_QTY.decode(q)
    except msgspec.ValidationError:
        pass
    detail = f"{where}: p={_clip(bytes(p))} q={_clip(bytes(q))}"
    try:  # the slow path: parse unbounded to tell a bad number from one out of bounds
        px, qty = _NUMBER.decode(p), _NUMBER.decode(q)
    except msgspec.ValidationError:
        raise FrameError("bad number", detail) from None
    raise FrameError(_level_reason(px, qty, trade=True), detail)


def _unrecognised(exc: msgspec.ValidationError, raw: bytes | str, stream: str) -> Ignored:
    """The slow path of :func:`decode_stream_frame`: an e-less payload may still be known.

    Returns :class:`Ignored` for a partial-depth or raw bookTicker payload (both lack ``e``);
    raises :class:`FrameError` for everything else.
    """
    msg = str(exc)
    where = stream or "frame"
    if msg == "Object missing required field `e`":
        if stream and _PARTIAL_DEPTH.search(stream):
            return Ignored(stream)
        if not stream:
            try:
                _BOOK_TICKER.decode(raw)
            except _NOT_JSON:
                pass
            else:
                return Ignored("bookTicker")
        raise FrameError("missing event type", where) from None
    if msg.startswith("Invalid value") and msg.endswith("- at `$.e`"):
        raise FrameError("unknown event", f"{where}: {msg.removeprefix('Invalid value ').split(' - ')[0]}")
    raise _from_validation(exc, where) from None


# ---------------------------------------------------------------------------------------------
# exchangeInfo


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """The trading rules of one symbol that the collector and the risk checks need.

    From the symbol's ``PRICE_FILTER`` (``tickSize``), ``LOT_SIZE`` (``stepSize``, ``minQty``)
    and ``NOTIONAL`` or older ``MIN_NOTIONAL`` (``minNotional``; 0.0 when the symbol has
    neither). Binance documents 0 as "rule disabled" for these values, so 0 is allowed.
    """

    symbol: str
    status: str
    tick_size: float
    step_size: float
    min_qty: float
    min_notional: float


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One entry of ``rateLimits``: at most ``limit`` per ``interval_num`` ``interval``s.

    ``kind`` is ``REQUEST_WEIGHT``, ``RAW_REQUESTS`` or ``ORDERS``.
    """

    kind: str
    interval: Literal["SECOND", "MINUTE", "HOUR", "DAY"]
    interval_num: int
    limit: int

    @property
    def window_s(self) -> int:
        """The window length in seconds (5 ``MINUTE`` → 300)."""
        return _INTERVAL_S[self.interval] * self.interval_num


_INTERVAL_S: Final = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


@dataclass(frozen=True)
class ExchangeInfo:
    """What the collector keeps from ``GET /api/v3/exchangeInfo``: symbol rules and rate limits.

    ``request_weight_per_minute`` is the ``REQUEST_WEIGHT``/1 ``MINUTE`` limit that a REST
    client budgets against (depth limit=5000 weighs 250); ``raw_requests`` are the
    ``RAW_REQUESTS`` windows (a request counts 1 whatever its weight); ``rate_limits`` keeps
    every entry, ``ORDERS`` included.

    Raw payload (abridged)::

        {"timezone": "UTC", "serverTime": 1723161255000,
         "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                         "intervalNum": 1, "limit": 6000},
                        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE",
                         "intervalNum": 5, "limit": 61000}],
         "exchangeFilters": [],
         "symbols": [{"symbol": "BTCUSDT", "status": "TRADING", ...,
                      "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                                   "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                                  {"filterType": "LOT_SIZE", "minQty": "0.00001000",
                                   "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                                  {"filterType": "NOTIONAL", "minNotional": "5.00000000", ...}]}]}
    """

    symbols: dict[str, SymbolRules]
    request_weight_per_minute: int
    raw_requests: tuple[RateLimit, ...]
    rate_limits: tuple[RateLimit, ...] = ()
    server_time_ms: int = 0


class _RateLimitPayload(Struct, gc=False):
    rateLimitType: str
    interval: Literal["SECOND", "MINUTE", "HOUR", "DAY"]
    intervalNum: Annotated[int, Meta(ge=1)]
    limit: Annotated[int, Meta(ge=0)]


class _FilterPayload(Struct, gc=False):
    filterType: str
    tickSize: str | None = None
    stepSize: str | None = None
    minQty: str | None = None
    minNotional: str | None = None


class _SymbolPayload(Struct, gc=False):
    symbol: _Symbol
    status: str
    filters: list[_FilterPayload]


class _ExchangeInfoPayload(Struct, gc=False):
    serverTime: _Int
    rateLimits: list[_RateLimitPayload]
    symbols: list[_SymbolPayload]


_EXCHANGE_INFO: Final = msgspec.json.Decoder(_ExchangeInfoPayload)
_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _decimal(text: str | None, symbol: str, filter_type: str, name: str) -> float:
    """A plain non-negative decimal string (``"0.01000000"``) as float; anything else is refused."""
    if text is None:
        raise FrameError("missing field", f"{symbol}: {filter_type}.{name}")
    if not _DECIMAL.fullmatch(text):
        raise FrameError("bad number", f"{symbol}: {filter_type}.{name} = {_clip(text)!r}")
    return float(text)


def _symbol_rules(s: _SymbolPayload) -> SymbolRules:
    by_type = {f.filterType: f for f in s.filters}
    price, lot = by_type.get("PRICE_FILTER"), by_type.get("LOT_SIZE")
    if price is None or lot is None:
        missing = "PRICE_FILTER" if price is None else "LOT_SIZE"
        raise FrameError("missing filter", f"{s.symbol}: {missing}")
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL")
    min_notional = (
        _decimal(notional.minNotional, s.symbol, notional.filterType, "minNotional") if notional else 0.0
    )
    return SymbolRules(
        symbol=s.symbol,
        status=s.status,
        tick_size=_decimal(price.tickSize, s.symbol, "PRICE_FILTER", "tickSize"),
        step_size=_decimal(lot.stepSize, s.symbol, "LOT_SIZE", "stepSize"),
        min_qty=_decimal(lot.minQty, s.symbol, "LOT_SIZE", "minQty"),
        min_notional=min_notional,
    )


def decode_exchange_info(raw: bytes | str) -> ExchangeInfo:
    """Decode ``GET /api/v3/exchangeInfo`` (all symbols or ``?symbols=[...]``) strictly.

    Decoded with a strict decoder (it is read at start-up, not on the hot path) and its decimal
    strings parsed by a plain-decimal pattern. A symbol without ``PRICE_FILTER`` or
    ``LOT_SIZE`` fails the whole response: rules that are silently missing are worse than a
    start-up that stops and says which symbol.
    """
    try:
        body = _EXCHANGE_INFO.decode(raw)
    except msgspec.ValidationError as exc:
        raise _from_validation(exc, "exchangeInfo") from None
    except _NOT_JSON as exc:
        raise _from_decode(exc, "exchangeInfo") from None
    limits = tuple(RateLimit(r.rateLimitType, r.interval, r.intervalNum, r.limit) for r in body.rateLimits)
    weight = [r.limit for r in limits if r.kind == "REQUEST_WEIGHT" and r.window_s == 60]
    if not weight:
        raise FrameError("missing rate limit", "no REQUEST_WEIGHT per 1 MINUTE in rateLimits")
    return ExchangeInfo(
        symbols={s.symbol: _symbol_rules(s) for s in body.symbols},
        request_weight_per_minute=min(weight),
        raw_requests=tuple(r for r in limits if r.kind == "RAW_REQUESTS"),
        rate_limits=limits,
        server_time_ms=body.serverTime,
    )

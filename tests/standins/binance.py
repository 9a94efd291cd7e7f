"""A protocol-level stand-in for the Binance spot exchange (REST + combined WebSocket streams).

Why: the live collector must be tested against the real wire protocol (endpoints, JSON shapes, update-id
sequencing, rate-limit headers, pings, disconnects) without the internet, deterministically, and with
faults on demand. This module serves that protocol over real sockets on 127.0.0.1 and keeps the
exchange's own truth (the order book at every final update id) so a test can check what the collector
published against what the exchange actually had.

Design notes:

- Prices and quantities are held as integers in units of 1e-8 (Binance's 8 decimals), so the truth and
  the wire strings can never disagree by float rounding: ``units / 1e8`` is exactly ``float("<string>")``.
- The market generator runs from :meth:`BinanceStandIn.start` whether or not anyone is connected (a real
  client buffers diffs *before* fetching the snapshot), and every connection gets the same broadcast.
- Each diff consumes as many update ids as it made raw level changes (like Binance, where ``u - U`` is
  usually > 0), so clients cannot assume ``u == U``.
- ``book_at`` is backed by an undo log, not by copies of the book, so a long history stays cheap.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

_E8 = 10**8
_MAX_DEPTH_LIMIT = 5000
_DEFAULT_START_PRICES = {"BTCFDUSD": 60000.0, "ETHFDUSD": 3000.0}
_OTHER_START_PRICE = 100.0
_KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BTC", "ETH", "BNB")
_STEP_UNITS = 1000  # LOT_SIZE stepSize 0.00001
_TARGET_LEVEL_NOTIONAL = 10_000.0  # typical level size in quote currency; keeps quantities plausible
_EXCHANGE_INFO_WEIGHT = 20
_LIGHT_WEIGHT = 1  # /api/v3/ping and /api/v3/time

Side = Literal["bids", "asks"]
_OutKind = Literal["text", "raw", "close"]


def fmt8(units: int) -> str:
    """Format integer 1e-8 units the way Binance does ("61837.63000000")."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    return f"{sign}{units // _E8}.{units % _E8:08d}"


def depth_weight(limit: int) -> int:
    """Request weight of ``GET /api/v3/depth`` for an (already clamped) ``limit``.

    Written again here on purpose, not imported from the collector: the stand-in is the oracle
    for the collector's own weight table, and an oracle must not share the code it checks.
    """
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RequestRecord:
    """One REST request as the exchange saw it, so tests can assert on a client's request pattern."""

    method: str
    path: str
    query: dict[str, str]
    at: float  # time.monotonic() on arrival
    status: int
    weight: int  # weight charged against the minute window (0 when refused before charging)
    wall: float = 0.0  # the exchange's wall clock on arrival (``clock``): minutes, bans, Retry-After
    delay_s: float = 0.0  # how long the answer was held back (``delay_rest``)


class _BookSide:
    """One side of a book: a dict for lookups plus an ascending price list for touch/far-end access."""

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []

    def __len__(self) -> int:
        return len(self.levels)

    def set(self, price: int, qty: int) -> None:
        if qty <= 0:
            if price in self.levels:
                del self.levels[price]
                del self.prices[bisect.bisect_left(self.prices, price)]
            return
        if price not in self.levels:
            bisect.insort(self.prices, price)
        self.levels[price] = qty

    def nth(self, i: int) -> int:
        """The i-th price from the touch (0 = best)."""
        return self.prices[-1 - i] if self.descending else self.prices[i]

    def best(self) -> int:
        return self.nth(0)

    def far(self) -> int:
        return self.prices[0] if self.descending else self.prices[-1]

    def top(self, n: int) -> list[tuple[int, int]]:
        ps = self.prices[::-1][:n] if self.descending else self.prices[:n]
        return [(p, self.levels[p]) for p in ps]


@dataclass
class _Undo:
    """Undo record of one diff: the book before it is the book after it with ``old`` restored."""

    first_id: int  # U
    final_id: int  # u
    old: dict[tuple[Side, int], int]  # (side, price) -> qty before the diff (0 = absent)


@dataclass
class _Trade:
    agg_id: int
    first_trade_id: int
    last_trade_id: int
    price: int
    qty: int
    parts: list[int]  # per-trade quantities, summing to qty
    time_ms: int
    buyer_is_maker: bool


class _Market:
    """The simulated book and trade tape of one symbol, driven by its own seeded RNG."""

    def __init__(self, symbol: str, seed: int, start_price: float, tick: float, levels: int, history: int):
        self.symbol = symbol
        self.rng = random.Random(f"{seed}:{symbol}")  # str seeds are stable across runs and processes
        self.tick = max(1, round(tick * _E8))
        self.levels = levels
        self.bids = _BookSide(descending=True)
        self.asks = _BookSide(descending=False)
        self.last_update_id = self.rng.randint(10**9, 5 * 10**10)
        self.next_agg_id = self.rng.randint(10**8, 10**9)
        self.next_trade_id = self.rng.randint(10**9, 5 * 10**9)
        self.history: deque[_Undo] = deque(maxlen=history)
        self.drop_pending = 0
        self.last_trade_ms = 0  # trade times never go backwards, even if the wall clock steps
        self.qty_scale = max(1, int(_TARGET_LEVEL_NOTIONAL / start_price * _E8 / _STEP_UNITS))
        self._old: dict[tuple[Side, int], int] = {}
        self._raw_changes = 0

        best_ask = max(2, round(start_price * _E8 / self.tick)) * self.tick
        price = best_ask - self.tick
        for _ in range(levels):
            if price <= 0:
                break
            self.bids.set(price, self._random_qty())
            price -= self.tick * self._gap()
        price = best_ask
        for _ in range(levels):
            self.asks.set(price, self._random_qty())
            price += self.tick * self._gap()

    # -- randomness -------------------------------------------------------------------------------
    def _gap(self) -> int:
        """Ticks between adjacent resting levels: mostly contiguous, some holes to insert into."""
        return self.rng.choice((1, 1, 1, 2, 3))

    def _random_qty(self, scale: float = 1.0) -> int:
        steps = max(1, int(self.rng.expovariate(1.0) * self.qty_scale * scale))
        return steps * _STEP_UNITS

    def _near_touch_index(self, side: _BookSide) -> int:
        return min(int(self.rng.expovariate(0.25)), len(side) - 1)

    # -- mutation with undo/diff bookkeeping ------------------------------------------------------
    def _side(self, side: Side) -> _BookSide:
        return self.bids if side == "bids" else self.asks

    def _set(self, side: Side, price: int, qty: int) -> None:
        book = self._side(side)
        self._old.setdefault((side, price), book.levels.get(price, 0))
        book.set(price, qty)
        self._raw_changes += 1

    def _trade(self, buyer_aggressor: bool, time_ms: int, sweep: bool) -> _Trade | None:
        """Take liquidity at the opposite touch; the book change shows up in this step's diff."""
        maker: Side = "asks" if buyer_aggressor else "bids"
        book = self._side(maker)
        if sweep and len(book) <= 1:
            return None  # never empty a side
        price = book.best()
        resting = book.levels[price]
        qty = resting if sweep else min(resting, self._random_qty(0.2))
        if qty == resting and len(book) <= 1:
            qty -= _STEP_UNITS  # never empty a side
        if qty <= 0:
            return None
        time_ms = self.last_trade_ms = max(time_ms, self.last_trade_ms)
        self._set(maker, price, resting - qty)
        steps = qty // _STEP_UNITS
        n = self.rng.randint(1, max(1, min(3, steps)))
        cuts = sorted(self.rng.sample(range(1, steps), n - 1)) if n > 1 else []
        bounds = [0, *cuts, steps]
        parts = [(bounds[i + 1] - bounds[i]) * _STEP_UNITS for i in range(n)]
        trade = _Trade(
            agg_id=self.next_agg_id,
            first_trade_id=self.next_trade_id,
            last_trade_id=self.next_trade_id + n - 1,
            price=price,
            qty=qty,
            parts=parts,
            time_ms=time_ms,
            buyer_is_maker=not buyer_aggressor,
        )
        self.next_agg_id += 1
        self.next_trade_id += n
        return trade

    def step(self, now_ms: int, interval_ms: int) -> tuple[dict[str, Any], list[_Trade]]:
        """Advance one diff interval: trades at random times, a few changes near the touch, refill depth.

        Returns the depthUpdate payload (already applied to the truth and the history) and the trades.
        """
        rng = self.rng
        self._old = {}
        self._raw_changes = 0
        trades: list[_Trade] = []

        n_trades = rng.choice((0, 0, 0, 1, 2))
        times = sorted(now_ms - rng.randrange(max(1, interval_ms)) for _ in range(n_trades))
        for t in times:
            tr = self._trade(buyer_aggressor=rng.random() < 0.5, time_ms=t, sweep=False)
            if tr:
                trades.append(tr)
        if rng.random() < 0.08:  # the mid moves: an aggressor sweeps whole levels
            buyer = rng.random() < 0.5
            swept = 0
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5, 8, 13))):
                tr = self._trade(buyer_aggressor=buyer, time_ms=now_ms, sweep=True)
                if tr is None:
                    break
                trades.append(tr)
                swept = tr.price
            if swept and rng.random() < 0.5:  # the aggressor's remainder rests at the swept price
                self._set("bids" if buyer else "asks", swept, self._random_qty())

        for _ in range(rng.randint(1, 5)):
            self._random_change()
        self._tighten()
        if self._raw_changes == 0:
            side: Side = rng.choice(("bids", "asks"))
            self._set(side, self._side(side).best(), self._random_qty())
        self._refill()

        first = self.last_update_id + 1
        self.last_update_id += self._raw_changes
        self.history.append(_Undo(first, self.last_update_id, self._old))
        bids = sorted((p for s, p in self._old if s == "bids"), reverse=True)
        asks = sorted(p for s, p in self._old if s == "asks")
        payload = {
            "e": "depthUpdate",
            "E": now_ms,
            "s": self.symbol,
            "U": first,
            "u": self.last_update_id,
            "b": [[fmt8(p), fmt8(self.bids.levels.get(p, 0))] for p in bids],
            "a": [[fmt8(p), fmt8(self.asks.levels.get(p, 0))] for p in asks],
        }
        assert self.bids.best() < self.asks.best(), "stand-in bug: crossed book"
        return payload, trades

    def _random_change(self) -> None:
        rng = self.rng
        side: Side = rng.choice(("bids", "asks"))
        book = self._side(side)
        r = rng.random()
        if r < 0.45:  # change the size of a resting level
            self._set(side, book.nth(self._near_touch_index(book)), self._random_qty())
        elif r < 0.8:  # a new level at the first empty tick at or behind a random depth (never crossing)
            step = -self.tick if side == "bids" else self.tick
            price = book.best() + rng.randint(0, 15) * step
            for _ in range(20):
                if price not in book.levels:
                    break
                price += step
            if price > 0 and price not in book.levels:
                self._set(side, price, self._random_qty())
        elif len(book) > 1:  # a level near the touch is cancelled
            self._set(side, book.nth(self._near_touch_index(book)), 0)

    def _tighten(self) -> None:
        """A wide spread attracts new quotes inside it, so the spread keeps mean-reverting to ~1 tick."""
        bid, ask = self.bids.best(), self.asks.best()
        spread = (ask - bid) // self.tick
        if spread > 1 and self.rng.random() < 0.6:
            side: Side = self.rng.choice(("bids", "asks"))
            k = self.rng.randint(1, spread - 1)
            self._set(
                side, bid + k * self.tick if side == "bids" else ask - k * self.tick, self._random_qty()
            )

    def _refill(self) -> None:
        """Keep exactly ``levels`` per side by adding/removing at the far end (visible in the diff)."""
        for side in ("bids", "asks"):
            book = self._side(side)
            while len(book) > self.levels:
                self._set(side, book.far(), 0)
            while len(book) < self.levels:
                step = self.tick * self._gap()
                price = book.far() - step if side == "bids" else book.far() + step
                if price <= 0:
                    break
                self._set(side, price, self._random_qty())

    # -- truth for assertions ---------------------------------------------------------------------
    def book_at(self, update_id: int) -> tuple[dict[int, int], dict[int, int]]:
        bids = dict(self.bids.levels)
        asks = dict(self.asks.levels)
        if update_id == self.last_update_id:
            return bids, asks
        for rec in reversed(self.history):
            if rec.final_id < update_id:
                break
            for (side, price), qty in rec.old.items():
                target = bids if side == "bids" else asks
                if qty:
                    target[price] = qty
                else:
                    target.pop(price, None)
            if rec.first_id - 1 == update_id:
                return bids, asks
        raise KeyError(f"{self.symbol}: no book at update id {update_id} (not a final id, or out of history)")


@dataclass(eq=False)
class _Conn:
    """One accepted WebSocket: its subscriptions, outgoing queue (keeps frames ordered) and ping state."""

    ws: web.WebSocketResponse
    request: web.Request
    streams: set[str]
    queue: asyncio.Queue[tuple[_OutKind, Any]] = field(default_factory=asyncio.Queue)
    awaiting_pong_since: float | None = None


@dataclass
class _RestFault:
    kind: Literal["429", "418", "delay"]
    value: float


class _Reply(Exception):
    """Raised inside REST handling to answer an error with Binance's JSON shape."""

    def __init__(self, status: int, code: int, msg: str, retry_after: float | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after


class BinanceStandIn:
    """A scriptable Binance spot exchange on 127.0.0.1: REST depth/exchangeInfo and combined streams.

    Faults (each applies once, in call order, unless stated): :meth:`drop_next_diff`,
    :meth:`disconnect_all`, :meth:`send_server_shutdown`, :meth:`answer_429`, :meth:`answer_418`,
    :meth:`delay_rest`, :meth:`send_malformed`. REST faults share one FIFO: each queued fault is consumed by
    exactly one REST call (``answer_429(times=3)`` queues three); calls refused by an active ban consume
    nothing.

    Attributes for assertions: ``requests`` (every REST call), ``ws_connections`` (accepted so far,
    cumulative), ``open_connections`` (currently open), ``pongs`` (pong frames received, any payload),
    ``pings_sent``, ``pong_timeouts`` (connections dropped for not answering pings).
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTCFDUSD",),
        seed: int = 1,
        start_prices: dict[str, float] | None = None,
        levels: int = 6000,
        tick: float = 0.01,
        diff_interval_s: float = 0.1,
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 60.0,
        weight_limit: int = 6000,
        ban_s: float = 120.0,
        shutdown_grace_s: float = 1.0,
        history: int = 3000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol")
        prices = {**_DEFAULT_START_PRICES, **(start_prices or {})}
        self.symbols = [s.upper() for s in symbols]
        self.tick = tick
        self.diff_interval_s = diff_interval_s
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.weight_limit = weight_limit
        self.ban_s = ban_s
        self.shutdown_grace_s = shutdown_grace_s
        # REST's wall clock (weight minutes, Retry-After, bans): a test passes a settable one to
        # step through minutes and bans instead of sleeping through them
        self.clock = clock
        self._markets = {
            s: _Market(s, seed, prices.get(s, _OTHER_START_PRICE), tick, levels, history)
            for s in self.symbols
        }
        self._streams: set[str] = set()
        for s in self.symbols:
            low = s.lower()
            self._streams |= {f"{low}@depth@100ms", f"{low}@aggTrade", f"{low}@trade"}

        self.requests: list[RequestRecord] = []
        self.ws_connections = 0
        self.pongs = 0
        self.pings_sent = 0
        self.pong_timeouts = 0
        self._conns: set[_Conn] = set()
        self._rest_faults: deque[_RestFault] = deque()
        self._weight_window = -1
        self._weight_used = 0
        self._retry_until = 0.0  # wall time a 429's Retry-After ends; requests before it are violations
        self._ban_until = 0.0  # wall time an IP ban (418) ends
        self._charged = 0  # weight charged by the REST call being answered (handling is synchronous)
        self._generator: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and start the market generator (it runs with or without clients)."""
        app = web.Application()
        app.router.add_get("/stream", self._ws_handler)
        app.router.add_route("*", "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._generator = asyncio.create_task(self._generate(), name="binance-standin-generator")

    async def stop(self) -> None:
        """Stop generating, drop every connection and release the port."""
        tasks = [t for t in (self._generator, *self._background) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._abort_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BinanceStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    # -- truth ------------------------------------------------------------------------------------
    def book(self, symbol: str) -> tuple[dict[float, float], dict[float, float], int]:
        """The exchange's own book after the last diff it generated (sent or dropped): bids, asks, id."""
        m = self._market(symbol)
        return _floats(m.bids.levels), _floats(m.asks.levels), m.last_update_id

    def book_at(self, symbol: str, update_id: int) -> tuple[dict[float, float], dict[float, float]]:
        """The book as it was right after the diff whose final id ``u`` is ``update_id``.

        Also valid: the initial book's id and ``U - 1`` of the oldest retained diff. Raises ``KeyError``
        for an id inside a diff's range or older than the retained history (``history`` diffs).
        """
        bids, asks = self._market(symbol).book_at(update_id)
        return _floats(bids), _floats(asks)

    def _market(self, symbol: str) -> _Market:
        self._raise_if_generator_died()
        return self._markets[symbol.upper()]

    def _raise_if_generator_died(self) -> None:
        """Surface a crashed generator in the test instead of letting it wait on a silent stream."""
        g = self._generator
        if g is not None and g.done() and not g.cancelled() and g.exception() is not None:
            raise RuntimeError("Binance stand-in generator crashed") from g.exception()

    # -- fault script -----------------------------------------------------------------------------
    def drop_next_diff(self, symbol: str) -> None:
        """Generate (and apply to the truth) the next diff of ``symbol`` but send it to nobody: a gap."""
        self._markets[symbol.upper()].drop_pending += 1

    def disconnect_all(self) -> None:
        """Close every WebSocket abruptly: the TCP connection drops with no close frame."""
        self._abort_all()

    def send_server_shutdown(self, grace_s: float | None = None) -> None:
        """Send ``{"e":"serverShutdown","E":ms}`` to every connection, then close each after a grace."""
        event = json.dumps({"e": "serverShutdown", "E": _now_ms()}, separators=(",", ":"))
        grace = self.shutdown_grace_s if grace_s is None else grace_s
        for conn in list(self._conns):
            conn.queue.put_nowait(("text", event))
            self._spawn(self._close_later(conn, grace))

    def pause(self) -> None:
        """The market goes silent: no diff and no trade until :meth:`resume` (connections stay open
        and pings go on, as when Binance's matching engine stalls behind a live socket)."""
        if self._generator is not None:
            self._generator.cancel()

    def resume(self) -> None:
        """The market moves again from where :meth:`pause` left it (no update id is skipped)."""
        if self._generator is None or self._generator.done():
            self._generator = asyncio.create_task(self._generate(), name="binance-standin-generator")

    def answer_429(self, retry_after_s: int, times: int = 1) -> None:
        """The next ``times`` REST calls answer 429 with ``Retry-After: retry_after_s``.

        Each scripted 429 starts a Retry-After window; once the scripted answers are used up, a call
        inside the window is a violation and gets 418 (a ban of ``ban_s``), as on Binance.
        """
        self._rest_faults.extend(_RestFault("429", retry_after_s) for _ in range(times))

    def answer_418(self, retry_after_s: int) -> None:
        """The next REST call answers 418 and bans ALL REST calls for ``retry_after_s`` (all get 418)."""
        self._rest_faults.append(_RestFault("418", retry_after_s))

    def delay_rest(self, seconds: float) -> None:
        """Delay the next REST response by ``seconds``.

        The answer (e.g. a depth snapshot) is computed on arrival and delivered late, like a slow
        network: by the time the client sees the snapshot, more diffs have been broadcast.
        """
        self._rest_faults.append(_RestFault("delay", seconds))

    def send_malformed(self, frames: Sequence[str | bytes]) -> None:
        """Inject raw TEXT frames into every open connection, in order with the stream, unvalidated.

        ``bytes`` are sent verbatim as a text frame's payload (so invalid UTF-8 is possible).
        """
        for conn in list(self._conns):
            for f in frames:
                conn.queue.put_nowait(("raw", f.encode() if isinstance(f, str) else bytes(f)))

    # -- market generator -------------------------------------------------------------------------
    async def _generate(self) -> None:
        """Tick every ``diff_interval_s`` on an absolute schedule; if late, skip ahead instead of bursting."""
        loop = asyncio.get_running_loop()
        interval_ms = max(1, round(self.diff_interval_s * 1000))
        next_t = loop.time()
        while True:
            next_t += self.diff_interval_s
            delay = next_t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_t = loop.time()
            now_ms = _now_ms()
            for m in self._markets.values():
                payload, trades = m.step(now_ms, interval_ms)
                self._publish_trades(m, trades, now_ms)
                if m.drop_pending:
                    m.drop_pending -= 1
                else:
                    self._publish(f"{m.symbol.lower()}@depth@100ms", payload)

    def _publish_trades(self, m: _Market, trades: list[_Trade], now_ms: int) -> None:
        low = m.symbol.lower()
        for tr in trades:
            self._publish(
                f"{low}@aggTrade",
                {
                    "e": "aggTrade",
                    "E": now_ms,
                    "s": m.symbol,
                    "a": tr.agg_id,
                    "p": fmt8(tr.price),
                    "q": fmt8(tr.qty),
                    "f": tr.first_trade_id,
                    "l": tr.last_trade_id,
                    "T": tr.time_ms,
                    "m": tr.buyer_is_maker,
                    "M": True,
                },
            )
            for i, part in enumerate(tr.parts):
                self._publish(
                    f"{low}@trade",
                    {
                        "e": "trade",
                        "E": now_ms,
                        "s": m.symbol,
                        "t": tr.first_trade_id + i,
                        "p": fmt8(tr.price),
                        "q": fmt8(part),
                        "T": tr.time_ms,
                        "m": tr.buyer_is_maker,
                        "M": True,
                    },
                )

    def _publish(self, stream: str, payload: dict[str, Any]) -> None:
        """Broadcast one event: serialised once, queued to every subscriber (never blocks the generator)."""
        subscribers = [c for c in self._conns if stream in c.streams]
        if not subscribers:
            return
        text = json.dumps({"stream": stream, "data": payload}, separators=(",", ":"))
        for c in subscribers:
            c.queue.put_nowait(("text", text))

    # -- websocket --------------------------------------------------------------------------------
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        names = [n for n in request.query.get("streams", "").split("/") if n]
        bad = [n for n in names if n not in self._streams]
        if not names or bad:
            body = {"code": -1100, "msg": f"Invalid stream name(s): {bad or names}"}
            return web.json_response(body, status=400)
        # autoping=False: we answer pings ourselves and see pongs, which we count and use for the timeout.
        ws = web.WebSocketResponse(autoping=False, compress=False)
        await ws.prepare(request)
        conn = _Conn(ws=ws, request=request, streams=set(names))
        self._conns.add(conn)
        self.ws_connections += 1
        writer = asyncio.create_task(self._writer(conn))
        pinger = asyncio.create_task(self._pinger(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PONG:
                    self.pongs += 1
                    conn.awaiting_pong_since = None
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    self._control(conn, msg.data)
        except ConnectionError:
            pass
        finally:
            self._conns.discard(conn)
            writer.cancel()
            pinger.cancel()
        return ws

    async def _writer(self, conn: _Conn) -> None:
        """Drain one connection's queue in order; a broken connection just ends its writer."""
        try:
            while True:
                kind, data = await conn.queue.get()
                if kind == "text":
                    await conn.ws.send_str(data)
                elif kind == "raw":
                    await conn.ws.send_frame(data, WSMsgType.TEXT)
                else:
                    self._conns.discard(conn)
                    await conn.ws.close(code=data, message=b"server shutdown")
                    return
        except (ConnectionError, RuntimeError):
            self._abort(conn)

    async def _pinger(self, conn: _Conn) -> None:
        """Ping every ``ping_interval_s``; drop the connection if a ping stays unanswered ``pong_timeout_s``.

        Any pong (solicited or not) clears the wait, as Binance allows unsolicited pongs.
        """
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.ping_interval_s
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not conn.ws.closed:
                now = loop.time()
                since = conn.awaiting_pong_since
                if since is not None and now - since >= self.pong_timeout_s:
                    self.pong_timeouts += 1
                    self._abort(conn)
                    return
                if now >= next_ping:
                    await conn.ws.ping(str(_now_ms()).encode())
                    self.pings_sent += 1
                    if conn.awaiting_pong_since is None:
                        conn.awaiting_pong_since = now
                    next_ping += self.ping_interval_s
                    continue
                wake = next_ping
                if conn.awaiting_pong_since is not None:
                    wake = min(wake, conn.awaiting_pong_since + self.pong_timeout_s)
                await asyncio.sleep(max(0.0, wake - now) + 0.001)

    def _control(self, conn: _Conn, text: str) -> None:
        """Live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests, answered like Binance."""
        try:
            req = json.loads(text)
        except ValueError:
            self._reply(conn, {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        if not isinstance(req, dict):
            self._reply(conn, {"error": {"code": 2, "msg": "Invalid request"}, "id": None})
            return
        rid = req.get("id")
        method = req.get("method")
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or any(p not in self._streams for p in params):
                self._reply(conn, {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": rid})
                return
            if method == "SUBSCRIBE":
                conn.streams.update(params)
            else:
                conn.streams.difference_update(params)
            self._reply(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": sorted(conn.streams), "id": rid})
        else:
            self._reply(conn, {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": rid})

    def _reply(self, conn: _Conn, obj: dict[str, Any]) -> None:
        conn.queue.put_nowait(("text", json.dumps(obj, separators=(",", ":"))))

    async def _close_later(self, conn: _Conn, grace_s: float) -> None:
        await asyncio.sleep(grace_s)
        conn.queue.put_nowait(("close", 1001))  # behind everything already queued

    def _abort(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        transport = conn.request.transport
        if transport is not None:
            transport.abort()

    def _abort_all(self) -> None:
        for conn in list(self._conns):
            self._abort(conn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- REST -------------------------------------------------------------------------------------
    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        now = self.clock()
        delay = 0.0
        headers: dict[str, str] = {}
        self._charged = 0
        try:
            delay, body = self._answer(request, now)
            status = 200
        except _Reply as r:
            status = r.status
            body = {"code": r.code, "msg": r.msg}
            if r.retry_after is not None:
                headers["Retry-After"] = str(max(1, math.ceil(r.retry_after)))
        headers["X-MBX-USED-WEIGHT-1M"] = str(self._used_weight(now))
        self.requests.append(
            RequestRecord(request.method, request.path, dict(request.query), arrived, status, self._charged,
                          wall=now, delay_s=delay)
        )
        response = web.json_response(body, status=status, headers=headers)
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    def _answer(self, request: web.Request, now: float) -> tuple[float, Any]:
        """Decide one REST answer at arrival time: ban, scripted fault, violation, weight, then endpoint.

        Returns (delay, JSON body) or raises :class:`_Reply` for an error answer. The weight charged is
        left in ``_charged``; a ``_Reply`` raised after charging keeps the charge (e.g. a bad symbol).
        """
        if now < self._ban_until:
            raise self._banned(now)
        delay = 0.0
        if self._rest_faults:
            fault = self._rest_faults.popleft()
            if fault.kind == "delay":
                delay = fault.value
            elif fault.kind == "429":
                self._retry_until = now + fault.value
                raise self._too_many(fault.value)
            else:
                self._ban_until = now + fault.value
                raise self._banned(now)
        if now < self._retry_until:  # ignored a 429's Retry-After: banned
            self._retry_until = 0.0
            self._ban_until = now + self.ban_s
            raise self._banned(now)

        path, q = request.path, request.query
        if request.method != "GET":
            raise _Reply(404, -1100, f"Unknown endpoint: {request.method} {path}")
        if path == "/api/v3/depth":
            limit = self._parse_limit(q.get("limit"))
            self._charge(depth_weight(limit or 100), now)
            if limit is None:
                raise _Reply(400, -1100, "Illegal characters found in parameter 'limit'.")
            return delay, self._depth(q.get("symbol"), limit)
        if path == "/api/v3/exchangeInfo":
            self._charge(_EXCHANGE_INFO_WEIGHT, now)
            return delay, self._exchange_info(q.get("symbol"), q.get("symbols"))
        if path == "/api/v3/ping":
            self._charge(_LIGHT_WEIGHT, now)
            return delay, {}
        if path == "/api/v3/time":
            self._charge(_LIGHT_WEIGHT, now)
            return delay, {"serverTime": _now_ms()}
        raise _Reply(404, -1100, f"Unknown endpoint: {path}")

    @staticmethod
    def _parse_limit(raw: str | None) -> int | None:
        """Default 100; above 5000 is truncated to 5000 (as documented); junk or < 1 is None (a 400)."""
        if raw is None:
            return 100
        try:
            limit = int(raw)
        except ValueError:
            return None
        return min(limit, _MAX_DEPTH_LIMIT) if limit >= 1 else None

    def _used_weight(self, now: float) -> int:
        return self._weight_used if int(now // 60) == self._weight_window else 0

    def _charge(self, weight: int, now: float) -> None:
        """Sum weights per wall-clock minute; a request that would exceed the limit is refused with 429."""
        window = int(now // 60)
        if window != self._weight_window:
            self._weight_window, self._weight_used = window, 0
        if self._weight_used + weight > self.weight_limit:
            self._retry_until = (window + 1) * 60.0
            raise self._too_many(self._retry_until - now)
        self._weight_used += weight
        self._charged = weight

    def _too_many(self, retry_after: float) -> _Reply:
        return _Reply(
            429,
            -1003,
            f"Too many requests; current limit of IP(127.0.0.1) request weight per 1 MINUTE is "
            f"{self.weight_limit}. Please use WebSocket Streams for live updates to avoid polling the API.",
            retry_after,
        )

    def _banned(self, now: float) -> _Reply:
        return _Reply(
            418,
            -1003,
            f"Way too many requests; IP(127.0.0.1) banned until {int(self._ban_until * 1000)}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            self._ban_until - now,
        )

    def _symbol(self, symbol: str | None) -> _Market:
        if not symbol:
            raise _Reply(
                400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if symbol not in self._markets:
            raise _Reply(400, -1121, "Invalid symbol.")
        return self._markets[symbol]

    def _depth(self, symbol: str | None, limit: int) -> dict[str, Any]:
        m = self._symbol(symbol)
        return {
            "lastUpdateId": m.last_update_id,
            "bids": [[fmt8(p), fmt8(qty)] for p, qty in m.bids.top(limit)],
            "asks": [[fmt8(p), fmt8(qty)] for p, qty in m.asks.top(limit)],
        }

    def _exchange_info(self, symbol: str | None, symbols: str | None) -> dict[str, Any]:
        if symbol is not None and symbols is not None:
            raise _Reply(400, -1101, "Combination of optional parameters invalid.")
        if symbols is not None:
            try:
                wanted = json.loads(symbols)
            except ValueError:
                wanted = None
            if not isinstance(wanted, list) or not wanted or not all(isinstance(s, str) for s in wanted):
                raise _Reply(400, -1100, "Illegal characters found in parameter 'symbols'.")
            markets = [self._symbol(s) for s in wanted]
        elif symbol is not None:
            markets = [self._symbol(symbol)]
        else:
            markets = list(self._markets.values())
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(m) for m in markets],
        }

    @staticmethod
    def _symbol_info(m: _Market) -> dict[str, Any]:
        quote = next((q for q in _KNOWN_QUOTES if m.symbol.endswith(q) and m.symbol != q), m.symbol[-4:])
        return {
            "symbol": m.symbol,
            "status": "TRADING",
            "baseAsset": m.symbol[: -len(quote)],
            "quoteAsset": quote,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(m.tick),
                    "maxPrice": "1000000.00000000",
                    "tickSize": fmt8(m.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt8(_STEP_UNITS),
                    "maxQty": "9000.00000000",
                    "stepSize": fmt8(_STEP_UNITS),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
        }


def _floats(levels: dict[int, int]) -> dict[float, float]:
    """1e-8 units to floats equal to ``float()`` of the wire strings (the division is correctly rounded)."""
    return {p / _E8: q / _E8 for p, q in levels.items()}

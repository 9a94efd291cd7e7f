"""Stream retention sized from data rates x symbols, so a stream's stated age is its real one.

Why: JetStream drops a stream's oldest messages at *whichever* limit comes first. A stream set to
keep 6 h within 2 GiB keeps 6 h of one symbol's 5000-level books (~160 KB a second) only until
the bytes run out, after about 3.5 h; with ten symbols, 21 minutes. The age an operator reads in
the config would be a promise the server does not keep. So the plan works the other way round:

1. Each stream's byte rate is estimated per symbol from the size of real encoded messages (built
   here with the same ``msgspec`` types the services publish, at the configured book depth) and
   the rates the pipeline produces them at (one book, bucketed book, profile, zones and signal per
   snapshot interval; trades at a stated rate).
2. The bytes a stream needs for its wanted age are ``rate x symbols x age x headroom``.
3. When the sum exceeds the disk budget, the budget is shared max-min fairly: small streams (the
   audit trail: signals, orders, dead letters) get all they need, the rest split what is left.
4. Each stream's ``max_age`` is then set to the age its bytes really hold, and the plan says so
   (``shortened``), so the server's age limit and its byte limit describe the same retention.

A plan that leaves some stream under :data:`MIN_AGE_S` is refused: a bus that forgets market data
within minutes cannot resume a service after a short outage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from depthflow.common.codec import encode
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    Header,
    OrderRejected,
    SignalFused,
    TradeBatch,
    TradeProfile,
    Zone,
    ZonesDetected,
)

GIB = 1 << 30
DEFAULT_BUDGET_GIB = 20.0
"""Disk for all streams together unless configured (``stream_budget_gib``)."""
MIN_AGE_S = 600.0
"""The shortest retention a plan may give any stream (10 minutes)."""

NATS_OVERHEAD_B = 256
"""Per stored message: subject, headers (Nats-Msg-Id, traceparent) and the store's own record."""

WANTED_AGE_S: dict[str, float] = {
    "MD": 6 * 3600,
    "AGG": 6 * 3600,
    "PEAKS": 24 * 3600,
    "SIGNALS": 7 * 86400,
    "RISK": 30 * 86400,
    "DLQ": 30 * 86400,
}


@dataclass(frozen=True)
class Load:
    """What the pipeline publishes per symbol; defaults are the collector's and a busy BTC pair."""

    symbols: int = 2
    depth_levels: int = 5000  # per side, the collector's ``depth``
    snapshot_interval_s: float = 1.0  # the collector's ``snapshot_interval_s``
    trades_per_s: float = 20.0
    trade_batches_per_s: float = 10.0
    book_buckets: int = 500  # per side after bucketing (5000 ticks of 0.01 in 1-dollar buckets)
    profile_buckets: int = 5000  # the 48 h trade profile's width
    zones: int = 10  # support + resistance + resonance zones per analysis
    dlq_per_s: float = 0.001  # dead letters are rare; their budget is mostly their age


@dataclass(frozen=True)
class StreamPlan:
    """One stream's limits and how they were reached."""

    bytes_per_s: float  # all symbols together
    max_bytes: int
    max_age_s: float
    wanted_age_s: float

    @property
    def shortened(self) -> bool:
        return self.max_age_s < self.wanted_age_s


def _levels(n: int, low: float, step: float) -> bytes:
    return (low + step * np.arange(n, dtype=np.float64)).tobytes()


def _ones(n: int) -> bytes:
    return np.ones(n, dtype=np.float64).tobytes()


def _header() -> Header:
    now = time.time_ns()
    return {"symbol": "BTCFDUSD", "venue": "binance", "ts_event": now, "ts_init": now, "origin_ts": now}


@cache
def _sizes(depth: int, book_buckets: int, profile_buckets: int, zones: int, trades: int) -> dict[str, int]:
    """Encoded bytes of one message of each kind at these sizes (MessagePack, as published)."""
    h = _header()
    bid = (60000.0 - 0.01 * np.arange(depth)).tobytes()
    book = DepthSnapshot(**h, last_update_id=1, bid_px=bid, bid_qty=_ones(depth),
                         ask_px=_levels(depth, 60000.01, 0.01), ask_qty=_ones(depth),
                         known_low=59000.0, known_high=61000.0, tick_size=0.01)
    ids = np.arange(1, trades + 1, dtype=np.int64)
    batch = TradeBatch(**h, first_trade_id=1, last_trade_id=trades, ids=ids.tobytes(),
                       px=_levels(trades, 60000.0, 0.01), qty=_ones(trades),
                       ts=np.full(trades, h["ts_event"], dtype=np.int64).tobytes(),
                       buyer_maker=np.zeros(trades).tobytes(), tick_size=0.01)
    buckets = BookBuckets(**h, bucket_size=1.0, bid_px=_levels(book_buckets, 59999.0 - book_buckets, 1.0),
                          bid_qty=_ones(book_buckets), ask_px=_levels(book_buckets, 60000.0, 1.0),
                          ask_qty=_ones(book_buckets), bid_volume_in=1.0, bid_volume_out=1.0,
                          ask_volume_in=1.0, ask_volume_out=1.0, levels_in=2 * depth,
                          levels_out=2 * book_buckets, best_bid=59999.99, best_ask=60000.01,
                          known_low=59000.0, known_high=61000.0, tick_size=0.01)
    profile = TradeProfile(**h, bucket_size=1.0, window_s=172800,
                           px=_levels(profile_buckets, 57000.0, 1.0), buy_qty=_ones(profile_buckets),
                           sell_qty=_ones(profile_buckets), last_trade_id=1, trades_in_window=1)
    zone = Zone(low=59990.0, high=59995.0, price=59992.0, volume=12.5, strength=0.12345678,
                confidence=0.87654321)
    zoned = ZonesDetected(**h, mid=60000.0, best_bid=59999.99, best_ask=60000.01, poc=59992.0,
                          value_area_low=59900.0, value_area_high=60100.0,
                          support=[zone] * (zones // 2), resistance=[zone] * (zones // 2),
                          bid_depth_near=1.0, ask_depth_near=1.0, trade_buy_volume=1.0,
                          trade_sell_volume=1.0, high_volume_nodes=[59992.0] * 5,
                          low_volume_nodes=[59950.0] * 5, resonance=[zone] * 2, bucket_size=1.0,
                          tick_size=0.01)
    components = {k: 0.123456789 for k in ("zones", "imbalance", "flow", "poc", "model", "llm")}
    signal = SignalFused(**h, signal_id="0" * 32, score=0.5, confidence=0.5, side="BUY",
                         mode="TRADING", components=components, mid=60000.0, best_bid=59999.99,
                         best_ask=60000.01)
    decision = OrderRejected(**h, signal_id="0" * 32, reason="low_confidence",
                             detail="confidence 0.123 < 0.15 and some more words of detail")
    return {
        "book": len(encode(book)),
        "batch": len(encode(batch)),
        "buckets": len(encode(buckets)),
        "profile": len(encode(profile)),
        "zones": len(encode(zoned)),
        "signal": len(encode(signal)),
        "decision": len(encode(decision)),
    }


def stream_rates(load: Load) -> dict[str, float]:
    """Bytes per second each stream receives, all symbols together."""
    per_batch = max(1, round(load.trades_per_s / max(load.trade_batches_per_s, 1e-9)))
    s = _sizes(load.depth_levels, load.book_buckets, load.profile_buckets, load.zones, per_batch)
    books = 1.0 / load.snapshot_interval_s
    o = NATS_OVERHEAD_B
    per_symbol = {
        "MD": books * (s["book"] + o) + load.trade_batches_per_s * (s["batch"] + o),
        # the profile goes out with a book when trades changed it: at most once per book
        "AGG": books * (s["buckets"] + o) + books * (s["profile"] + o),
        "PEAKS": books * (s["zones"] + o),
        "SIGNALS": books * (s["signal"] + o),
        "RISK": books * (s["decision"] + o),
    }
    rates = {name: rate * load.symbols for name, rate in per_symbol.items()}
    rates["DLQ"] = load.dlq_per_s * (s["book"] + o)  # a dead letter keeps its input whole
    return rates


def plan_retention(
    load: Load,
    budget_bytes: int,
    wanted_age_s: dict[str, float] | None = None,
    headroom: float = 1.5,
) -> dict[str, StreamPlan]:
    """Limits for every stream within ``budget_bytes`` of disk; raise ``ValueError`` if any stream
    would keep less than :data:`MIN_AGE_S` (the message names the budget to raise)."""
    if load.symbols < 1 or budget_bytes <= 0 or headroom < 1:
        raise ValueError(f"need symbols >= 1, a positive budget and headroom >= 1; got {load}, "
                         f"{budget_bytes}, {headroom}")
    wanted = {**WANTED_AGE_S, **(wanted_age_s or {})}
    rates = stream_rates(load)
    need = {name: rates[name] * wanted[name] * headroom for name in rates}
    granted = _max_min_fair(need, float(budget_bytes))
    plan = {}
    for name, nbytes in granted.items():
        age = wanted[name] if nbytes >= need[name] else nbytes / (rates[name] * headroom)
        plan[name] = StreamPlan(rates[name], int(nbytes), age, wanted[name])
    short = {n: p for n, p in plan.items() if p.max_age_s < MIN_AGE_S}
    if short:
        total = sum(need.values()) / GIB
        worst = ", ".join(f"{n} {p.max_age_s:.0f}s" for n, p in short.items())
        raise ValueError(
            f"a stream budget of {budget_bytes / GIB:.2f} GiB keeps only {worst} for {load.symbols}"
            f" symbol(s) at {load.depth_levels} levels (the wanted ages need {total:.1f} GiB);"
            f" raise stream_budget_gib or lower the depth"
        )
    return plan


def _max_min_fair(need: dict[str, float], budget: float) -> dict[str, float]:
    """Give every stream its need if the budget allows; otherwise small needs are met in full and
    the streams that remain share the rest equally (water-filling)."""
    granted: dict[str, float] = {}
    left = budget
    pending = sorted(need, key=need.__getitem__)
    while pending:
        share = left / len(pending)
        name = pending[0]
        if need[name] <= share:
            granted[name] = need[name]
            left -= need[name]
            pending.pop(0)
        else:
            for n in pending:
                granted[n] = share
            break
    return granted


def describe(plan: dict[str, StreamPlan]) -> str:
    """One line for operators: each stream's real retention and size limit."""
    parts = []
    for name, p in plan.items():
        age = f"{p.max_age_s / 3600:.1f}h" if p.max_age_s < 86400 else f"{p.max_age_s / 86400:.1f}d"
        parts.append(f"{name} {age}/{p.max_bytes / GIB:.2f}GiB" + (" (shortened)" if p.shortened else ""))
    return "  ".join(parts)

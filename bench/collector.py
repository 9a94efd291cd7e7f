"""Group ``collector``: decoding Binance JSON (REST depth snapshot and a depth diff) into arrays.

Why these two: the 5000+5000-level REST snapshot is the largest payload the collector parses
(at start-up and on every resync), and the depth diff is what it parses ten times a second per
symbol. The baseline is the obvious way to read Binance's decimal strings exactly:
``json.loads`` and a ``Decimal`` per price and quantity. Ours is
``depthflow.collector.binance.payloads``: msgspec numbers straight to floats, ``np.fromiter`` to
float64 arrays, every value checked. The book reuses the aggregator group's realistic BTC side
(mid ~60000, tick 0.01, 8-decimal strings, sparse levels within ±0.4 %), so the JSON has the
size and the digits of a real ``limit=5000`` response. The diff has 10 + 10 levels: in the
recorded 2024-08-08 BTCUSDT stream the median diff has 16 levels, the mean 36.
"""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np

from bench.aggregator import book_side
from bench.report import Figure
from bench.timing import Case, measure, measure_interleaved
from depthflow.collector.binance.payloads import decode_rest_depth, decode_stream_frame

LEVELS = 5000
DIFF_LEVELS = 10  # per side
LAST_UPDATE_ID = 50093239218


def rest_depth_json(levels: int = LEVELS, seed: int = 5) -> bytes:
    """A ``GET /api/v3/depth?limit=5000`` body as Binance writes it (compact, strings)."""
    rng = np.random.default_rng(seed)
    bids, asks = book_side(rng, -1, levels), book_side(rng, +1, levels)
    body = {"lastUpdateId": LAST_UPDATE_ID, "bids": bids, "asks": asks}
    return json.dumps(body, separators=(",", ":")).encode()


def diff_frame(levels: int = DIFF_LEVELS, seed: int = 6) -> bytes:
    """A combined-stream ``depthUpdate`` frame with ``levels`` bids and ``levels`` asks."""
    rng = np.random.default_rng(seed)
    bids, asks = book_side(rng, -1, levels), book_side(rng, +1, levels)
    data = {
        "e": "depthUpdate",
        "E": 1723161255408,
        "s": "BTCUSDT",
        "U": LAST_UPDATE_ID + 1,
        "u": LAST_UPDATE_ID + 17,
        "b": bids,
        "a": asks,
    }
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}, separators=(",", ":")).encode()


def trade_frame() -> bytes:
    """The first ``@trade`` frame of the recorded 2024-08-08 BTCUSDT stream."""
    return (
        b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,'
        b'"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}'
    )


def decode_decimal(raw: bytes) -> tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The baseline: ``json.loads`` and a ``Decimal`` for every price and quantity."""
    body = json.loads(raw)
    bids = [(Decimal(p), Decimal(q)) for p, q in body["bids"]]
    asks = [(Decimal(p), Decimal(q)) for p, q in body["asks"]]
    return body["lastUpdateId"], bids, asks


def _agrees(raw: bytes) -> bool:
    ours = decode_rest_depth(raw)
    last_update_id, bids, asks = decode_decimal(raw)
    got = (ours.bid_px, ours.bid_qty, ours.ask_px, ours.ask_qty)
    want = ([p for p, _ in bids], [q for _, q in bids], [p for p, _ in asks], [q for _, q in asks])
    same = all(a.tolist() == [float(v) for v in w] for a, w in zip(got, want, strict=True))
    return ours.last_update_id == last_update_id and same


def _ms(name: str, median_us: float, p99_us: float, samples: int) -> list[Figure]:
    # Figure.timing names its tail ``*_p99_us``; a millisecond figure gets its own p99 entry.
    return [
        Figure(name, round(median_us / 1000, 3), "ms", samples=samples),
        Figure(name.removesuffix("_ms") + "_p99_ms", round(p99_us / 1000, 3), "ms"),
    ]


def run() -> list[Figure]:
    """Time the REST snapshot against the Decimal baseline (interleaved), then the small frames."""
    raw = rest_depth_json()
    if not _agrees(raw):
        print("WARNING: collector: decode_rest_depth disagrees with json + Decimal")
    stats = measure_interleaved(
        {"ours": Case(lambda: decode_rest_depth(raw)), "decimal": Case(lambda: decode_decimal(raw))},
        repeat=200,
        budget_s=6.0,
    )
    ours, ref = stats["ours"], stats["decimal"]

    diff, trade = diff_frame(), trade_frame()
    diff_stats = measure(lambda: decode_stream_frame(diff), number=200, repeat=3000, budget_s=2.5)
    trade_stats = measure(lambda: decode_stream_frame(trade), number=200, repeat=3000, budget_s=2.0)
    return [
        Figure("decode_rest_5000_bytes", len(raw), "B"),
        *_ms("decode_5000_ms", ours.median_us, ours.p99_us, ours.samples),
        *_ms("decode_decimal_5000_ms", ref.median_us, ref.p99_us, ref.samples),
        Figure("decode_speedup_vs_decimal", round(ref.median_us / ours.median_us, 1), "x"),
        Figure("decode_5000_mb_per_s", round(len(raw) / ours.median_us, 1), "MB/s"),
        Figure.timing("decode_diff_us", diff_stats),
        Figure("decode_diff_levels", 2 * DIFF_LEVELS, ""),
        Figure.timing("decode_trade_us", trade_stats),
    ]

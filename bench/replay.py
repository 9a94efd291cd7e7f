"""Group ``replay``: how fast recorded Binance traffic goes through the collector's core.

Why these figures: replay must run far faster than real time (backtests, catching up), and the
local-book apply rate bounds how many symbols one collector can keep exact. Both run on the real
recorded BTCUSDT file in ``tests/data`` (41,249 frames: depth diffs, bookTicker, trades).

- ``replay_frames_per_s``: read + parse + book + trade batching + message building, whole file.
- ``book_updates_per_s``: price-level updates applied to the local book per second (diffs only,
  pre-parsed), the book's own cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.report import Figure
from depthflow.collector.binance.payloads import DepthDiff, decode_rest_depth, decode_stream_frame
from depthflow.collector.book import LocalBook
from depthflow.collector.recording import read_frames
from depthflow.collector.session import MarketSession
from tests.data import HFT_0808

FILE = HFT_0808


def _best_of(n: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run() -> list[Figure]:
    frames = list(read_frames(FILE))

    def replay() -> None:
        session = MarketSession("binance", {"BTCUSDT"})
        for f in read_frames(FILE):
            session.on_frame(f)
        session.flush()

    replay_s = _best_of(3, replay)
    span_s = (frames[-1].recv_ns - frames[0].recv_ns) / 1e9
    snap = next(f for f in frames if f.kind == "rest_depth")
    diffs = []
    for f in frames:
        if f.kind == "ws" and b"depthUpdate" in f.raw:
            event = decode_stream_frame(f.raw)
            if isinstance(event, DepthDiff):
                diffs.append(event)
    levels = sum(d.bid_px.size + d.ask_px.size for d in diffs)
    rest = decode_rest_depth(snap.raw)

    def apply() -> None:
        book = LocalBook("BTCUSDT")
        for d in diffs:
            book.on_diff(d)
            if d.final_id >= rest.last_update_id and book.update_id == 0:
                book.on_snapshot(rest)

    apply_s = _best_of(5, apply)
    return [
        Figure("replay_frames_per_s", round(len(frames) / replay_s), "frames/s"),
        Figure("replay_realtime_multiple", round(span_s / replay_s, 1), "x"),
        Figure("book_updates_per_s", round(levels / apply_s), "levels/s"),
        Figure("book_diffs_per_s", round(len(diffs) / apply_s), "diffs/s"),
    ]

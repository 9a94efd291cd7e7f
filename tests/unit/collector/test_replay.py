"""Replay of real recorded Binance traffic (tests/data/binance): every book rebuilds from its
snapshot and diffs with no gap and no crossing, and every published snapshot equals an independent
rebuild done here with plain ``json`` and dicts."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from depthflow.collector.recording import Frame, Recorder, detect_format, read_frames
from depthflow.collector.session import MarketSession
from depthflow.common.messages import DepthSnapshot, TradeBatch, f64, i64
from tests.data import CRYPTOFEED, HFT_0808, HFT_0809

HFT = [HFT_0808, HFT_0809]


class IndependentBook:
    """The official procedure again, written plainly, to check the session against."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.last = None
        self.buffer: list[dict] = []
        self.history: dict[int, tuple[dict, dict]] = {}
        self.low = self.high = 0.0

    def snapshot(self, body: dict) -> None:
        self.bids = {float(p): float(q) for p, q in body["bids"] if float(q)}
        self.asks = {float(p): float(q) for p, q in body["asks"] if float(q)}
        self.low, self.high = min(self.bids), max(self.asks)
        self.last = body["lastUpdateId"]
        self.history[self.last] = (dict(self.bids), dict(self.asks))
        for d in self.buffer:
            self.diff(d)
        self.buffer = []

    def diff(self, d: dict) -> None:
        if self.last is None:
            self.buffer.append(d)
            return
        if d["u"] <= self.last:
            return
        assert d["U"] <= self.last + 1, f"gap: U={d['U']} after {self.last}"
        for side, levels in ((self.bids, d["b"]), (self.asks, d["a"])):
            for p, q in levels:
                if float(q) == 0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(q)
        self.last = d["u"]
        assert max(self.bids) < min(self.asks), "crossed book"
        self.history[self.last] = (dict(self.bids), dict(self.asks))


def independent(frames: list[Frame]) -> dict[str, IndependentBook]:
    books: dict[str, IndependentBook] = {}
    for f in frames:
        body = json.loads(f.raw)
        if f.kind == "rest_depth":
            books.setdefault(f.symbol, IndependentBook()).snapshot(body)
        elif body.get("data", {}).get("e") == "depthUpdate":
            books.setdefault(body["data"]["s"], IndependentBook()).diff(body["data"])
    return books


def replay(frames, symbols, depth=5000) -> tuple[MarketSession, list]:
    session = MarketSession("binance", symbols, depth=depth)
    out = []
    for f in frames:
        out += session.on_frame(f)
    return session, out + session.flush()


def assert_matches(snap: DepthSnapshot, book: IndependentBook) -> None:
    bids, asks = book.history[snap.last_update_id]
    bid_px = np.array(sorted((p for p in bids if p >= snap.known_low), reverse=True))
    ask_px = np.array(sorted(p for p in asks if p <= snap.known_high))
    assert np.array_equal(f64(snap.bid_px), bid_px)
    assert np.array_equal(f64(snap.ask_px), ask_px)
    assert np.array_equal(f64(snap.bid_qty), [bids[p] for p in bid_px])
    assert np.array_equal(f64(snap.ask_qty), [asks[p] for p in ask_px])
    assert snap.known_low == book.low
    assert snap.known_high == book.high


def check_replay(frames: list[Frame], symbols: set[str]) -> list:
    session, out = replay(frames, symbols)
    truth = independent(frames)
    depths = [m for m in out if isinstance(m, DepthSnapshot)]
    for sym in symbols:
        book = session.books[sym]
        assert book.gaps == 0, sym
        assert book.crossings == 0, sym
        published = [d for d in depths if d.symbol == sym]
        assert len(published) >= 5, sym
        for d in published:
            assert_matches(d, truth[sym])
    assert session.stats["malformed"] == 0
    return out


def test_hftbacktest_two_files_in_sequence_rebuild_exactly():
    assert detect_format(HFT[0]) == "hftbacktest"
    frames = [f for p in HFT for f in read_frames(p)]
    out = check_replay(frames, {"BTCUSDT"})
    trades = [m for m in out if isinstance(m, TradeBatch)]
    ids = np.concatenate([i64(t.ids) for t in trades])
    # the @trade ids run without a break across the file boundary (SOURCES.md)
    assert ids[0] == 3735683259
    assert ids[-1] == 3735703162
    assert np.array_equal(ids, np.arange(ids[0], ids[-1] + 1))


def test_cryptofeed_three_symbols_rebuild_exactly():
    assert detect_format(CRYPTOFEED) == "cryptofeed"
    frames = list(read_frames(CRYPTOFEED))
    out = check_replay(frames, {"BTCUSDT", "ETHUSDT", "DOTUSDT"})
    for sym, n in (("BTCUSDT", 1227), ("ETHUSDT", 506), ("DOTUSDT", 177)):
        ids = np.concatenate([i64(t.ids) for t in out if isinstance(t, TradeBatch) and t.symbol == sym])
        assert ids.size == n
        assert np.array_equal(ids, np.arange(ids[0], ids[0] + n))


def test_own_recording_rotates_and_replays_identically(tmp_path):
    frames = list(read_frames(HFT[0]))
    rec = Recorder(tmp_path, max_bytes=2_000_000)
    for f in frames:
        rec.write(f)
    rec.close()
    assert len(rec.files) > 1
    assert detect_format(rec.files[0]) == "depthflow"
    again = [f for p in rec.files for f in read_frames(p)]
    assert again == frames
    _, direct = replay(frames, {"BTCUSDT"})
    _, replayed = replay(again, {"BTCUSDT"})
    assert [content(m) for m in direct] == [content(m) for m in replayed]


def content(m: DepthSnapshot | TradeBatch) -> tuple:
    if isinstance(m, DepthSnapshot):
        return ("depth", m.last_update_id, m.bid_px, m.bid_qty, m.ask_px, m.ask_qty)
    return ("trades", m.ids, m.px, m.qty, m.ts, m.buyer_maker)


@pytest.mark.parametrize("unit", ["ms", "us"])
def test_binance_aggtrades_csv_in_ms_and_us(tmp_path, unit):
    # a public-dump CSV written from the real aggTrades in the cryptofeed recording
    rows = []
    for f in read_frames(CRYPTOFEED):
        d = json.loads(f.raw).get("data", {})
        if d.get("e") == "aggTrade" and d["s"] == "BTCUSDT":
            t = d["T"] * (1000 if unit == "us" else 1)
            rows.append(f"{d['a']},{d['p']},{d['q']},{d['f']},{d['l']},{t},{str(d['m']).lower()},true")
    path = tmp_path / "BTCUSDT-aggTrades-2021-04-04.csv"
    path.write_text("\n".join(rows) + "\n")
    assert detect_format(path) == "binance-csv"
    _, out = replay(list(read_frames(path)), {"BTCUSDT"})
    trades = [m for m in out if isinstance(m, TradeBatch)]
    ids = np.concatenate([i64(t.ids) for t in trades])
    assert ids.size == len(rows) == 1227
    ts = np.concatenate([i64(t.ts) for t in trades])
    first = rows[0].split(",")
    assert ts[0] == int(first[5]) * (1000 if unit == "us" else 1_000_000)
    assert f64(trades[0].px)[0] == float(first[1])
    # every batch spans one 100 ms window of trade time
    for t in trades:
        w = i64(t.ts) // 100_000_000
        assert w.min() == w.max()


def test_gzip_and_plain_text_are_both_read(tmp_path):
    src = CRYPTOFEED.read_bytes()
    gz = tmp_path / "BINANCE-x.0.gz"
    gz.write_bytes(gzip.compress(src))
    assert [f.raw for f in read_frames(gz)][:50] == [f.raw for f in read_frames(CRYPTOFEED)][:50]

"""Replay of real recorded Binance traffic (tests/data/binance): every book rebuilds from its
snapshot and diffs with no gap and no crossing, and every published snapshot equals an independent
rebuild done here with plain ``json`` and dicts. The replay tells the truth (issue 9): symbols come
from the records, not file names; a cryptofeed http + ws pair merges by time; unusable lines are
counted, not raised; futures recordings are refused; a symbol without a book is a warning that
says why."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from depthflow.collector.recording import (
    Frame,
    Recorder,
    Recording,
    RecordingRefused,
    detect_format,
    read_frames,
)
from depthflow.collector.replay_report import build_report
from depthflow.collector.session import MarketSession
from depthflow.common.messages import DepthSnapshot, TradeBatch, f64, i64
from tests.data import BINANCE_FUTURES, BINANCE_US, CRYPTOFEED, HFT_0808, HFT_0809

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
    """Books rebuilt with plain json from the frames in the order the recording merged them."""
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


US_SYMBOLS = {"MANAUSD", "ZRXUSD", "BATUSD", "HNTUSD"}


def lines(path) -> list[bytes]:
    """A recorded file's lines (gzip or plain), line ends kept."""
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).splitlines(keepends=True)


def report_of(recording: Recording, session: MarketSession, symbols: list[str]):
    ticks = {s: session.ticks.tick(s) for s in session.facts}
    return build_report(recording, symbols, session.facts, ticks, book_within_s=60.0, finished=True)


def test_cryptofeed_http_and_ws_files_merge_by_time_and_rebuild_exactly():
    recording = Recording(BINANCE_US)
    frames = list(recording.frames())
    assert [f.recv_ns for f in frames] == sorted(f.recv_ns for f in frames)
    session, out = replay(frames, US_SYMBOLS)
    check_replay(frames, US_SYMBOLS)
    for sym in US_SYMBOLS:
        assert session.facts[sym].snapshots == {"synced": 1}, sym  # each 5000-level request synced
    assert {m.tick_size for m in out} == {0.0001}  # sub-dollar symbols: prices like "0.8292"
    assert {m.symbol for m in out if isinstance(m, TradeBatch)} <= US_SYMBOLS
    # each file ends with a blank line (SOURCES.md): counted, not raised
    assert [dict(f.skipped) for f in recording.files] == [{"blank line": 1}, {"blank line": 1}]
    assert report_of(recording, session, sorted(US_SYMBOLS)).warnings == []


def test_a_renamed_hftbacktest_file_still_gives_its_own_symbol(tmp_path):
    renamed = tmp_path / "spot_ethusdt_20240808.gz"
    renamed.write_bytes(HFT_0808.read_bytes())
    recording = Recording([renamed, HFT_0809])
    frames = list(recording.frames())
    assert {f.symbol for f in frames if f.kind == "rest_depth"} == {"BTCUSDT"}
    session, out = replay(frames, {"BTCUSDT", "ETHUSDT"})
    assert {m.symbol for m in out} == {"BTCUSDT"}
    assert {m.tick_size for m in out} == {0.01}
    # one snapshot, then the 0808 and 0809 diffs as one stream: no gap at the file boundary
    assert session.facts["BTCUSDT"].snapshots == {"synced": 1}
    assert session.books["BTCUSDT"].gaps == 0
    assert session.books["BTCUSDT"].applied == 6493
    (warning,) = report_of(recording, session, ["BTCUSDT", "ETHUSDT"]).warnings
    assert warning.symbol == "ETHUSDT"
    assert "not in the replayed files (they carry BTCUSDT)" in warning.reason


def test_an_hftbacktest_snapshot_in_a_file_of_two_symbols_is_refused_with_the_reason(tmp_path):
    # the real 0808 file plus ETHUSDT diffs from the cryptofeed recording, in hftbacktest's shape
    eth = [b"%d %s" % (f.recv_ns, f.raw) + b"\n" for f in read_frames(CRYPTOFEED)
           if f.raw.startswith(b'{"stream":"ethusdt@depth')]
    mixed = tmp_path / "mixed.gz"
    mixed.write_bytes(gzip.compress(b"".join(eth + lines(HFT_0808))))
    recording = Recording([mixed])
    session, out = replay(list(recording.frames()), {"BTCUSDT", "ETHUSDT"})
    assert not [m for m in out if isinstance(m, DepthSnapshot)]
    assert recording.files[0].skipped == {"snapshot of no known symbol": 1}
    warnings = {w.symbol: w.reason for w in report_of(recording, session, ["BTCUSDT", "ETHUSDT"]).warnings}
    assert set(warnings) == {"BTCUSDT", "ETHUSDT"}
    assert "REST snapshot was refused" in warnings["BTCUSDT"]
    assert "carry 2 symbols (BTCUSDT, ETHUSDT)" in warnings["BTCUSDT"]


def test_blank_cut_and_separator_less_lines_are_counted_and_skipped(tmp_path):
    real = lines(BINANCE_US[1])
    broken = [*real[:100], b"\n", b"  \n", *real[100:200], real[200].replace(b": ", b" ", 1)]
    broken += [*real[201:-2], real[-2][: len(real[-2]) // 2]]  # the last record cut mid-JSON
    ws = tmp_path / "BINANCE_US.ws.1.0"
    ws.write_bytes(b"".join(broken))
    recording = Recording([BINANCE_US[0], ws])
    session, out = replay(list(recording.frames()), US_SYMBOLS)
    counts = {"blank line": 2, "no ': ' separator": 1, "truncated JSON": 1}
    assert dict(recording.files[1].skipped) == counts
    report = report_of(recording, session, sorted(US_SYMBOLS))
    assert report.files[1].skipped == counts
    assert report.files[1].lines == len(broken)
    assert report.files[1].frames == len(broken) - 1 - sum(counts.values())  # the stream URL line
    assert {m.symbol for m in out if isinstance(m, DepthSnapshot)} == US_SYMBOLS


def test_a_gap_while_syncing_and_a_missing_snapshot_are_warnings_that_say_so(tmp_path):
    # MANAUSD's snapshot (lastUpdateId 108545653) answered later, after the diffs that would
    # connect it were lost: the first buffered diff left (U=108545660) is past it
    http = tmp_path / "BINANCE_US.http.0.0"
    http.write_bytes(b"".join(ln.replace(b"-> 1628952314.0042582:", b"-> 1628952314.5:")
                              for ln in lines(BINANCE_US[0])))
    lost = (b'"U":108545653,', b'"U":108545654,', b'"U":108545657,')
    ws = tmp_path / "BINANCE_US.ws.1.0"
    ws.write_bytes(b"".join(ln for ln in lines(BINANCE_US[1])
                            if not (b'"s":"MANAUSD"' in ln and any(u in ln for u in lost))))
    recording = Recording([http, ws])
    session, out = replay(list(recording.frames()), US_SYMBOLS | {"BTCUSD"})
    assert session.facts["MANAUSD"].snapshots == {"gap": 1}
    assert {m.symbol for m in out if isinstance(m, DepthSnapshot)} == US_SYMBOLS - {"MANAUSD"}
    warnings = {w.symbol: w.reason for w in report_of(recording, session, ["MANAUSD", "BTCUSD"]).warnings}
    assert warnings["MANAUSD"].startswith("no book: gap while syncing")
    assert warnings["BTCUSD"].startswith("no book: the symbol is not in the replayed files")
    # the websocket file alone: diffs but no snapshot for any symbol
    alone = Recording([BINANCE_US[1]])
    session, _ = replay(list(alone.frames()), US_SYMBOLS)
    for w in report_of(alone, session, sorted(US_SYMBOLS)).warnings:
        assert w.reason.startswith("no book: no REST depth snapshot for it in the files"), w
    assert len(report_of(alone, session, sorted(US_SYMBOLS)).warnings) == 4


def hftbacktest_lines(path) -> bytes:
    """A cryptofeed file's records in hftbacktest's ``<ns> <JSON>`` shape (no URL to tell by)."""
    return b"".join(b"%d %s\n" % (f.recv_ns, f.raw) for f in _unrefused_frames(path))


def _unrefused_frames(path):
    out = []
    for line in lines(path)[1:]:
        ts, sep, raw = line.rstrip(b"\n").partition(b": ")
        if sep and raw.startswith(b"{"):
            out.append(Frame(int(float(ts.split(b" -> ")[-1]) * 1e9), "ws", None, raw))
    return out


@pytest.mark.parametrize(("files", "evidence"), [
    (BINANCE_FUTURES, "it was recorded from fapi.binance.com"),
    (BINANCE_FUTURES[1:], "it was recorded from fstream.binance.com"),
    ("ws-as-hftbacktest", "its depth diffs chain through `pu`"),
    ("http-as-hftbacktest", "its REST depth snapshots carry `E` and `T`"),
])
def test_futures_recordings_are_refused_saying_what_and_why(tmp_path, files, evidence):
    if isinstance(files, str):
        source = BINANCE_FUTURES[1] if files.startswith("ws") else BINANCE_FUTURES[0]
        path = tmp_path / "sushiusdt_20210722.gz"
        body = hftbacktest_lines(source) if files.startswith("ws") else b"".join(
            b"1626992741301402000 " + ln.split(b": ", 1)[1] for ln in lines(source) if b": " in ln)
        path.write_bytes(gzip.compress(body))
        files = (path,)
    with pytest.raises(RecordingRefused) as refused:
        Recording(files)
    text = str(refused.value)
    assert f"is a Binance futures recording: {evidence}" in text
    assert "depthflow analyses spot markets only" in text


def test_an_aggtrades_csv_must_be_named_as_binance_names_it(tmp_path):
    rows = b"665076760,58001.03,0.086205,745522877,745522877,1617566591314,true,true\n"
    good = tmp_path / "BTCUSDT-aggTrades-2021-04-04.csv"
    good.write_bytes(rows)
    assert {f.symbol for f in Recording([good]).frames()} == {"BTCUSDT"}
    renamed = tmp_path / "ethusdt_trades.csv"
    renamed.write_bytes(rows)
    with pytest.raises(RecordingRefused, match="names its symbol only in its file name"):
        Recording([renamed])


def test_a_first_book_later_than_the_stated_span_is_a_warning():
    recording = Recording([HFT_0808])
    session, _ = replay(list(recording.frames()), {"BTCUSDT"})
    after = report_of(recording, session, ["BTCUSDT"]).symbols["BTCUSDT"].first_book_after_s
    assert 0.2 < after < 0.3  # the snapshot came 0.27 s of recorded time after the first diff
    ticks = {"BTCUSDT": session.ticks.tick("BTCUSDT")}
    on_time = build_report(recording, ["BTCUSDT"], session.facts, ticks, book_within_s=after, finished=True)
    assert on_time.warnings == []
    late = build_report(recording, ["BTCUSDT"], session.facts, ticks, book_within_s=0.1, finished=True)
    assert [w.reason for w in late.warnings] == [
        f"first book only {after:.1f}s of recorded time after its first frame (replay_book_within_s is 0.1)"]


def test_a_gap_on_a_live_book_is_counted_in_the_report(tmp_path):
    # MANAUSD synced at 108545653; its diff 108545657-659 lost afterwards: a gap on the live book
    ws = tmp_path / "BINANCE_US.ws.1.0"
    ws.write_bytes(b"".join(ln for ln in lines(BINANCE_US[1])
                            if not (b'"s":"MANAUSD"' in ln and b'"U":108545657,' in ln)))
    recording = Recording([BINANCE_US[0], ws])
    session, _ = replay(list(recording.frames()), US_SYMBOLS)
    symbols = report_of(recording, session, sorted(US_SYMBOLS)).symbols
    assert symbols["MANAUSD"].gaps == 1
    assert symbols["MANAUSD"].snapshots == {"synced": 1}
    assert sum(r.gaps for r in symbols.values()) == 1

"""Raw frames as received, and the files that keep them: record live, replay bit-for-bit.

Every source (live session, recorded file, public dump) is reduced to a stream of
:class:`Frame` s — the exchange's bytes with the local receive time — so replay and live share
one code path after this point.

Formats read (``detect_format`` picks one from the first line):

- ``depthflow``: our recording. Gzip text, one frame a line: ``<recv ns> <kind> <symbol|-> <raw>``
  where kind is ``ws`` (a websocket text frame), ``rest_depth`` or ``exchange_info``.
- ``hftbacktest``: gzip text, ``<recv ns> <raw JSON>``; the JSON is a combined-stream envelope or a
  REST depth response, which names no symbol (see :class:`RecordedFile`).
- ``cryptofeed``: text, websocket lines ``<time s>: <JSON>`` after a first line
  ``wss://... <-> <time s>``, and REST lines ``<url> -> <time s>: <JSON>`` (the symbol is in the
  URL). cryptofeed writes both in one file, or splits them into ``<EXCHANGE>.http.0.0`` (REST
  lines only) and ``<EXCHANGE>.ws.1.0``; a replay given both merges them by time.
- ``binance-csv``: the public dump of aggTrades, no header:
  ``id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]``; time in ms or µs.

The symbol of a frame comes from the record, never from the file name (a renamed file must not
change what it holds): the stream name or ``s`` of a websocket message (read by the session), the
``symbol=`` of a REST URL. The two exceptions are documented where they are handled: the
hftbacktest REST line and the aggTrades CSV.

Why files are inspected before they are read: a recording depthflow must not replay (futures
data, an unknown format) is refused at start with the reason, not discovered halfway; and an
hftbacktest REST line can only be attributed once the file's streams are known.

Unusable lines (blank, cut short, without the separator or timestamp) are counted per file under
a short reason and skipped; reading never raises on content.
"""

from __future__ import annotations

import gzip
import heapq
import io
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FrameKind = Literal["ws", "rest_depth", "exchange_info", "agg_trade_csv"]
FORMATS = ("depthflow", "hftbacktest", "cryptofeed", "binance-csv")
_KINDS: frozenset[bytes] = frozenset({b"ws", b"rest_depth", b"exchange_info"})
_SYMBOL_IN_URL = re.compile(rb"[?&]symbol=([A-Za-z0-9]+)")
_STREAM_SYMBOL = re.compile(rb'\{"stream":\s*"([A-Za-z0-9]+)@')
_HTTP_LINE = re.compile(rb"^https?://\S+ -> [0-9.]+: ")
# Binance's public dumps (data.binance.vision): BTCUSDT-aggTrades-2024-08-08.csv, or -2024-08.csv
CSV_NAME = re.compile(r"^([A-Z0-9]+)-aggTrades-\d{4}-\d{2}(?:-\d{2})?\.csv$")
# USDⓈ-M and COIN-M futures hosts: REST fapi/dapi, websocket fstream/dstream
_FUTURES_HOST = re.compile(rb"://(?:fapi|dapi|fstream|dstream)\.binance\.com")


class RecordingRefused(ValueError):
    """A recording depthflow will not replay; the message says which file, what it is and why."""


@dataclass(frozen=True)
class Frame:
    """One message as it arrived: receive time (ns), what it is, its symbol if known, the bytes."""

    recv_ns: int
    kind: FrameKind
    symbol: str | None
    raw: bytes


@dataclass
class RecordedFile:
    """One file of a replay: its format, what inspection found, and what reading it skipped.

    ``snapshot_symbol`` is the symbol of this file's REST depth lines when they do not name one
    (hftbacktest): the one symbol its streams carry. With several (or none) there is no honest
    attribution, so such a snapshot is refused and ``snapshot_refusal`` says why.
    """

    path: Path
    fmt: str
    stream_symbols: frozenset[str] = frozenset()
    rest_lines: int = 0
    snapshot_symbol: str | None = None
    snapshot_refusal: str = ""
    lines: int = 0
    frames: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def detect_format(path: Path) -> str:
    """Return the format of a recorded file from its first line."""
    with _open(path) as f:
        first = f.readline()
    if b" <-> " in first or _HTTP_LINE.match(first):
        return "cryptofeed"
    head = first.split(b" ", 2)
    if len(head) >= 3 and head[0].isdigit() and head[1] in _KINDS:
        return "depthflow"
    if len(head) >= 2 and head[0].isdigit() and head[1][:1] == b"{":
        return "hftbacktest"
    if first[:1].isdigit() and first.count(b",") >= 6:
        return "binance-csv"
    raise RecordingRefused(f"{path}: unknown recording format (first line {first[:80]!r}); "
                           f"formats read: {', '.join(FORMATS)}")


def csv_symbol(path: Path) -> str:
    """The symbol of a Binance aggTrades dump, from its name: the only place it is written.

    The dump's rows carry no symbol, so here (and only here) the file name is the source, and
    only in the documented pattern ``<SYMBOL>-aggTrades-<YYYY-MM[-DD]>.csv``; any other name is
    refused rather than guessed from.
    """
    m = CSV_NAME.match(path.name)
    if m is None:
        raise RecordingRefused(
            f"{path}: an aggTrades CSV names its symbol only in its file name, and this name does not "
            "follow Binance's pattern <SYMBOL>-aggTrades-<YYYY-MM-DD>.csv (e.g. BTCUSDT-aggTrades-"
            "2024-08-08.csv); rename it so")
    return m.group(1)


def futures_evidence(line: bytes) -> str | None:
    """What in one line shows a Binance futures recording, or None.

    Futures books follow other rules (diffs chain through ``pu``, REST snapshots carry ``E`` and
    ``T``), and depthflow analyses spot markets only.
    """
    if line.startswith((b"http", b"wss")) and (m := _FUTURES_HOST.search(line, 0, 200)):
        return f"it was recorded from {m.group(0)[3:].decode()}"
    if b'"depthUpdate"' in line and b'"pu":' in line:
        return "its depth diffs chain through `pu`, the futures rule"
    start = line.find(b'{"lastUpdateId"')
    if start >= 0:
        head = line[start: line.find(b'"bids"', start)]
        if b'"E":' in head or b'"T":' in head:
            return "its REST depth snapshots carry `E` and `T`, as futures snapshots do"
    return None


def inspect_file(path: Path, fmt: str = "auto") -> RecordedFile:
    """Read a file once to learn its format and streams; refuse what must not be replayed."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise RecordingRefused(f"{path}: unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    if fmt == "binance-csv":
        return RecordedFile(path, fmt, stream_symbols=frozenset({csv_symbol(path)}))
    symbols: set[str] = set()
    rest_lines = 0
    with _open(path) as f:
        for line in f:
            if (evidence := futures_evidence(line)) is not None:
                raise RecordingRefused(
                    f"{path} is a Binance futures recording: {evidence}. depthflow analyses spot "
                    "markets only (risk trades spot, and futures books follow other rules), so it is not "
                    "replayed")
            if (m := _STREAM_SYMBOL.search(line, 0, 120)) is not None:
                symbols.add(m.group(1).decode().upper())
            elif b'{"lastUpdateId"' in line:
                rest_lines += 1
    file = RecordedFile(path, fmt, stream_symbols=frozenset(symbols), rest_lines=rest_lines)
    if fmt == "hftbacktest" and rest_lines:
        if len(symbols) == 1:
            (file.snapshot_symbol,) = symbols
        else:
            named = ", ".join(sorted(symbols)) or "none"
            file.snapshot_refusal = (
                f"{path.name}: its REST snapshot names no symbol (hftbacktest) and the file's streams "
                f"carry {len(symbols)} symbols ({named}), so it cannot be attributed")
    return file


class Recording:
    """The files of one replay, inspected at construction, read as one stream merged by time.

    Files are merged by receive time (ties: file order, then line order), so files that follow
    each other replay in sequence and files that overlap (a cryptofeed http + ws pair) interleave
    as they were received.
    """

    def __init__(self, paths: Iterable[Path | str], fmt: str = "auto") -> None:
        self.files = [inspect_file(Path(p), fmt) for p in paths]

    @property
    def symbols(self) -> frozenset[str]:
        """Every symbol the files' streams (or CSV names) carry."""
        return frozenset().union(*(f.stream_symbols for f in self.files))

    def snapshot_refusals(self) -> dict[str, list[str]]:
        """Per symbol, why a REST snapshot that may have been its was refused."""
        out: dict[str, list[str]] = {}
        for f in self.files:
            if f.snapshot_refusal:
                for s in f.stream_symbols:
                    out.setdefault(s, []).append(f.snapshot_refusal)
        return out

    def frames(self) -> Iterator[Frame]:
        keyed = [_keyed(i, _read(f)) for i, f in enumerate(self.files)]
        for *_, frame in heapq.merge(*keyed):
            yield frame


def _keyed(index: int, frames: Iterator[Frame]) -> Iterator[tuple[int, int, int, Frame]]:
    for n, frame in enumerate(frames):
        yield frame.recv_ns, index, n, frame


def read_frames(path: Path, fmt: str = "auto") -> Iterator[Frame]:
    """Yield the frames of one recorded file in file order."""
    return Recording([path], fmt).frames()


def _read(file: RecordedFile) -> Iterator[Frame]:
    readers = {"depthflow": _read_depthflow, "hftbacktest": _read_hftbacktest,
               "cryptofeed": _read_cryptofeed, "binance-csv": _read_csv}
    with _open(file.path) as f:
        for frame in readers[file.fmt](_lines(f, file), file):
            file.frames += 1
            yield frame


def _lines(f: Iterable[bytes], file: RecordedFile) -> Iterator[bytes]:
    """Non-blank lines without their line end; blank ones are counted."""
    for line in f:
        file.lines += 1
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield line
        else:
            file.skipped["blank line"] += 1


def _json(raw: bytes, file: RecordedFile) -> bool:
    """Whether ``raw`` can be a whole JSON document; a line cut short is counted and skipped.

    Only the last byte is looked at: parsing is the session's job, and it counts what else is
    malformed.
    """
    if raw.rstrip().endswith((b"}", b"]")):
        return True
    file.skipped["truncated JSON"] += 1
    return False


def _read_depthflow(lines: Iterator[bytes], file: RecordedFile) -> Iterator[Frame]:
    for line in lines:
        parts = line.split(b" ", 3)
        if len(parts) != 4 or not parts[0].isdigit() or parts[1] not in _KINDS:
            file.skipped["not <ns> <kind> <symbol> <raw>"] += 1
        elif _json(parts[3], file):
            ts, kind, sym, raw = parts
            yield Frame(int(ts), kind.decode(), None if sym == b"-" else sym.decode(), raw)  # type: ignore[arg-type]


def _read_hftbacktest(lines: Iterator[bytes], file: RecordedFile) -> Iterator[Frame]:
    for line in lines:
        ts, sep, raw = line.partition(b" ")
        if not sep or not ts.isdigit():
            file.skipped["no <ns> timestamp"] += 1
        elif not _json(raw, file):
            continue
        elif not raw.startswith(b'{"lastUpdateId"'):
            yield Frame(int(ts), "ws", None, raw)
        elif file.snapshot_symbol is None:
            file.skipped["snapshot of no known symbol"] += 1
        else:
            yield Frame(int(ts), "rest_depth", file.snapshot_symbol, raw)


def _read_cryptofeed(lines: Iterator[bytes], file: RecordedFile) -> Iterator[Frame]:
    for line in lines:
        if b" <-> " in line:
            continue  # a (re)connection line: the stream URL and its time
        url, is_rest, rest = line.partition(b" -> ") if line.startswith(b"http") else (b"", b"", line)
        ts, sep, raw = rest.partition(b": ")
        if not sep:
            file.skipped["no ': ' separator"] += 1
            continue
        try:
            recv_ns = _s_to_ns(ts)
        except ValueError:
            file.skipped["bad timestamp"] += 1
            continue
        if not _json(raw, file):
            continue
        if not is_rest:
            yield Frame(recv_ns, "ws", None, raw)
        elif b"/depth" in url:
            m = _SYMBOL_IN_URL.search(url)
            yield Frame(recv_ns, "rest_depth", m.group(1).decode().upper() if m else None, raw)
        elif b"/exchangeInfo" in url:
            yield Frame(recv_ns, "exchange_info", None, raw)
        else:
            file.skipped["other REST response"] += 1


def _read_csv(lines: Iterator[bytes], file: RecordedFile) -> Iterator[Frame]:
    (symbol,) = file.stream_symbols
    for line in lines:
        cols = line.strip().split(b",", 6)
        if len(cols) < 7 or not cols[5].isdigit():
            file.skipped["not an aggTrades row"] += 1
            continue
        t = int(cols[5])
        # the public dumps moved from ms to µs timestamps in 2025
        ns = t * 1000 if t > 10**15 else t * 1_000_000
        yield Frame(ns, "agg_trade_csv", symbol, line.strip())


def _s_to_ns(ts: bytes) -> int:
    sec, _, frac = ts.partition(b".")
    if not sec.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not seconds: {ts[:40]!r}")
    return int(sec) * 1_000_000_000 + int((frac + b"000000000")[:9])


class Recorder:
    """Write frames to rotating gzip files: ``<dir>/<prefix>-<start ns>.gz``.

    A file rotates when it passes ``max_bytes`` (uncompressed) or ``max_age_s``; each file is
    complete on its own, so a crash loses at most the frames since the last flush.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str = "depthflow",
        max_bytes: int = 256 << 20,
        max_age_s: float = 3600.0,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._file: io.BufferedWriter | gzip.GzipFile | None = None
        self._bytes = 0
        self._opened = 0.0
        self.files: list[Path] = []

    def write(self, frame: Frame) -> None:
        expired = time.monotonic() - self._opened >= self.max_age_s
        if self._file is None or self._bytes >= self.max_bytes or expired:
            self._rotate(frame.recv_ns)
        assert self._file is not None
        line = b"%d %s %s %s\n" % (
            frame.recv_ns, frame.kind.encode(), (frame.symbol or "-").encode(), frame.raw,
        )
        self._file.write(line)
        self._bytes += len(line)

    def _rotate(self, recv_ns: int) -> None:
        self.close()
        path = self.directory / f"{self.prefix}-{recv_ns}.gz"
        # kept open across writes until rotation; closed by close()
        self._file = gzip.open(path, "wb", compresslevel=6)  # noqa: SIM115
        self.files.append(path)
        self._bytes = 0
        self._opened = time.monotonic()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

"""Raw frames as received, and the files that keep them: record live, replay bit-for-bit.

Every source (live session, recorded file, public dump) is reduced to a stream of
:class:`Frame` s — the exchange's bytes with the local receive time — so replay and live share
one code path after this point.

Formats read (``detect_format`` picks one from the first line):

- ``depthflow``: our recording. Gzip text, one frame a line: ``<recv ns> <kind> <symbol|-> <raw>``
  where kind is ``ws`` (a websocket text frame), ``rest_depth`` or ``exchange_info``.
- ``hftbacktest``: gzip text, ``<recv ns> <raw JSON>``; the JSON is a combined-stream envelope or a
  REST depth response (which names no symbol: it comes from the file name or the caller).
- ``cryptofeed``: text; first line ``wss://... <-> <time s>``; websocket lines ``<time s>: <JSON>``;
  REST lines ``<url> -> <time s>: <JSON>`` (the symbol is in the URL).
- ``binance-csv``: the public dump of aggTrades, no header:
  ``id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]``; time in ms or µs.
"""

from __future__ import annotations

import gzip
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

FrameKind = Literal["ws", "rest_depth", "exchange_info", "agg_trade_csv"]
FORMATS = ("depthflow", "hftbacktest", "cryptofeed", "binance-csv")
_SYMBOL_IN_URL = re.compile(rb"[?&]symbol=([A-Za-z0-9]+)")
_SYMBOL_IN_NAME = re.compile(r"^([A-Za-z0-9]+?)(?:[-_](?:aggTrades|\d{8}))", re.IGNORECASE)


@dataclass(frozen=True)
class Frame:
    """One message as it arrived: receive time (ns), what it is, its symbol if known, the bytes."""

    recv_ns: int
    kind: FrameKind
    symbol: str | None
    raw: bytes


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def symbol_from_name(path: Path) -> str | None:
    """``btcusdt_20240808.gz`` → ``BTCUSDT``; ``BTCUSDT-aggTrades-2024-08-08.csv`` → ``BTCUSDT``."""
    m = _SYMBOL_IN_NAME.match(path.name)
    return m.group(1).upper() if m else None


def detect_format(path: Path) -> str:
    """Return the format of a recorded file from its first line."""
    with _open(path) as f:
        first = f.readline()
    if b" <-> " in first:
        return "cryptofeed"
    head = first.split(b" ", 2)
    if len(head) >= 3 and head[0].isdigit() and head[1] in (b"ws", b"rest_depth", b"exchange_info"):
        return "depthflow"
    if len(head) >= 2 and head[0].isdigit() and head[1][:1] == b"{":
        return "hftbacktest"
    if first[:1].isdigit() and first.count(b",") >= 6:
        return "binance-csv"
    raise ValueError(f"{path}: unknown recording format (first line {first[:80]!r})")


def read_frames(path: Path, fmt: str = "auto", symbol: str | None = None) -> Iterator[Frame]:
    """Yield the frames of a recorded file in file order."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    symbol = symbol or symbol_from_name(path)
    readers = {
        "depthflow": _read_depthflow,
        "hftbacktest": _read_hftbacktest,
        "cryptofeed": _read_cryptofeed,
        "binance-csv": _read_csv,
    }
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}; formats are {FORMATS}")
    with _open(path) as f:
        yield from readers[fmt](f, symbol)


def _read_depthflow(f: IO[bytes], _: str | None) -> Iterator[Frame]:
    for line in f:
        ts, kind, sym, raw = line.rstrip(b"\n").split(b" ", 3)
        yield Frame(int(ts), kind.decode(), None if sym == b"-" else sym.decode(), raw)  # type: ignore[arg-type]


def _read_hftbacktest(f: IO[bytes], symbol: str | None) -> Iterator[Frame]:
    for line in f:
        ts, raw = line.rstrip(b"\n").split(b" ", 1)
        if raw.startswith(b'{"lastUpdateId"'):
            yield Frame(int(ts), "rest_depth", symbol, raw)
        else:
            yield Frame(int(ts), "ws", None, raw)


def _read_cryptofeed(f: IO[bytes], _: str | None) -> Iterator[Frame]:
    f.readline()  # the connection line
    for line in f:
        line = line.rstrip(b"\n")
        if line.startswith(b"http"):
            url, rest = line.split(b" -> ", 1)
            ts, raw = rest.split(b": ", 1)
            m = _SYMBOL_IN_URL.search(url)
            kind: FrameKind = "rest_depth" if b"/depth" in url else "exchange_info"
            yield Frame(_s_to_ns(ts), kind, m.group(1).decode().upper() if m else None, raw)
        elif b" <-> " in line:
            continue  # a reconnection line
        else:
            ts, raw = line.split(b": ", 1)
            yield Frame(_s_to_ns(ts), "ws", None, raw)


def _read_csv(f: IO[bytes], symbol: str | None) -> Iterator[Frame]:
    for line in f:
        line = line.strip()
        if line and line[:1].isdigit():
            cols = line.split(b",", 6)
            t = int(cols[5])
            # the public dumps moved from ms to µs timestamps in 2025
            ns = t * 1000 if t > 10**15 else t * 1_000_000
            yield Frame(ns, "agg_trade_csv", symbol, line)


def _s_to_ns(ts: bytes) -> int:
    sec, _, frac = ts.partition(b".")
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

"""The end of a replay, told plainly: per file what was read and skipped, per symbol what was
published, and a warning for every configured symbol that got no book in time, with the reason.

Why: a replay that published nothing for a symbol used to exit 0 with one WARNING in a log
nobody reads. The collector writes this report as JSON where ``replay_report`` says (``depthflow
up`` gives the path); the ctl adds what the bus counted, prints the warnings, puts them in its
final JSON and exits non-zero. The warnings are a pure function of what the session saw, so they
are tested without a bus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from depthflow.collector.recording import Recording
from depthflow.collector.session import SymbolFacts


class ReplayWarning(msgspec.Struct, frozen=True, kw_only=True):
    """A configured symbol that got no book (or got it late), and why."""

    symbol: str
    reason: str


class SymbolReport(msgspec.Struct, frozen=True, kw_only=True):
    books: int
    diffs: int
    snapshots: dict[str, int]  # snapshot outcomes: synced, gap, snapshot_too_old, crossed, malformed (...)
    gaps: int  # diffs out of sequence on a live book (each forces a resync)
    first_book_after_s: float | None  # recorded time from the symbol's first frame to its first book
    tick_size: float


class FileReport(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    format: str
    lines: int
    frames: int
    skipped: dict[str, int]  # unusable lines by reason (blank line, truncated JSON, ...)


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    finished: bool  # False when the replay was stopped before the end of its files
    book_within_s: float
    files: list[FileReport]
    symbols: dict[str, SymbolReport]
    warnings: list[ReplayWarning]


def _after_s(facts: SymbolFacts) -> float | None:
    if facts.first_book_ns is None or facts.first_frame_ns is None:
        return None
    return (facts.first_book_ns - facts.first_frame_ns) / 1e9


def why_no_book(facts: SymbolFacts | None, refusals: list[str], in_files: Iterable[str]) -> str:
    """Why a symbol the replay was asked for published no book, from what the session saw."""
    if refusals:
        return "no book: its REST snapshot was refused: " + "; ".join(refusals)
    if facts is None or facts.first_frame_ns is None:
        carried = ", ".join(sorted(in_files)) or "no symbol"
        return f"no book: the symbol is not in the replayed files (they carry {carried})"
    snaps = facts.snapshots
    if not snaps:
        return (f"no book: no REST depth snapshot for it in the files ({facts.diffs} depth diffs, "
                "nothing to build a book from)")
    if snaps.get("gap"):
        return (f"no book: gap while syncing ({snaps['gap']} snapshots did not connect to the buffered "
                "diffs by update id)")
    if snaps.get("snapshot_too_old"):
        return "no book: every snapshot was older than the first buffered diff"
    if snaps.get("crossed"):
        return "no book: the book crossed (best bid >= best ask) right after syncing"
    return "no book: snapshots were " + ", ".join(f"{k} {v}" for k, v in sorted(snaps.items()))


def symbol_warnings(
    symbols: Iterable[str],
    facts: Mapping[str, SymbolFacts],
    refusals: Mapping[str, list[str]],
    in_files: Iterable[str],
    book_within_s: float,
) -> list[ReplayWarning]:
    """A warning for each of ``symbols`` without a book within ``book_within_s`` of recorded time
    from its first frame (or at all)."""
    out = []
    for symbol in symbols:
        f = facts.get(symbol)
        if f is None or f.books == 0:
            reason = why_no_book(f, refusals.get(symbol, []), in_files)
            out.append(ReplayWarning(symbol=symbol, reason=reason))
        elif (after := _after_s(f)) is not None and after > book_within_s:
            out.append(ReplayWarning(symbol=symbol, reason=(
                f"first book only {after:.1f}s of recorded time after its first frame "
                f"(replay_book_within_s is {book_within_s:g})")))
    return out


def build_report(
    recording: Recording,
    symbols: list[str],
    facts: Mapping[str, SymbolFacts],
    ticks: Mapping[str, float],
    book_within_s: float,
    finished: bool,
) -> ReplayReport:
    """The report of a replay of ``recording`` for ``symbols``."""
    return ReplayReport(
        finished=finished,
        book_within_s=book_within_s,
        files=[FileReport(path=str(f.path), format=f.fmt, lines=f.lines, frames=f.frames,
                          skipped=dict(sorted(f.skipped.items()))) for f in recording.files],
        symbols={s: SymbolReport(books=f.books, diffs=f.diffs, snapshots=dict(f.snapshots), gaps=f.gaps,
                                 first_book_after_s=_after_s(f), tick_size=ticks.get(s, 0.0))
                 for s, f in sorted(facts.items())},
        warnings=symbol_warnings(symbols, facts, recording.snapshot_refusals(), recording.symbols,
                                 book_within_s),
    )

"""Figures, the stdout table and ``bench/results/latest.json``.

Why a flat JSON object (name → number or string): it diffs line by line between runs and any
tool (jq, a spreadsheet, a CI comment) can read it without knowing the groups.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.timing import Stats

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"

Value = float | int | str


@dataclass(frozen=True)
class Figure:
    """One reported figure; ``p99`` is set for timings, where the tail is meaningful."""

    name: str
    value: Value
    unit: str = ""
    p99: float | None = None
    samples: int | None = None

    @classmethod
    def timing(cls, name: str, stats: Stats, per: int = 1) -> Figure:
        """A timing figure named ``*_us``: the median with the p99 alongside, divided by ``per``.

        ``per`` > 1 is for samples that time several units of work (both sides of a book).
        """
        return cls(name, round(stats.median_us / per, 3), "us", round(stats.p99_us / per, 3), stats.samples)

    def p99_name(self) -> str:
        """``codec_x_us`` → ``codec_x_p99_us``: the JSON key of the tail figure."""
        stem = self.name.removesuffix("_us")
        return f"{stem}_p99_us"

    def flat(self) -> dict[str, Value]:
        """This figure as JSON entries: the value, plus its p99 when it has one."""
        out: dict[str, Value] = {self.name: self.value}
        if self.p99 is not None:
            out[self.p99_name()] = self.p99
        return out


def commit() -> str:
    """The short commit of the checkout, or ``"unknown"`` outside a git repository."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return proc.stdout.strip() or "unknown"


def machine() -> str:
    """E.g. ``"x86_64, 2 cpus, CPython 3.11.7"``: enough to tell runs on different hosts apart."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def provenance() -> dict[str, Value]:
    """``commit``, ``machine`` and ``timestamp`` (ISO 8601, UTC) of this run."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {"commit": commit(), "machine": machine(), "timestamp": now}


def _format(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def print_table(group: str, figures: list[Figure]) -> None:
    """Print one group's figures as an aligned table: name, median/value, p99, unit, samples."""
    width = max(len(f.name) for f in figures)
    print(f"\n== {group}")
    print(f"  {'figure':<{width}}  {'median/value':>14}  {'p99':>12}  {'unit':<5}  samples")
    for f in figures:
        p99 = _format(f.p99) if f.p99 is not None else ""
        n = str(f.samples) if f.samples is not None else ""
        print(f"  {f.name:<{width}}  {_format(f.value):>14}  {p99:>12}  {f.unit:<5}  {n}")


def write(figures: list[Figure], *, merge: bool, path: Path = RESULTS) -> dict[str, Value]:
    """Write ``figures`` plus provenance to ``path``; with ``merge`` keep other groups' figures.

    Written to a temporary file and renamed, so a reader never sees half a file. A merged file
    carries the provenance of the latest run only.
    """
    data: dict[str, Value] = {}
    if merge and path.exists():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = None
        if isinstance(loaded, dict):
            data.update(loaded)
    for f in figures:
        data.update(f.flat())
    data.update(provenance())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp.json")  # *.json: git-ignored if left behind
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return data

"""Timing helpers: warm up, repeat, and summarise samples as median and p99.

Why these choices: ``perf_counter_ns`` is the highest-resolution monotonic clock; the median is
robust to the bursts a noisy shared machine produces; p99 shows the tail the median hides. The
garbage collector is paused while sampling (as ``timeit`` does) so that a collection triggered by
an earlier allocation is not charged to whichever sample it happened to land in.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    """Per-call times in microseconds over ``samples`` samples of ``number`` calls each."""

    median_us: float
    p99_us: float
    samples: int
    number: int


def percentile(sorted_values: list[float], q: float) -> float:
    """Return the nearest-rank ``q`` percentile (0 < q <= 100) of ascending ``sorted_values``.

    Nearest rank rather than interpolation: with a few hundred samples it reports a time that was
    actually observed.
    """
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Case:
    """A callable to time, and how many calls make one sample."""

    fn: Callable[[], object]
    number: int = 1


def measure_interleaved(
    cases: Mapping[str, Case],
    *,
    repeat: int = 200,
    warmup: int = 5,
    budget_s: float = 3.0,
    min_samples: int = 20,
) -> dict[str, Stats]:
    """Time several cases round-robin: one sample of each per round, up to ``repeat`` rounds.

    Interleaving is what makes a ratio between cases trustworthy on a noisy machine: a burst of
    load from a neighbour lands on all of them instead of on whichever case ran at that moment.
    The price is that each case starts a sample with caches warmed by another case; a ``number``
    large enough to amortise that one cold call keeps it out of the figure. ``number`` > 1 also
    amortises the clock's own cost (~50-100 ns) for calls of a few microseconds; the p99 is then
    the p99 of per-call averages over a sample, so keep ``number`` small for slow calls. Rounds
    stop early once ``budget_s`` is spent (after at least ``min_samples``), so the whole
    run stays within its time budget even when the machine is slow.
    """
    for case in cases.values():
        for _ in range(warmup * case.number):
            case.fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        deadline = time.perf_counter_ns() + int(budget_s * 1e9)
        for i in range(repeat):
            for name, case in cases.items():
                fn, calls = case.fn, range(case.number)
                t0 = time.perf_counter_ns()
                for _ in calls:
                    fn()
                t1 = time.perf_counter_ns()
                samples[name].append((t1 - t0) / case.number / 1000.0)
            if i + 1 >= min_samples and time.perf_counter_ns() > deadline:
                break
    finally:
        if was_enabled:
            gc.enable()
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = Stats(percentile(values, 50), percentile(values, 99), len(values), cases[name].number)
    return out


def measure(fn: Callable[[], object], *, number: int = 1, **kwargs: Any) -> Stats:
    """Time one callable; see :func:`measure_interleaved` for the arguments."""
    return measure_interleaved({"_": Case(fn, number)}, **kwargs)["_"]

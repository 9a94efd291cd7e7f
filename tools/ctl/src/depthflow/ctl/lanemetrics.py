"""Per-lane counts read from the services' own ``/metrics`` (the ``lane`` label).

Why from the processes and not the streams: the streams say what was published, not which lane
handled it (both lanes write the same subjects). Each process counts its inputs by symbol, lane
and outcome (``ok`` handled, ``skipped`` another lane's, ``dead_letter``, ``retry``) and times
what it handled; the supervisor reads them, keeps the last reading of every process it ever ran
(a stopped canary's counts stay in the run's totals) and sums them per lane.
"""

from __future__ import annotations

import time
import urllib.request
from collections import deque
from collections.abc import Iterable

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from depthflow.common.routing import STABLE
from depthflow.ctl.stack import ServiceProcess

OUTCOMES = ("ok", "skipped", "dead_letter", "retry")


class Reading(msgspec.Struct):
    """Cumulative counters of one process (or their sum over a lane)."""

    counts: dict[str, dict[str, float]] = {}  # symbol -> outcome -> messages (all kinds)
    buckets: dict[float, float] = {}  # handle_seconds: upper bound -> cumulative count

    def plus(self, other: Reading, sign: float = 1.0) -> Reading:
        counts = {s: dict(o) for s, o in self.counts.items()}
        for sym, outs in other.counts.items():
            mine = counts.setdefault(sym, {})
            for k, v in outs.items():
                mine[k] = mine.get(k, 0.0) + sign * v
        buckets = dict(self.buckets)
        for le, v in other.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + sign * v
        return Reading(counts, buckets)

    def outcome(self, outcome: str) -> float:
        return sum(o.get(outcome, 0.0) for o in self.counts.values())

    def handled(self, symbol: str) -> int:
        return int(self.counts.get(symbol, {}).get("ok", 0.0))

    def p99(self) -> float | None:
        """The 99th percentile of the handling time (a bucket's upper bound), None if empty."""
        if not self.buckets:
            return None
        total = max(self.buckets.values())
        if total <= 0:
            return None
        for le in sorted(self.buckets):
            if self.buckets[le] >= 0.99 * total:
                return le
        return None


def parse(text: str, service: str) -> Reading:
    """Read one service's ``/metrics`` text."""
    p = f"depthflow_{service.replace('-', '_')}"
    out = Reading({}, {})
    for fam in text_string_to_metric_families(text):
        if fam.name == f"{p}_messages":
            for smp in fam.samples:
                if smp.name.endswith("_total"):
                    sym = out.counts.setdefault(smp.labels["symbol"], {})
                    key = smp.labels["outcome"]
                    sym[key] = sym.get(key, 0.0) + smp.value
        elif fam.name == f"{p}_handle_seconds":
            for smp in fam.samples:
                if smp.name.endswith("_bucket"):
                    le = float(smp.labels["le"])
                    out.buckets[le] = out.buckets.get(le, 0.0) + smp.value
    return out


def scrape(p: ServiceProcess) -> Reading | None:
    """The process's reading now, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{p.port}/metrics", timeout=2) as r:
            return parse(r.read().decode(), p.name)
    except OSError:
        return None


def lanes_in_use(procs: Iterable[ServiceProcess]) -> set[str]:
    """Services running more than their first stable replica (a canary, or replicas)."""
    return {p.name for p in procs if (p.lane, p.replica) != (STABLE, "0")}


class LaneLedger:
    """The last reading of every process of the services that run lanes or replicas, and a
    short history of their per-lane sums (for windowed rates)."""

    def __init__(self, keep_s: float = 3600.0) -> None:
        self.services: set[str] = set()
        self.latest: dict[tuple[str, str, int], Reading] = {}  # (service, lane, pid)
        self.history: deque[tuple[float, dict[tuple[str, str], Reading]]] = deque()
        self.keep_s = keep_s

    def observe(self, procs: list[ServiceProcess], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.services |= lanes_in_use(procs)
        for p in procs:
            if p.name in self.services and not p.done:
                self.observe_one(p)
        self.history.append((now, self.totals()))
        while self.history and now - self.history[0][0] > self.keep_s:
            self.history.popleft()

    def observe_one(self, p: ServiceProcess) -> None:
        """Keep ``p``'s reading now (the supervisor's last look before it stops a process)."""
        got = scrape(p)
        if got is not None:
            self.services.add(p.name)
            self.latest[(p.name, p.lane, p.pid)] = got

    def totals(self) -> dict[tuple[str, str], Reading]:
        out: dict[tuple[str, str], Reading] = {}
        for (service, lane, _), reading in self.latest.items():
            out[(service, lane)] = out.get((service, lane), Reading({}, {})).plus(reading)
        return out

    def window(self, window_s: float) -> tuple[float, dict[tuple[str, str], Reading]] | None:
        """The per-lane change over the last ``window_s`` (and the span it covers), or None
        before a reading that old exists."""
        if not self.history:
            return None
        now, last = self.history[-1]
        old = next(((t, r) for t, r in reversed(self.history) if now - t >= window_s), None)
        if old is None:
            return None
        return now - old[0], {k: v.plus(old[1].get(k, Reading({}, {})), -1.0) for k, v in last.items()}

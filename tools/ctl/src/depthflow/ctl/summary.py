"""What the pipeline did: per-symbol counts per stage, latest zones and signals, orders, equity.

Counts come from the streams themselves (JetStream keeps a message count per subject), so the
summary reports what was really published, not what a process believes it sent. Counts are
relative to a baseline taken at start, so a state folder reused across runs reports this run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import msgspec
import nats.errors
from nats.js.errors import NotFoundError

from depthflow.collector.replay_report import ReplayReport, ReplayWarning
from depthflow.common.bus import Bus
from depthflow.common.codec import Decoder
from depthflow.common.config import SERVICES
from depthflow.common.messages import SignalFused, ZonesDetected
from depthflow.common.routing import STABLE, RouteStore
from depthflow.common.subjects import STREAM_DOMAINS, ParsedSubject, Subjects
from depthflow.ctl.lanemetrics import Reading
from depthflow.ctl.prices import format_price
from depthflow.risk.readmodel import decision_counts, latest_equity

STAGES = ("md.depth", "md.trade", "agg.book", "agg.profile", "peaks.zones", "signal.fused")
LATEST_SHOWN = ("peaks.zones", "signal.fused")  # stages whose last message the summary shows
_zones = Decoder[ZonesDetected](ZonesDetected)
_signal = Decoder[SignalFused](SignalFused)


@dataclass
class Snapshot:
    """Counts per (stage, symbol), plus what the ledger holds."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    dead_letters: int = 0
    orders: dict[str, int] = field(default_factory=dict)
    fills: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    actionable: dict[str, int] = field(default_factory=dict)
    equity: float | None = None
    zones: dict[str, ZonesDetected] = field(default_factory=dict)
    signals: dict[str, SignalFused] = field(default_factory=dict)
    routes: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> symbol -> lane

    def minus(self, base: Snapshot) -> Snapshot:
        def sub(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: v - b.get(k, 0) for k, v in a.items()}

        return Snapshot(
            counts={s: sub(c, base.counts.get(s, {})) for s, c in self.counts.items()},
            dead_letters=self.dead_letters - base.dead_letters,
            orders=sub(self.orders, base.orders),
            fills=sub(self.fills, base.fills),
            rejected=sub(self.rejected, base.rejected),
            actionable=sub(self.actionable, base.actionable),
            equity=self.equity,
            zones=self.zones,
            signals=self.signals,
            routes=self.routes,
        )

    def totals(self) -> dict[str, int]:
        out = {stage: sum(self.counts.get(stage, {}).values()) for stage in STAGES}
        out["signals_actionable"] = sum(self.actionable.values())
        out["orders"] = sum(self.orders.values())
        out["fills"] = sum(self.fills.values())
        out["rejected"] = sum(self.rejected.values())
        out["dead_letters"] = self.dead_letters
        return out


async def collect(bus: Bus, postgres_url: str, venue: str) -> Snapshot:
    """Read counts from the streams and the ledger (through risk's read model)."""
    snap = Snapshot()
    subj = bus.subjects
    for name in STREAM_DOMAINS:
        try:
            info = await bus.js.stream_info(subj.stream(name), subjects_filter=">")
        except NotFoundError:
            continue
        for subject, parsed in count_subjects(snap, subj, info.state.subjects or {}):
            await _latest(bus, name, subject, parsed, snap)
    for service in SERVICES:
        with contextlib.suppress(RuntimeError, ValueError):  # no bucket yet, or unreadable
            route, _ = await (await RouteStore.open(bus, service)).read()
            if route is not None and route.current():
                snap.routes[service] = route.current()
    conn = await asyncpg.connect(postgres_url, timeout=5)
    try:
        for symbol, counts in (await decision_counts(conn, venue)).items():
            snap.orders[symbol] = counts.orders
            snap.fills[symbol] = counts.fills
            snap.rejected[symbol] = counts.rejected
            snap.actionable[symbol] = counts.actionable
        snap.equity = await latest_equity(conn, venue)
    finally:
        await conn.close()
    return snap


def count_subjects(
    snap: Snapshot, subjects: Subjects, per_subject: Mapping[str, int]
) -> list[tuple[str, ParsedSubject]]:
    """Add one stream's message counts per subject to ``snap`` (dead letters as one number,
    market subjects per stage and symbol); return the subjects whose last message the summary
    shows (zones and signals).

    A subject :meth:`Subjects.parse` does not know (no builder makes it) is not counted: it is
    nothing the pipeline published."""
    shown = []
    for subject, n in per_subject.items():
        try:
            parsed = subjects.parse(subject)
        except ValueError:
            continue
        if parsed.domain == "dlq":
            snap.dead_letters += n
        elif parsed.symbol:
            snap.counts.setdefault(parsed.stage, {})[parsed.symbol] = n
            if parsed.stage in LATEST_SHOWN:
                shown.append((subject, parsed))
    return shown


async def _latest(bus: Bus, stream: str, subject: str, parsed: ParsedSubject, snap: Snapshot) -> None:
    try:
        raw = await bus.js.get_last_msg(bus.subjects.stream(stream), subject)
    except (NotFoundError, nats.errors.Error):
        return
    if parsed.stage == "peaks.zones":
        snap.zones[parsed.symbol] = _zones.decode(raw.data or b"")
    else:
        snap.signals[parsed.symbol] = _signal.decode(raw.data or b"")


class LaneCounts(msgspec.Struct, frozen=True):
    """What one lane of a service owns and did (from its processes' metrics, since they started)."""

    symbols: list[str]  # owned now, by the route
    handled: dict[str, int]  # symbol -> messages handled
    skipped: int  # messages of symbols other lanes own
    dead_letters: int
    processes: int


def lane_counts(
    routes: Mapping[str, Mapping[str, str]], readings: Mapping[tuple[str, str], Reading],
    processes: Mapping[tuple[str, str], int], symbols: list[str],
) -> dict[str, dict[str, LaneCounts]]:
    """Service -> lane -> :class:`LaneCounts`, for every service with a reading."""
    out: dict[str, dict[str, LaneCounts]] = {}
    for (service, lane), r in sorted(readings.items()):
        current = routes.get(service, {})
        owned = sorted(s for s in set(symbols) | set(current) if current.get(s, STABLE) == lane)
        out.setdefault(service, {})[lane] = LaneCounts(
            symbols=owned, handled={s: r.handled(s) for s in sorted(set(symbols) | set(r.counts))},
            skipped=int(r.outcome("skipped")), dead_letters=int(r.outcome("dead_letter")),
            processes=processes.get((service, lane), 0))
    return out


def render_lanes(lanes: Mapping[str, Mapping[str, LaneCounts]]) -> list[str]:
    """One line per lane: the symbols it owns, what it handled per symbol, skipped, dead letters."""
    lines = []
    for service, by_lane in lanes.items():
        for lane, c in by_lane.items():
            handled = "  ".join(f"{s} {n}" for s, n in c.handled.items())
            lines.append(f"  {service:<10} {lane:<6} x{c.processes}  owns {','.join(c.symbols) or '-':<20}"
                         f"  handled {handled}  skipped {c.skipped}  dead letters {c.dead_letters}")
    return lines


def render(snap: Snapshot, symbols: list[str], elapsed: float, restarts: dict[str, int] | None = None,
           lanes: Mapping[str, Mapping[str, LaneCounts]] | None = None) -> str:
    """Return the human summary: one block per symbol (and the supervisor's restarts, and each
    lane of the services running lanes or replicas, if any)."""
    lines = [f"depthflow — {elapsed:5.0f}s   equity {snap.equity or 0:,.2f}   "
             f"dead letters {snap.dead_letters}"]
    if restarts:
        lines.append("  restarts   " + ", ".join(f"{k} {v}" for k, v in sorted(restarts.items())))
    for sym in symbols:
        c = {stage: snap.counts.get(stage, {}).get(sym, 0) for stage in STAGES}
        lines.append(
            f"  {sym:<10} depth {c['md.depth']:>5}  trades {c['md.trade']:>5}  book {c['agg.book']:>5}"
            f"  profile {c['agg.profile']:>5}  zones {c['peaks.zones']:>5}  signals {c['signal.fused']:>5}"
            f"  orders {snap.orders.get(sym, 0):>4}  fills {snap.fills.get(sym, 0):>4}"
            f"  rejected {snap.rejected.get(sym, 0):>4}"
        )
        z = snap.zones.get(sym)
        if z is not None:
            lines.append(f"             {_zones_line(z)}")
        s = snap.signals.get(sym)
        if s is not None:
            lines.append(
                f"             signal {s.side:<4} score {s.score:+.3f} mode {s.mode}"
            )
    if lanes:
        lines.append("  lanes")
        lines += render_lanes(lanes)
    return "\n".join(lines)


def _zones_line(z: ZonesDetected) -> str:
    """Mid, POC, value area and the three strongest zones a side, at the symbol's precision."""

    def px(price: float) -> str:
        return format_price(price, z.tick_size, z.bucket_size)

    sup = ", ".join(f"{px(s.low)}-{px(s.high)}" for s in z.support[:3]) or "-"
    res = ", ".join(f"{px(r.low)}-{px(r.high)}" for r in z.resistance[:3]) or "-"
    return (f"mid {px(z.mid)}  POC {px(z.poc)}  VA {px(z.value_area_low)}-{px(z.value_area_high)}"
            f"  support {sup}  resistance {res}")


def final_json(
    snap: Snapshot, restarts: dict[str, int] | None = None, warnings: list[ReplayWarning] | None = None,
    lanes: Mapping[str, Mapping[str, LaneCounts]] | None = None,
) -> str:
    """The last line of a run: one JSON object of counts per stage, signals, orders, fills, how
    often the supervisor restarted each service, the run's warnings (a replay's symbols
    without a book, each with the reason) and, per service that ran lanes or replicas, each
    lane's symbols and counts."""
    return json.dumps({**snap.totals(), "restarts": restarts or {},
                       "warnings": msgspec.to_builtins(warnings or []),
                       "lanes": msgspec.to_builtins(lanes or {})}, sort_keys=True)


def read_replay_report(path: Path) -> ReplayReport | None:
    """The collector's replay report, or None when it wrote none (or not a readable one)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=ReplayReport)
    except (OSError, msgspec.DecodeError):
        return None


def replay_warnings(report: ReplayReport | None, depth_counts: dict[str, int] | None,
                    symbols: list[str]) -> list[ReplayWarning]:
    """The collector's warnings, checked against the bus: a symbol asked for that ``md.depth``
    counted no book for is a warning even when the collector said nothing (it may have crashed,
    or be wrong); ``depth_counts`` is None when the bus could not be read at the end."""
    warnings = list(report.warnings) if report is not None else [ReplayWarning(
        symbol="*", reason="the collector wrote no replay report (see its log in the state folder)")]
    named = {w.symbol for w in warnings}
    for symbol in symbols:
        if depth_counts is not None and depth_counts.get(symbol, 0) == 0 and symbol not in named:
            warnings.append(ReplayWarning(symbol=symbol, reason="no book: md.depth has none for it"))
    return warnings

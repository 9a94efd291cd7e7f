"""What the pipeline did: per-symbol counts per stage, latest zones and signals, orders, equity.

Counts come from the streams themselves (JetStream keeps a message count per subject), so the
summary reports what was really published, not what a process believes it sent. Counts are
relative to a baseline taken at start, so a state folder reused across runs reports this run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import msgspec
import nats.errors
from nats.js.errors import NotFoundError

from depthflow.collector.replay_report import ReplayReport, ReplayWarning
from depthflow.common.bus import Bus
from depthflow.common.codec import Decoder
from depthflow.common.messages import SignalFused, ZonesDetected
from depthflow.common.subjects import STREAM_DOMAINS

STAGES = ("md.depth", "md.trade", "agg.book", "agg.profile", "peaks.zones", "signal.fused")
_zones = Decoder(ZonesDetected)
_signal = Decoder(SignalFused)


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
    """Read counts from the streams and the ledger."""
    snap = Snapshot()
    subj = bus.subjects
    for name in STREAM_DOMAINS:
        try:
            info = await bus.js.stream_info(subj.stream(name), subjects_filter=">")
        except NotFoundError:
            continue
        for subject, n in (info.state.subjects or {}).items():
            tokens = subject.split(".")[1:] if subj.prefix else subject.split(".")
            if name == "DLQ":
                snap.dead_letters += n
                continue
            stage = ".".join(tokens[:2])
            snap.counts.setdefault(stage, {})[tokens[-1]] = n
            if stage in ("peaks.zones", "signal.fused"):
                await _latest(bus, name, subject, stage, tokens[-1], snap)
    conn = await asyncpg.connect(postgres_url, timeout=5)
    try:
        if await conn.fetchval("SELECT to_regclass('risk.decisions') IS NOT NULL"):
            for r in await conn.fetch(
                "SELECT d.symbol, count(*) FILTER (WHERE d.approved) AS orders,"
                " count(f.client_order_id) AS fills, count(*) FILTER (WHERE NOT d.approved"
                " AND d.reason <> 'signal_flat') AS rejected, count(*) FILTER"
                " (WHERE d.side <> 'FLAT') AS actionable FROM risk.decisions d"
                " LEFT JOIN risk.orders o USING (signal_id) LEFT JOIN risk.fills f"
                " USING (client_order_id) WHERE d.venue = $1 GROUP BY d.symbol",
                venue,
            ):
                snap.orders[r["symbol"]] = r["orders"]
                snap.fills[r["symbol"]] = r["fills"]
                snap.rejected[r["symbol"]] = r["rejected"]
                snap.actionable[r["symbol"]] = r["actionable"]
            eq = await conn.fetchval(
                "SELECT equity FROM risk.equity WHERE venue = $1 ORDER BY ts DESC LIMIT 1", venue
            )
            if eq is None:
                eq = await conn.fetchval("SELECT cash FROM risk.account WHERE venue = $1", venue)
            snap.equity = float(eq) if eq is not None else None
    finally:
        await conn.close()
    return snap


async def _latest(bus: Bus, stream: str, subject: str, stage: str, symbol: str, snap: Snapshot) -> None:
    try:
        raw = await bus.js.get_last_msg(bus.subjects.stream(stream), subject)
    except (NotFoundError, nats.errors.Error):
        return
    if stage == "peaks.zones":
        snap.zones[symbol] = _zones.decode(raw.data or b"")
    else:
        snap.signals[symbol] = _signal.decode(raw.data or b"")


def render(snap: Snapshot, symbols: list[str], elapsed: float, restarts: dict[str, int] | None = None) -> str:
    """Return the human summary: one block per symbol (and the supervisor's restarts, if any)."""
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
            sup = ", ".join(f"{s.low:.0f}-{s.high:.0f}" for s in z.support[:3]) or "-"
            res = ", ".join(f"{r.low:.0f}-{r.high:.0f}" for r in z.resistance[:3]) or "-"
            lines.append(
                f"             mid {z.mid:,.2f}  POC {z.poc:,.0f}  VA {z.value_area_low:,.0f}"
                f"-{z.value_area_high:,.0f}  support {sup}  resistance {res}"
            )
        s = snap.signals.get(sym)
        if s is not None:
            lines.append(
                f"             signal {s.side:<4} score {s.score:+.3f} mode {s.mode}"
            )
    return "\n".join(lines)


def final_json(
    snap: Snapshot, restarts: dict[str, int] | None = None, warnings: list[ReplayWarning] | None = None
) -> str:
    """The last line of a run: one JSON object of counts per stage, signals, orders, fills, how
    often the supervisor restarted each service, and the run's warnings (a replay's symbols
    without a book, each with the reason)."""
    return json.dumps({**snap.totals(), "restarts": restarts or {},
                       "warnings": msgspec.to_builtins(warnings or [])}, sort_keys=True)


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

"""``depthflow up`` / ``down`` / ``status``: run the pipeline under a supervisor, stop it, show it.

``up`` starts the servers, bootstraps the bus, starts the five services, restarts what crashes
and stops everything once when asked; ``--detach`` runs that supervisor in the background, and
``down`` asks it to stop.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from depthflow.collector.recording import Recording, RecordingRefused
from depthflow.collector.replay_report import ReplayWarning
from depthflow.common.config import ConfigError
from depthflow.ctl.canary import Refused
from depthflow.ctl.commands.bootstrap import bootstrap_streams
from depthflow.ctl.commands.canary import canary_argv, canary_spec, guard_settings
from depthflow.ctl.commands.console import say
from depthflow.ctl.commands.servers import server_urls, snapshot, try_snapshot
from depthflow.ctl.drain import drained
from depthflow.ctl.operate import LaneOperator
from depthflow.ctl.stack import ServiceStack, StartInterrupted
from depthflow.ctl.streamplan import PlannedStreams, half_free_disk_gib, plan_streams
from depthflow.ctl.summary import (
    LaneCounts,
    Snapshot,
    final_json,
    lane_counts,
    read_replay_report,
    render,
    replay_warnings,
)
from depthflow.ctl.supervisor import RunLock, StopSignals, wait_gone
from depthflow.devstack import EmbeddedServers, require_nats_version

STOP_BOUND_S = 120.0  # services drain (30 s each at most), then the servers stop (30 s at most)


def _refusal(state: Path) -> str | None:
    """Why another ``up`` must not start on ``state`` (a live run owns it), or None."""
    lock = RunLock(state)
    pid = lock.holder_pid()
    if pid is not None or lock.held_by_other():
        return (f"refused: depthflow is already running on {state.resolve()} (supervisor pid {pid});"
                " `depthflow status` shows it, `depthflow down` stops it")
    stack = ServiceStack(state)
    with contextlib.suppress(OSError, ValueError):
        stack.load()
    if live := stack.running():
        pids = ", ".join(f"{p.name} {p.pid}" for p in live)
        return (f"refused: services of an earlier run still run on {state.resolve()} ({pids});"
                " `depthflow down` stops them")
    stack.record.unlink(missing_ok=True)  # a dead run's record: nothing runs any more
    return None


def _replay_refusal(paths: list[str]) -> str | None:
    """Why the replay files must not run (futures data, an unknown format, ...), before anything starts."""
    try:
        Recording(paths)
    except (RecordingRefused, OSError) as exc:
        return f"refused: {exc}"
    return None


def _replay_report_path(state: Path) -> Path:
    return (state / "logs" / "replay-report.json").resolve()


def _replay_outcome(state: Path, final: Snapshot | None, symbols: list[str]) -> list[ReplayWarning]:
    """Say what the replay read and skipped, and return its warnings (checked against the bus)."""
    report = read_replay_report(_replay_report_path(state))
    for f in report.files if report is not None else []:
        skipped = ", ".join(f"{k} {v}" for k, v in f.skipped.items()) or "nothing"
        say(f"replay read {f.path} ({f.format}): {f.lines} lines, {f.frames} frames; skipped {skipped}")
    if report is not None and not report.finished:
        say("replay stopped before the end of its files")
    depth = final.counts.get("md.depth", {}) if final is not None else None
    warnings = replay_warnings(report, depth, symbols)
    for w in warnings:
        say(f"WARNING {w.symbol}: {w.reason}")
    return warnings


def cmd_up(args: argparse.Namespace) -> int:
    state: Path = args.state
    if (why := _refusal(state)) is not None:
        say(why)
        return 1
    if args.replay and (why := _replay_refusal(args.replay)) is not None:
        say(why)
        return 2
    try:  # a bad canary or guard setting stops start-up before anything starts
        args.canary = canary_spec(args.canary_spec, args.canary_set, args.symbols.split(","))
        args.guard = guard_settings(args)
    except Refused as exc:
        say(f"refused: {exc}")
        return 2
    try:  # before any server starts: a budget that cannot keep the streams is refused up front
        streams = plan_streams(len(args.symbols.split(",")), half_free_disk_gib(state))
    except (ConfigError, ValueError) as exc:
        say(f"refused: {exc}")
        return 2
    if args.detach:
        return _detach(args)
    lock = RunLock(state)
    if not lock.acquire():
        say(f"refused: depthflow is already running on {state.resolve()}")
        return 1
    stop = StopSignals().install()
    try:
        return _supervise(args, streams, lock, stop)
    finally:
        lock.release()


def _supervise(args: argparse.Namespace, streams: PlannedStreams, lock: RunLock, stop: StopSignals) -> int:
    """Servers, bootstrap, services; restart what crashes; stop everything once when asked."""
    state: Path = args.state
    symbols = args.symbols.split(",")
    say(f"state folder {state.resolve()} (supervisor pid {os.getpid()})")
    say("starting NATS (JetStream), PostgreSQL and Valkey ...")
    t0 = time.monotonic()
    urls, embedded = server_urls(state, start=True)
    require_nats_version(urls.nats)
    say(f"servers up in {time.monotonic() - t0:.1f}s: nats {urls.masked().nats}  postgres "
        f"{urls.masked().postgres}  redis {urls.masked().redis}")
    stack = ServiceStack(state)

    def stop_servers() -> None:
        if embedded and not args.keep_servers:
            EmbeddedServers(state / "servers").stop()
            say("servers stopped; data kept in the state folder")

    lanes = LaneOperator(stack, state, urls.nats, args.prefix, say, args.guard)
    try:
        bootstrap_streams(urls.nats, args.prefix, args.venue, streams)
        baseline = snapshot(urls, args.prefix, args.venue)
        stack.start(urls, _service_env(args, symbols), on_progress=say, should_stop=stop)
        lanes.apply()  # the replicas and canaries the state folder's topology keeps
        for service, shape in lanes.file.read().services.items():
            if shape.canary is not None and service != (args.canary or [None])[0]:
                say(f"{service}: canary kept from an earlier run; `depthflow canary rollback "
                    f"{service}` stops it")
        if args.canary:
            lanes.start_canary(*args.canary)
    except StartInterrupted:
        baseline = Snapshot()
    except Exception as exc:
        say(f"start failed: {exc}")
        stack.stop()
        stop_servers()
        return 1
    started = time.monotonic()
    if not stop():
        lock.mark_ready(symbols=symbols)
        say("pipeline running" + (f" for {args.duration:.0f}s" if args.duration else "")
            + ("; `depthflow down` stops" if args.supervisor else "; Ctrl-C stops"))
    tty = sys.stdout.isatty()
    next_print = 0.0
    idle_checks = 0  # consecutive checks that found a finished replay fully drained
    ended = ""
    while not stop() and not (args.duration and time.monotonic() - started >= args.duration):
        time.sleep(0.5)
        for event in stack.supervise():
            say(event)
        lanes.tick()
        now = time.monotonic() - started
        if args.replay and not args.duration and stack.source_done():
            # three times in a row, half a second apart: a message between stages is not the end
            idle_checks = idle_checks + 1 if drained(urls.nats, args.prefix) else 0
            if idle_checks >= 3:
                ended = "the replay is done and every stage has caught up"
                break
        if now >= next_print:
            snap = try_snapshot(urls, args.prefix, args.venue)
            if snap is not None:
                per_lane = _lanes(lanes, snap, symbols)
                text = render(snap.minus(baseline), symbols, now, stack.restarts, per_lane)
                print(("\x1b[2J\x1b[H" if tty else "") + text, flush=True)
            next_print = now + (2.0 if tty else 10.0)
    say(f"{stop.received or ended or 'time is up'}: stopping services (draining) ...")
    restarts = stack.restarts
    lanes.ledger.observe(stack.procs)  # the processes' counters are gone once they stop
    codes = stack.stop()
    say("service exit codes: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    final = try_snapshot(urls, args.prefix, args.venue)
    stop_servers()
    final = final.minus(baseline) if final is not None else None
    warnings = _replay_outcome(state, final, symbols) if args.replay else []
    if final is not None:
        print("\nfinal summary")
        per_lane = _lanes(lanes, final, symbols)
        print(render(final, symbols, time.monotonic() - started, restarts, per_lane))
        print(final_json(final, restarts, warnings, per_lane), flush=True)
    return 0 if all(c == 0 for c in codes.values()) and not warnings else 1


def _lanes(lanes: LaneOperator, snap: Snapshot, symbols: list[str]) -> dict[str, dict[str, LaneCounts]]:
    processes = Counter((w.name, w.lane) for w in lanes.file.read().wanted())
    return lane_counts(snap.routes, lanes.ledger.totals(), processes, symbols)


def _service_env(args: argparse.Namespace, symbols: list[str]) -> dict[str, str]:
    env = {
        "DEPTHFLOW_PREFIX": args.prefix,
        "DEPTHFLOW_VENUE": args.venue,
        "DEPTHFLOW_SYMBOLS": ",".join(symbols),
        "DEPTHFLOW_COLLECTOR_SPEED": str(args.speed),
        "DEPTHFLOW_COLLECTOR_SEED": str(args.seed),
    }
    if args.replay:
        report = _replay_report_path(args.state)
        report.unlink(missing_ok=True)  # a report left by an earlier run must not speak for this one
        env["DEPTHFLOW_COLLECTOR_SOURCE"] = "replay"
        env["DEPTHFLOW_COLLECTOR_REPLAY_PATHS"] = ",".join(str(Path(p).resolve()) for p in args.replay)
        env["DEPTHFLOW_COLLECTOR_REPLAY_REPORT"] = str(report)
        say(f"replaying {', '.join(args.replay)} for {', '.join(symbols)}")
    return env


def _detach(args: argparse.Namespace) -> int:
    """Run the supervisor as a background process of its own session; follow its start-up.

    The supervisor owns the servers and services (it reaps and restarts them), so it must
    outlive this command; ``down`` signals it through the pid in the state folder.
    """
    state: Path = args.state.resolve()
    (state / "logs").mkdir(parents=True, exist_ok=True)
    log_path = state / "logs" / "supervisor.log"
    argv = [sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--prefix", args.prefix,
            "--venue", args.venue, "--symbols", args.symbols, "up", "--duration", str(args.duration),
            "--speed", str(args.speed), "--seed", str(args.seed), "--supervisor"]
    argv += [a for r in args.replay for a in ("--replay", str(Path(r).resolve()))]
    argv += ["--keep-servers"] if args.keep_servers else []
    argv += canary_argv(args)
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=Path.cwd())
    lock = RunLock(state)
    with log_path.open("rb") as log:
        log.seek(offset)
        try:
            while True:
                sys.stdout.write(log.read().decode(errors="replace"))
                sys.stdout.flush()
                if proc.poll() is not None:
                    say(f"the supervisor exited with {proc.returncode}; see {log_path}")
                    return 1
                if lock.read().get("pid") == proc.pid and lock.read().get("ready"):
                    break
                time.sleep(0.2)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            return 1
    say(f"running in the background (supervisor pid {proc.pid}, log {log_path});"
        " `depthflow status` shows progress, `depthflow down` stops")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Ask the supervisor to stop (it drains services, then stops servers); else do it here."""
    lock = RunLock(args.state)
    pid = lock.holder_pid()
    if pid is not None:
        say(f"stopping the supervisor (pid {pid}) ...")
        os.kill(pid, signal.SIGTERM)
        if lock.wait_free(timeout=STOP_BOUND_S) and wait_gone(pid, timeout=10.0):
            say("stopped")
            return 0
        say(f"the supervisor did not stop within {STOP_BOUND_S:.0f}s; stopping what it started")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    stack = ServiceStack(args.state)
    stack.load()
    stack.procs = stack.running()  # never signal a pid that is no longer our service
    if stack.procs:
        codes = {**stack.stop(), **stack.exit_codes}
        say("services stopped: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    EmbeddedServers(args.state / "servers").stop()
    say("servers stopped; data kept in the state folder")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    pid = RunLock(args.state).holder_pid()
    print(f"  supervisor  {f'running (pid {pid})' if pid else 'not running'}")
    urls, _ = server_urls(args.state, start=False)
    stack = ServiceStack(args.state)
    stack.load()
    live = {p.pid for p in stack.running()}
    for p in stack.procs:
        restarts = f"  ({p.restarts} restart{'' if p.restarts == 1 else 's'})" if p.restarts else ""
        print(f"  {p.key:<11} {'running' if p.pid in live else 'STOPPED'}{restarts}")
    snap = try_snapshot(urls, args.prefix, args.venue)
    if snap is None:
        return 1
    print(render(snap, args.symbols.split(","), 0, stack.restarts))
    return 0

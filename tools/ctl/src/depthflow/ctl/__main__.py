"""``depthflow``: the operator command.

    depthflow up [--duration S] [--speed X] [--detach]   servers + bootstrap + five services + summary;
                 [--replay FILE]...                     restarts a crashed service; Ctrl-C stops all;
                                                        a replay symbol without a book fails the run
    depthflow down                                      stop services, then servers; nothing is lost
    depthflow status                                    the live summary once
    depthflow bootstrap                                 create/update streams and KV buckets
    depthflow halt | resume                             set the trading state (audited in the KV history)
    depthflow plot SYMBOL [--replay FILE] [--until S]   PNG + HTML of book, trade profile and zones
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from depthflow.collector.recording import Recording, RecordingRefused
from depthflow.collector.replay_report import ReplayWarning
from depthflow.common.bus import Bus
from depthflow.common.devstack import (
    EmbeddedServers,
    ServerUrls,
    require_nats_version,
    servers_from_env,
)
from depthflow.common.redact import mask_url
from depthflow.ctl.control import RefusedCommand, bootstrap, set_trading_state
from depthflow.ctl.stack import ServiceStack, StartInterrupted
from depthflow.ctl.summary import (
    Snapshot,
    collect,
    final_json,
    read_replay_report,
    render,
    replay_warnings,
)
from depthflow.ctl.supervisor import RunLock, StopSignals, wait_gone

DEFAULT_STATE = Path(os.environ.get("DEPTHFLOW_STATE_DIR", ".state"))
STOP_BOUND_S = 120.0  # services drain (30 s each at most), then the servers stop (30 s at most)


def _say(msg: str) -> None:
    print(f"[depthflow] {msg}", flush=True)


def _servers(state: Path, start: bool) -> tuple[ServerUrls, bool]:
    """Return the server URLs: the environment's, else the embedded ones (started if asked)."""
    env_urls = servers_from_env()
    if env_urls is not None:
        return env_urls, False
    embedded = EmbeddedServers(state / "servers")
    urls = embedded.start() if start else embedded.running()
    if urls is None:
        raise SystemExit("depthflow is not running (no servers in the state folder)")
    return urls.with_env_overrides(), True


async def _snapshot(urls: ServerUrls, prefix: str, venue: str) -> Snapshot:
    bus = await Bus.connect(urls.nats, prefix, name="depthflow-summary", within_s=5.0)
    try:
        return await collect(bus, urls.postgres, venue)
    finally:
        await bus.close()


def _try_snapshot(urls: ServerUrls, prefix: str, venue: str) -> Snapshot | None:
    """The summary, or None while a server is away (a summary never stops the supervisor)."""
    try:
        return asyncio.run(_snapshot(urls, prefix, venue))
    except Exception as exc:
        _say(f"summary unavailable: {type(exc).__name__}: {exc}")
        return None


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
        _say(f"replay read {f.path} ({f.format}): {f.lines} lines, {f.frames} frames; skipped {skipped}")
    if report is not None and not report.finished:
        _say("replay stopped before the end of its files")
    depth = final.counts.get("md.depth", {}) if final is not None else None
    warnings = replay_warnings(report, depth, symbols)
    for w in warnings:
        _say(f"WARNING {w.symbol}: {w.reason}")
    return warnings


def cmd_up(args: argparse.Namespace) -> int:
    state: Path = args.state
    if (why := _refusal(state)) is not None:
        _say(why)
        return 1
    if args.replay and (why := _replay_refusal(args.replay)) is not None:
        _say(why)
        return 2
    if args.detach:
        return _detach(args)
    lock = RunLock(state)
    if not lock.acquire():
        _say(f"refused: depthflow is already running on {state.resolve()}")
        return 1
    stop = StopSignals().install()
    try:
        return _supervise(args, lock, stop)
    finally:
        lock.release()


def _supervise(args: argparse.Namespace, lock: RunLock, stop: StopSignals) -> int:
    """Servers, bootstrap, services; restart what crashes; stop everything once when asked."""
    state: Path = args.state
    symbols = args.symbols.split(",")
    _say(f"state folder {state.resolve()} (supervisor pid {os.getpid()})")
    _say("starting NATS (JetStream), PostgreSQL and Valkey ...")
    t0 = time.monotonic()
    urls, embedded = _servers(state, start=True)
    require_nats_version(urls.nats)
    _say(f"servers up in {time.monotonic() - t0:.1f}s: nats {urls.masked().nats}  postgres "
         f"{urls.masked().postgres}  redis {urls.masked().redis}")
    stack = ServiceStack(state)

    def stop_servers() -> None:
        if embedded and not args.keep_servers:
            EmbeddedServers(state / "servers").stop()
            _say("servers stopped; data kept in the state folder")

    try:
        asyncio.run(bootstrap(urls.nats, args.prefix, args.venue))
        _say("streams MD AGG PEAKS SIGNALS RISK DLQ and KV buckets routes, control ready")
        baseline = asyncio.run(_snapshot(urls, args.prefix, args.venue))
        stack.start(urls, _service_env(args, symbols), on_progress=_say, should_stop=stop)
    except StartInterrupted:
        baseline = Snapshot()
    except Exception as exc:
        _say(f"start failed: {exc}")
        stack.stop()
        stop_servers()
        return 1
    started = time.monotonic()
    if not stop():
        lock.mark_ready()
        _say("pipeline running" + (f" for {args.duration:.0f}s" if args.duration else "")
             + ("; `depthflow down` stops" if args.supervisor else "; Ctrl-C stops"))
    tty = sys.stdout.isatty()
    next_print = 0.0
    while not stop() and not (args.duration and time.monotonic() - started >= args.duration):
        time.sleep(0.5)
        for event in stack.supervise():
            _say(event)
        now = time.monotonic() - started
        if now >= next_print:
            snap = _try_snapshot(urls, args.prefix, args.venue)
            if snap is not None:
                text = render(snap.minus(baseline), symbols, now, stack.restarts)
                print(("\x1b[2J\x1b[H" if tty else "") + text, flush=True)
            next_print = now + (2.0 if tty else 10.0)
    _say(f"{stop.received or 'time is up'}: stopping services (draining) ...")
    restarts = stack.restarts
    codes = stack.stop()
    _say("service exit codes: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    final = _try_snapshot(urls, args.prefix, args.venue)
    stop_servers()
    final = final.minus(baseline) if final is not None else None
    warnings = _replay_outcome(state, final, symbols) if args.replay else []
    if final is not None:
        print("\nfinal summary")
        print(render(final, symbols, time.monotonic() - started, restarts))
        print(final_json(final, restarts, warnings), flush=True)
    return 0 if all(c == 0 for c in codes.values()) and not warnings else 1


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
        _say(f"replaying {', '.join(args.replay)} for {', '.join(symbols)}")
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
                    _say(f"the supervisor exited with {proc.returncode}; see {log_path}")
                    return 1
                if lock.read().get("pid") == proc.pid and lock.read().get("ready"):
                    break
                time.sleep(0.2)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            return 1
    _say(f"running in the background (supervisor pid {proc.pid}, log {log_path});"
         " `depthflow status` shows progress, `depthflow down` stops")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Ask the supervisor to stop (it drains services, then stops servers); else do it here."""
    lock = RunLock(args.state)
    pid = lock.holder_pid()
    if pid is not None:
        _say(f"stopping the supervisor (pid {pid}) ...")
        os.kill(pid, signal.SIGTERM)
        if lock.wait_free(timeout=STOP_BOUND_S) and wait_gone(pid, timeout=10.0):
            _say("stopped")
            return 0
        _say(f"the supervisor did not stop within {STOP_BOUND_S:.0f}s; stopping what it started")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    stack = ServiceStack(args.state)
    stack.load()
    stack.procs = stack.running()  # never signal a pid that is no longer our service
    if stack.procs:
        codes = {**stack.stop(), **stack.exit_codes}
        _say("services stopped: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    EmbeddedServers(args.state / "servers").stop()
    _say("servers stopped; data kept in the state folder")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    pid = RunLock(args.state).holder_pid()
    print(f"  supervisor  {f'running (pid {pid})' if pid else 'not running'}")
    urls, _ = _servers(args.state, start=False)
    stack = ServiceStack(args.state)
    stack.load()
    live = {p.pid for p in stack.running()}
    for p in stack.procs:
        restarts = f"  ({p.restarts} restarts)" if p.restarts else ""
        print(f"  {p.name:<11} {'running' if p.pid in live else 'STOPPED'}{restarts}")
    snap = _try_snapshot(urls, args.prefix, args.venue)
    if snap is None:
        return 1
    print(render(snap, args.symbols.split(","), 0, stack.restarts))
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    urls, _ = _servers(args.state, start=False)
    asyncio.run(bootstrap(urls.nats, args.prefix, args.venue))
    _say("bootstrap done")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    urls, _ = _servers(args.state, start=False)
    state = "HALTED" if args.command == "halt" else "ACTIVE"
    try:
        prev = asyncio.run(set_trading_state(urls.nats, args.prefix, args.venue, state))
    except RefusedCommand as exc:
        _say(f"{args.command} refused: {exc}")
        return 2
    except Exception as exc:  # any failure is told, and the exit code says it
        _say(f"{args.command} failed: {mask_url(str(exc)) or type(exc).__name__}")
        return 1
    _say(f"trading state {prev} -> {state} (venue {args.venue})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    # imported here: matplotlib and plotly take seconds to import, and only this command needs them
    from depthflow.ctl.plot import latest_from_bus, latest_from_replay, render

    symbol = args.symbol.upper()
    if args.until is not None and not args.replay:
        _say("--until needs --replay (live data has no timeline to stop in)")
        return 2
    try:
        if args.replay:
            book, profile, zones = asyncio.run(
                latest_from_replay(args.replay, symbol, args.until, venue=args.venue))
            source = f"replay {args.replay.name}" + (f" +{args.until:g}s" if args.until is not None else "")
        else:
            urls, _ = _servers(args.state, start=False)
            book, profile, zones = asyncio.run(latest_from_bus(urls, args.prefix, args.venue, symbol))
            source = "live"
    except LookupError as exc:
        _say(str(exc))
        return 1
    out: Path = args.out if args.out is not None else args.state / "plots"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(zones.ts_event / 1e9))
    stem = out / f"{symbol}-{'replay' if args.replay else 'live'}-{stamp}"
    render(book, profile, zones, stem.with_suffix(".png"), stem.with_suffix(".html"), source=source)
    print(stem.with_suffix(".png"))
    print(stem.with_suffix(".html"))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="depthflow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state folder (.state)")
    p.add_argument("--prefix", default=os.environ.get("DEPTHFLOW_PREFIX", ""))
    p.add_argument("--venue", default=os.environ.get("DEPTHFLOW_VENUE", "binance"))
    p.add_argument("--symbols", default=os.environ.get("DEPTHFLOW_SYMBOLS", "BTCFDUSD,ETHFDUSD"))
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole pipeline")
    up.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: Ctrl-C)")
    up.add_argument("--speed", type=float, default=1.0, help="generator speed (0: as fast as possible)")
    up.add_argument("--seed", type=int, default=5)
    up.add_argument("--replay", action="append", default=[], metavar="FILE",
                    help="replay recorded files instead of the generator (repeatable; merged by time)")
    up.add_argument("--detach", action="store_true", help="leave it running in the background")
    up.add_argument("--keep-servers", action="store_true", help="do not stop the servers at the end")
    up.add_argument("--supervisor", action="store_true", help=argparse.SUPPRESS)  # what --detach runs
    up.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop services and servers").set_defaults(fn=cmd_down)
    sub.add_parser("status", help="print the summary once").set_defaults(fn=cmd_status)
    sub.add_parser("bootstrap", help="create/update streams and KV").set_defaults(fn=cmd_bootstrap)
    sub.add_parser("halt", help="halt trading").set_defaults(fn=cmd_state)
    sub.add_parser("resume", help="resume trading after a halt").set_defaults(fn=cmd_state)
    plot = sub.add_parser("plot", help="draw book, trade profile and zones (PNG + HTML)")
    plot.add_argument("symbol")
    plot.add_argument("--replay", type=Path, metavar="FILE", help="from a recorded file, not the live bus")
    plot.add_argument("--until", type=float, metavar="SECONDS",
                      help="with --replay: stop this many seconds of recorded time after the first frame")
    plot.add_argument("--out", type=Path, metavar="DIR", help="output folder (<state>/plots)")
    plot.set_defaults(fn=cmd_plot)
    return p


def main() -> None:
    args = parser().parse_args()
    raise SystemExit(args.fn(args))


if __name__ == "__main__":
    main()

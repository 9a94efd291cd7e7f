"""``depthflow``: the operator command.

    depthflow up [--duration S] [--speed X] [--detach]   servers + bootstrap + five services + summary
    depthflow down                                      stop services, then servers; nothing is lost
    depthflow status                                    the live summary once
    depthflow bootstrap                                 create/update streams and KV buckets
    depthflow halt | resume                             set the trading state (audited in the KV history)
    depthflow plot SYMBOL [--replay FILE] [--until S]   PNG + HTML of book, trade profile and zones
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from depthflow.common.bus import Bus
from depthflow.common.devstack import (
    EmbeddedServers,
    ServerUrls,
    require_nats_version,
    servers_from_env,
)
from depthflow.ctl.control import bootstrap, set_trading_state
from depthflow.ctl.stack import ServiceStack
from depthflow.ctl.summary import Snapshot, collect, final_json, render

DEFAULT_STATE = Path(os.environ.get("DEPTHFLOW_STATE_DIR", ".state"))


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
    bus = await Bus.connect(urls.nats, prefix, name="depthflow-summary")
    try:
        return await collect(bus, urls.postgres, venue)
    finally:
        await bus.close()


def cmd_up(args: argparse.Namespace) -> int:
    state: Path = args.state
    symbols = args.symbols.split(",")
    _say(f"state folder {state.resolve()}")
    _say("starting NATS (JetStream), PostgreSQL and Valkey ...")
    t0 = time.monotonic()
    urls, embedded = _servers(state, start=True)
    require_nats_version(urls.nats)
    _say(f"servers up in {time.monotonic() - t0:.1f}s: nats {urls.nats}  postgres {urls.postgres}"
         f"  redis {urls.redis}")
    asyncio.run(bootstrap(urls.nats, args.prefix, args.venue))
    _say("streams MD AGG PEAKS SIGNALS RISK DLQ and KV buckets routes, control ready")
    env = {
        "DEPTHFLOW_PREFIX": args.prefix,
        "DEPTHFLOW_VENUE": args.venue,
        "DEPTHFLOW_SYMBOLS": ",".join(symbols),
        "DEPTHFLOW_COLLECTOR_SPEED": str(args.speed),
        "DEPTHFLOW_COLLECTOR_SEED": str(args.seed),
    }
    if args.replay:
        env["DEPTHFLOW_COLLECTOR_SOURCE"] = "replay"
        env["DEPTHFLOW_COLLECTOR_REPLAY_PATHS"] = ",".join(str(Path(p).resolve()) for p in args.replay)
        _say(f"replaying {', '.join(args.replay)} for {', '.join(symbols)}")
    stack = ServiceStack(state)
    baseline = asyncio.run(_snapshot(urls, args.prefix, args.venue))
    try:
        stack.start(urls, env, on_progress=_say)
    except RuntimeError as exc:
        _say(f"start failed: {exc}")
        stack.stop()
        if embedded:
            EmbeddedServers(state / "servers").stop()
        return 1
    if args.detach:
        _say("running in the background; `depthflow status` shows progress, `depthflow down` stops")
        return 0
    _say("pipeline running" + (f" for {args.duration:.0f}s" if args.duration else "; Ctrl-C stops"))
    started = time.monotonic()
    tty = sys.stdout.isatty()
    next_print = 0.0
    source_done = False
    try:
        while not args.duration or time.monotonic() - started < args.duration:
            time.sleep(0.5)
            dead = [n for n, ok in stack.alive().items() if not ok]
            if dead == ["collector"] and stack.exit_codes["collector"] == 0:
                if not source_done:
                    _say("the collector finished its source; the rest of the pipeline runs on")
                    source_done = True
            elif dead:
                _say(f"service(s) exited unexpectedly: {', '.join(dead)}; see {state / 'logs'}")
                break
            now = time.monotonic() - started
            if now >= next_print:
                snap = asyncio.run(_snapshot(urls, args.prefix, args.venue)).minus(baseline)
                text = render(snap, symbols, now)
                print(("\x1b[2J\x1b[H" if tty else "") + text, flush=True)
                next_print = now + (2.0 if tty else 10.0)
    except KeyboardInterrupt:
        pass
    _say("stopping services (draining) ...")
    codes = {**stack.stop(), **stack.exit_codes}
    _say("service exit codes: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    final = asyncio.run(_snapshot(urls, args.prefix, args.venue)).minus(baseline)
    if embedded and not args.keep_servers:
        EmbeddedServers(state / "servers").stop()
        _say("servers stopped; data kept in the state folder")
    print("\nfinal summary")
    print(render(final, symbols, time.monotonic() - started))
    print(final_json(final), flush=True)
    return 0 if all(c == 0 for c in codes.values()) else 1


def cmd_down(args: argparse.Namespace) -> int:
    stack = ServiceStack(args.state)
    if stack.load():
        codes = {**stack.stop(), **stack.exit_codes}
        _say("services stopped: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    EmbeddedServers(args.state / "servers").stop()
    _say("servers stopped; data kept in the state folder")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    urls, _ = _servers(args.state, start=False)
    stack = ServiceStack(args.state)
    stack.load()
    for name, ok in stack.alive().items():
        print(f"  {name:<11} {'running' if ok else 'STOPPED'}")
    snap = asyncio.run(_snapshot(urls, args.prefix, args.venue))
    print(render(snap, args.symbols.split(","), 0))
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    urls, _ = _servers(args.state, start=False)
    asyncio.run(bootstrap(urls.nats, args.prefix, args.venue))
    _say("bootstrap done")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    urls, _ = _servers(args.state, start=False)
    state = "HALTED" if args.command == "halt" else "ACTIVE"
    prev = asyncio.run(set_trading_state(urls.nats, args.prefix, args.venue, state))
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
                    help="replay a recorded file instead of the generator (repeatable)")
    up.add_argument("--detach", action="store_true", help="leave it running in the background")
    up.add_argument("--keep-servers", action="store_true", help="do not stop the servers at the end")
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

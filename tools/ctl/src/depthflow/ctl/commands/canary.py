"""``depthflow canary status|route|promote|rollback SERVICE [SYMBOLS]``, ``depthflow scale SERVICE N``
and the ``up --canary`` options.

Exit codes: 0 done; 2 refused before anything changed (unknown service or symbol, no canary, no
running ``up``); 1 a step failed (the message says where things stand: nothing is lost, the
route says who owns what).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from depthflow.common.bus import Bus
from depthflow.common.redact import mask_url
from depthflow.common.routing import CANARY, STABLE
from depthflow.ctl import canary
from depthflow.ctl.canary import Failed, Refused, SupervisorDeployer, check_service, check_symbols
from depthflow.ctl.commands.console import say
from depthflow.ctl.commands.servers import server_urls
from depthflow.ctl.guard import CanaryGuard
from depthflow.ctl.lanes import LaneView, on_bus, view
from depthflow.ctl.stack import ServiceStack
from depthflow.ctl.supervisor import RunLock

T = TypeVar("T")

#: The settings a canary differs by when ``--canary-set`` names none: enough to tell the lanes
#: apart in a demo (a smaller fetch batch), harmless to the results.
DEFAULT_CANARY_SETTING = "RUNTIME__FETCH_BATCH", "32"


def add_up_options(up: argparse.ArgumentParser) -> None:
    up.add_argument("--canary", dest="canary_spec", metavar="SERVICE[:SYMBOLS]",
                    help="also run a canary lane of SERVICE and route SYMBOLS (comma-separated) to it")
    up.add_argument("--canary-set", action="append", default=[], metavar="DEPTHFLOW_NAME=VALUE",
                    help="a setting of the canary's processes only (repeatable; default "
                         f"DEPTHFLOW_<SERVICE>_{DEFAULT_CANARY_SETTING[0]}={DEFAULT_CANARY_SETTING[1]})")
    g = CanaryGuard()
    for name, default in msgspec.structs.asdict(g).items():
        up.add_argument(f"--canary-{name.replace('_', '-')}", dest=f"guard_{name}", default=default,
                        type=type(default), metavar="X",
                        help=f"automatic rollback: {name} ({default:g})")


def canary_spec(spec: str | None, sets: list[str], symbols: list[str]
                ) -> tuple[str, list[str], dict[str, str]] | None:
    """``SERVICE[:SYMBOLS]`` and ``--canary-set`` values -> (service, symbols, settings)."""
    if not spec:
        if sets:
            raise Refused("--canary-set needs --canary")
        return None
    service, _, names = spec.partition(":")
    check_service(service)
    moved = [s for s in names.split(",") if s]
    if moved:
        check_symbols(moved, symbols)
    env = {}
    for item in sets:
        name, eq, value = item.partition("=")
        if not eq or not name.startswith("DEPTHFLOW_"):
            raise Refused(f"--canary-set {item!r}: expected DEPTHFLOW_NAME=VALUE")
        env[name] = value
    if not env:
        key, value = DEFAULT_CANARY_SETTING
        env[f"DEPTHFLOW_{service.upper().replace('-', '_')}_{key}"] = value
    return service, moved, env


def guard_settings(args: argparse.Namespace) -> CanaryGuard:
    fields = {name: getattr(args, f"guard_{name}") for name in msgspec.structs.asdict(CanaryGuard())}
    try:
        return msgspec.convert(fields, CanaryGuard)
    except msgspec.ValidationError as exc:
        flag = str(exc).split("`$.", 1)[-1].rstrip("`")
        raise Refused(f"--canary-{flag.replace('_', '-')}: {exc}") from None


def canary_argv(args: argparse.Namespace) -> list[str]:
    """The canary options again, for the detached supervisor's command line."""
    out = ["--canary", args.canary_spec] if args.canary_spec else []
    out += [a for s in args.canary_set for a in ("--canary-set", s)]
    for name, value in msgspec.structs.asdict(args.guard).items():
        out += [f"--canary-{name.replace('_', '-')}", str(value)]
    return out


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("canary", help="route symbols to a service's canary lane, promote it or roll it back")
    c.add_argument("action", choices=("status", "route", "promote", "rollback"))
    c.add_argument("service")
    c.add_argument("symbols", nargs="?", default="", help="route: comma-separated symbols to move")
    c.set_defaults(fn=cmd_canary)
    s = sub.add_parser("scale", help="run N replicas of a service's stable lane")
    s.add_argument("service")
    s.add_argument("replicas", type=int)
    s.set_defaults(fn=cmd_scale)


def _run_symbols(args: argparse.Namespace) -> list[str]:
    """The running ``up``'s symbols (its record), else ``--symbols``."""
    got = RunLock(args.state).read().get("symbols")
    return list(got) if isinstance(got, list) else args.symbols.split(",")


def _on_bus(args: argparse.Namespace, fn: Callable[[Bus], Awaitable[T]]) -> T:
    urls, _ = server_urls(args.state, start=False)
    return on_bus(urls.nats, args.prefix, fn)


def _guarded(what: str, fn: Callable[[], object]) -> int:
    try:
        fn()
    except Refused as exc:
        say(f"{what} refused: {exc}")
        return 2
    except Failed as exc:
        say(f"{what} failed: {exc}")
        return 1
    except (OSError, RuntimeError, TimeoutError) as exc:
        say(f"{what} failed: {mask_url(str(exc)) or type(exc).__name__}")
        return 1
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    symbols = _run_symbols(args)
    what = f"canary {args.action} {args.service}"

    def act() -> None:
        check_service(args.service)
        if args.action == "status":
            print_status(_on_bus(args, lambda bus: view(bus, args.service, (STABLE, CANARY))),
                         symbols, args.state)
            return
        deployer = SupervisorDeployer(args.state)
        if args.action == "route":
            moved = [s for s in args.symbols.split(",") if s]
            fences = _on_bus(args, lambda bus: canary.route(bus, deployer, args.service, moved, symbols))
            say(f"{args.service}: {', '.join(moved)} routed to the canary at fences {fences}")
        elif args.action == "rollback":
            _on_bus(args, lambda bus: canary.rollback(bus, deployer, args.service, say))
        else:
            _on_bus(args, lambda bus: canary.promote(bus, deployer, args.service, symbols, say))

    return _guarded(what, act)


def cmd_scale(args: argparse.Namespace) -> int:
    def act() -> None:
        check_service(args.service)
        deployer = SupervisorDeployer(args.state)
        asyncio.run(canary.scale(deployer, args.service, args.replicas))
        say(f"{args.service}: {args.replicas} stable replica(s) running")

    return _guarded(f"scale {args.service}", act)


def print_status(v: LaneView, symbols: list[str], state: Path) -> None:
    """The route (history and current owners), each lane's durables, the confirmations and the
    processes of the service."""
    print(f"{v.service}: route revision {v.revision or '-'}")
    for lane, owned in v.owners(symbols).items():
        print(f"  {lane:<7} owns {', '.join(owned)}")
    for i, a in enumerate(v.route.history if v.route else ()):
        fences = " ".join(f"{k}>{f}" for k, f in sorted(a.fences.items()))
        moved = ", ".join(f"{s}->{lane}" for s, lane in a.lanes.items()) or "all stable"
        seats = "".join(f"; {lane} replicas {','.join(rs)}" for lane, rs in sorted(a.replicas.items()))
        print(f"  history {i + 1}: from {fences}: {moved}{seats}")
    for lane, cursors in v.cursors.items():
        for c in cursors:
            print(f"  {lane:<7} {c.durable} on {c.stream}: delivered {c.delivered}  ack floor {c.ack_floor}"
                  f"  pending {c.pending}  ack pending {c.ack_pending}{'  PAUSED' if c.paused else ''}")
        if not cursors:
            print(f"  {lane:<7} no durable (not running)")
    for replica, rev in sorted(v.confirmations.items()):
        behind = "" if rev >= v.revision else f"  (behind revision {v.revision})"
        print(f"  confirmed {replica}: revision {rev}{behind}")
    stack = ServiceStack(state)
    stack.load()
    live = {p.pid for p in stack.running()}
    for p in stack.procs:
        if p.name == v.service:
            print(f"  process {p.key}: pid {p.pid} {'running' if p.pid in live else 'STOPPED'}"
                  f"  settings {dict(p.env) or '{}'}")

"""The operator's canary and scale sequences: route, rollback, promote, scale.

Each sequence moves symbols only with :func:`routing.switch` (pause, fence, compare-and-set,
confirmations), and changes processes only through a :class:`Deployer` (the supervisor's
reconcile, directly or through the topology file), so nothing is handled twice or lost:

- **route**: move SYMBOLS to the canary lane at a fence.
- **rollback**: move every canary symbol back to stable; wait until stable has handled each
  one's first message past that fence (it waited for the canary's hand-off of the symbol's state
  before); stop the canary and retire its durables and confirmations.
- **promote**: move every symbol to the canary; wait until the canary has taken each over the
  same way (stable has handed every state over and idles); restart stable's processes with the
  canary's settings; move every symbol back to the (new) stable; wait until stable has taken
  each over; stop and retire the canary. Why not rename the canary into stable: the lane is the durable's name
  and the checkpoint's key, so a process cannot change lane without its cursor and state; the
  two switches carry both over exactly at fences instead, while the messages keep flowing.
- **scale**: set the stable lane's replica count (the runtime splits the symbols over them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from depthflow.common.bus import Bus
from depthflow.common.routing import CANARY, STABLE, RouteConflict, RouteStore, SwitchFailed, switch
from depthflow.ctl.control import SERVICES
from depthflow.ctl.lanes import cursors, prepare, retire, wait_taken_over
from depthflow.ctl.stack import ServiceProcess, ServiceStack
from depthflow.ctl.supervisor import RunLock
from depthflow.ctl.topology import Lane, Shape, Topology, TopologyFile

#: How long a sequence waits for a lane to pass a fence or for processes to be ready.
STEP_S = 120.0
CANARY_HOLDS = "the canary may still hold symbols' state; it keeps running"
STABLE_HOLDS = "stable may still hold symbols' state; the canary owns every symbol"


class Refused(Exception):
    """The command cannot run as asked (unknown service or symbol, no canary): exit 2."""


class Failed(Exception):
    """A step did not complete; the message says where things stand: exit 1."""


class Deployer(Protocol):
    """Changes the processes of one service and returns once they run (or raises Failed)."""

    def topology(self) -> Topology: ...

    async def deploy(self, service: str, shape: Shape) -> None: ...


def check_service(service: str) -> None:
    if service not in SERVICES:
        raise Refused(f"unknown service {service!r} (services: {', '.join(SERVICES)})")
    if service == "collector":
        raise Refused("the collector has no input to route: it cannot run lanes or replicas")


def check_symbols(symbols: Sequence[str], known: Sequence[str]) -> None:
    unknown = sorted(set(symbols) - set(known))
    if unknown:
        raise Refused(f"unknown symbol(s) {', '.join(unknown)} (this run's symbols: {', '.join(known)})")
    if not symbols:
        raise Refused("name at least one symbol")


async def _canary_running(bus: Bus, deployer: Deployer, service: str) -> Shape:
    shape = deployer.topology().shape(service)
    if shape.canary is None or not await cursors(bus, service, CANARY):
        raise Refused(f"no canary of {service} is running (`depthflow up --canary {service}` starts one)")
    return shape


async def _switch(bus: Bus, service: str, moves: dict[str, str]) -> dict[str, int]:
    try:
        route, _ = await switch(bus, service, moves)
    except (SwitchFailed, RouteConflict) as exc:
        raise Failed(str(exc)) from None
    return route.history[-1].fences


async def route(bus: Bus, deployer: Deployer, service: str, symbols: Sequence[str],
                known: Sequence[str]) -> dict[str, int]:
    """Move ``symbols`` to the canary; return the fences of the switch."""
    check_service(service)
    check_symbols(symbols, known)
    await _canary_running(bus, deployer, service)
    return await _switch(bus, service, dict.fromkeys(symbols, CANARY))


async def _canary_symbols(bus: Bus, service: str) -> list[str]:
    current, _ = await (await RouteStore.open(bus, service)).read()
    return sorted(s for s, lane in (current.current() if current else {}).items() if lane == CANARY)


async def _taken(bus: Bus, service: str, lane: str, symbols: list[str], fences: dict[str, int],
                 step: str) -> None:
    try:
        await wait_taken_over(bus, service, lane, symbols, fences, STEP_S)
    except TimeoutError as exc:
        raise Failed(f"{step}: {exc}") from None


async def rollback(bus: Bus, deployer: Deployer, service: str, say: Callable[[str], None]) -> list[str]:
    """Move the canary's symbols back to stable and stop the canary; return the symbols moved."""
    check_service(service)
    shape = await _canary_running(bus, deployer, service)
    moved = await _canary_symbols(bus, service)
    if moved:
        fences = await _switch(bus, service, dict.fromkeys(moved, STABLE))
        say(f"{service}: {', '.join(moved)} back to stable at fences {fences}")
        await _taken(bus, service, STABLE, moved, fences, CANARY_HOLDS)
    await deployer.deploy(service, Shape(stable=shape.stable))
    say(f"{service}: canary stopped and retired")
    return moved


async def promote(bus: Bus, deployer: Deployer, service: str, symbols: Sequence[str],
                  say: Callable[[str], None]) -> None:
    """Make the canary's settings stable's, moving every symbol at fences (see module doc)."""
    check_service(service)
    shape = await _canary_running(bus, deployer, service)
    assert shape.canary is not None
    every = sorted(set(symbols) | set(await _canary_symbols(bus, service)))
    fences = await _switch(bus, service, dict.fromkeys(every, CANARY))
    say(f"{service}: every symbol to the canary at fences {fences}")
    await _taken(bus, service, CANARY, every, fences, STABLE_HOLDS)
    new_stable = Lane(replicas=shape.stable.replicas, env=shape.canary.env)
    await deployer.deploy(service, Shape(stable=new_stable, canary=shape.canary))
    say(f"{service}: stable restarted with the canary's settings {shape.canary.env or '{}'}")
    fences = await _switch(bus, service, dict.fromkeys(every, STABLE))
    say(f"{service}: every symbol back to stable at fences {fences}")
    await _taken(bus, service, STABLE, every, fences, CANARY_HOLDS)
    await deployer.deploy(service, Shape(stable=new_stable))
    say(f"{service}: promoted; the canary is stopped and retired")


async def scale(deployer: Deployer, service: str, replicas: int) -> None:
    check_service(service)
    shape = deployer.topology().shape(service)
    try:
        lane = Lane(replicas=replicas, env=shape.stable.env)
    except Exception as exc:
        raise Refused(str(exc)) from None
    await deployer.deploy(service, Shape(stable=lane, canary=shape.canary))


async def retire_stopped(bus: Bus, topology: Topology, stopped: list[ServiceProcess]) -> None:
    """Retire on the bus what the stopped processes leave: a lane no longer wanted (its
    durables and confirmations), or a replica no longer wanted (its confirmation)."""
    wanted = {(w.name, w.lane, w.replica) for w in topology.wanted()}
    lanes = {(name, lane) for name, lane, _ in wanted}
    gone: dict[tuple[str, str], list[str]] = {}
    for p in stopped:
        if (p.name, p.lane, p.replica) not in wanted:
            gone.setdefault((p.name, p.lane), []).append(p.replica)
    for (name, lane), replicas in gone.items():
        await retire(bus, name, lane, None if (name, lane) not in lanes else replicas)


class SupervisorDeployer:
    """For a command: write the wanted shape to the topology file and wait until the running
    ``depthflow up`` has made it so: it says it applied the file (the processes stopped have
    exited and their lanes are retired on the bus) and its record of processes matches, each
    ready. The record alone changes before a process stopped has drained."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.file = TopologyFile(state_dir)
        if RunLock(state_dir).holder_pid() is None:
            raise Refused(f"depthflow is not running on {state_dir.resolve()} (`depthflow up` first)")

    def topology(self) -> Topology:
        return self.file.read()

    async def deploy(self, service: str, shape: Shape) -> None:
        with self.file.change() as box:
            box[0] = box[0].with_shape(service, shape)
            want = {(w.key, w.env) for w in box[0].wanted((service,))}
        stamp = self.file.stamp()
        deadline = time.monotonic() + STEP_S
        while True:
            applied = self.file.applied()
            if applied.stamp >= stamp:
                if applied.error is not None:
                    raise Failed(f"the supervisor could not run {service} as asked: {applied.error}")
                procs = ServiceStack(self.state_dir).load()
                have = {(p.key, p.env) for p in procs if p.name == service and p.ready}
                if have == want and len([p for p in procs if p.name == service]) == len(want):
                    return
            if time.monotonic() >= deadline or RunLock(self.state_dir).holder_pid() is None:
                raise Failed(f"the supervisor did not run {service} as asked within {STEP_S:g}s; "
                             f"see {self.state_dir.resolve() / 'logs'}")
            await asyncio.sleep(0.2)


class StackDeployer:
    """For the supervisor itself (``up --canary``, automatic rollback): reconcile at once."""

    def __init__(self, bus: Bus, stack: ServiceStack, file: TopologyFile, say: Callable[[str], None],
                 before_stop: Callable[[ServiceProcess], None] = lambda _: None) -> None:
        self.bus, self.stack, self.file, self.say = bus, stack, file, say
        self.before_stop = before_stop

    def topology(self) -> Topology:
        return self.file.read()

    async def deploy(self, service: str, shape: Shape) -> None:
        with self.file.change() as box:
            box[0] = box[0].with_shape(service, shape)
            topology = box[0]
        await deploy_now(self.bus, self.stack, topology, self.say, self.before_stop)


async def deploy_now(bus: Bus, stack: ServiceStack, topology: Topology, say: Callable[[str], None],
                     before_stop: Callable[[ServiceProcess], None] = lambda _: None) -> None:
    """Reconcile the services ``stack`` runs with ``topology`` (a new canary's durables made
    first, reading from now on) and retire on the bus what left."""
    running = {(p.name, p.lane) for p in stack.procs}
    wanted = topology.wanted(tuple(dict.fromkeys(p.name for p in stack.procs)))
    for w in wanted:
        if w.lane != STABLE and (w.name, w.lane) not in running:
            await prepare(bus, w.name, w.lane)
    try:
        stopped = await asyncio.to_thread(stack.reconcile, wanted, say, 60.0, before_stop)
    except RuntimeError as exc:
        raise Failed(str(exc)) from None
    await retire_stopped(bus, topology, stopped)

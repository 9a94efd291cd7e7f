"""A service's lanes as the bus sees them: their durables, the route, the confirmations; and the
bus-side steps of starting and retiring a lane (the process side is the supervisor's).

Why a lane is retired on the bus when its processes stop: a durable nobody reads keeps counting
pending messages (a finished replay would never look drained) and its replicas' confirmations
stay behind at an old revision (every later switch would wait for them in vain).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, NotFoundError

from depthflow.common.bus import Bus
from depthflow.common.kvkeys import live_entries
from depthflow.common.routing import STABLE, Route, RouteStore, ack_key
from depthflow.common.subjects import STREAM_DOMAINS

T = TypeVar("T")


class Cursor(msgspec.Struct, frozen=True):
    """One lane's durable on one input stream."""

    stream: str  # MD, AGG, ...
    durable: str
    delivered: int  # highest stream sequence delivered
    ack_floor: int  # every sequence up to here is acknowledged
    pending: int  # in the stream, not delivered yet
    ack_pending: int  # delivered, not acknowledged yet
    paused: bool


class LaneView(msgspec.Struct, frozen=True):
    """What ``depthflow canary status`` shows of one service."""

    service: str
    route: Route | None
    revision: int
    cursors: dict[str, list[Cursor]]  # lane -> its durables
    confirmations: dict[str, int]  # <lane>.<replica> -> revision applied

    def owners(self, symbols: list[str]) -> dict[str, list[str]]:
        """Lane -> the symbols it owns now (stable: every symbol the route does not move)."""
        current = self.route.current() if self.route else {}
        out: dict[str, list[str]] = {}
        for sym in sorted(set(symbols) | set(current)):
            out.setdefault(current.get(sym, STABLE), []).append(sym)
        return out


def on_bus(nats_url: str, prefix: str, fn: Callable[[Bus], Awaitable[T]], name: str = "depthflow-ctl") -> T:
    """Run ``fn`` with a bus connected for it (within 5 s), from synchronous code."""

    async def go() -> T:
        bus = await Bus.connect(nats_url, prefix, name=name, within_s=5.0)
        try:
            return await fn(bus)
        finally:
            await bus.close()

    return asyncio.run(go())


def of_lane(name: str, service: str, lane: str) -> bool:
    """Whether durable ``name`` is a replica's of ``lane`` (``<service>-<lane>[-<replica>]``)."""
    return name == f"{service}-{lane}" or name.startswith(f"{service}-{lane}-")


async def cursors(bus: Bus, service: str, lane: str) -> list[Cursor]:
    """The durables of every replica of the lane, on every stream that has one."""
    out = []
    for name in STREAM_DOMAINS:
        try:
            infos = await bus.js.consumers_info(bus.subjects.stream(name))
        except NotFoundError:
            continue
        for info in infos:
            if of_lane(info.name, service, lane):
                out.append(Cursor(
                    stream=name, durable=info.name,
                    delivered=info.delivered.stream_seq or 0 if info.delivered else 0,
                    ack_floor=info.ack_floor.stream_seq or 0 if info.ack_floor else 0,
                    pending=info.num_pending or 0, ack_pending=info.num_ack_pending or 0,
                    paused=bool(info.paused)))
    return out


async def view(bus: Bus, service: str, lanes: tuple[str, ...]) -> LaneView:
    store = await RouteStore.open(bus, service)
    route, revision = await store.read()
    return LaneView(service=service, route=route, revision=revision,
                    cursors={lane: await cursors(bus, service, lane) for lane in lanes},
                    confirmations=await _confirmations(store, route, lanes))


async def _confirmations(store: RouteStore, route: Route | None, lanes: tuple[str, ...]) -> dict[str, int]:
    """Every lane's confirmations: the bucket's listing, and each replica the route names read
    by its key. Why both: a listing taken while replicas' heartbeats are written to the same
    bucket was seen to leave out a confirmation that a read by key finds."""
    out = await store.confirmations(lanes)
    sets = route.current_replicas() if route is not None else {}
    for lane in lanes:
        for replica in sets.get(lane, ["0"]):
            seat = f"{lane}.{replica}"
            if seat not in out and (rev := await store.confirmation(seat)):
                out[seat] = rev
    return out


async def _first_after(bus: Bus, stream: str, filters: list[str], symbol: str, fence: int) -> int | None:
    """The sequence of ``symbol``'s first message past ``fence`` among ``filters`` (whose last
    token is the symbol's, as in every market subject), or None before one comes."""
    seqs = []
    for f in filters:
        with contextlib.suppress(NotFoundError):
            seqs.append((await bus.js.get_msg(stream, fence + 1, subject=f"{f.rsplit('.', 1)[0]}.{symbol}",
                                              next=True)).seq or 0)
    return min(seqs, default=None)


async def wait_taken_over(bus: Bus, service: str, lane: str, symbols: list[str], fences: Mapping[str, int],
                          within_s: float, poll_s: float = 0.2) -> None:
    """Wait until every replica of ``lane`` has acknowledged each of ``symbols``' first message
    past each stream's fence.

    Why: the lane that lost the symbols hands their state over (or, without checkpoints, lets
    its ack floor reach the fence) on its own time; the gaining seat handles the symbol's first
    message past the fence only after that. Once every replica of the gaining lane is past it,
    the losing lane owes nothing and may stop (stopped before, the gainer would wait forever).
    Raises ``TimeoutError`` naming what is still awaited (an idle symbol: nothing came yet).
    """
    deadline = time.monotonic() + within_s
    while True:
        waiting = None
        for name, fence in fences.items():
            stream = bus.subjects.stream(name)
            mine = [c for c in await bus.js.consumers_info(stream) if of_lane(c.name, service, lane)]
            for c in mine:
                filters = c.config.filter_subjects or [c.config.filter_subject or ">"]
                floor = c.ack_floor.stream_seq if c.ack_floor else 0
                for sym in symbols:
                    first = await _first_after(bus, stream, filters, sym, fence)
                    if first is None or (floor or 0) < first:
                        waiting = f"{c.name} to handle {sym}'s first message past {fence} on {name}"
        if waiting is None:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {within_s:g}s for {waiting} (is anything flowing?)")
        await asyncio.sleep(poll_s)


async def prepare(bus: Bus, service: str, lane: str) -> list[str]:
    """Create ``lane``'s durables, reading from now on, where missing; return those created.

    Why here and not left to the lane's first start: the route keeps the history of earlier
    canaries, and a lane created by the runtime starts where the route first gave it a symbol,
    which for a second canary is the first one's old fence: it would handle old messages again.
    Each durable copies the stable lane's config (filters never empty) and starts at new ones.
    """
    made = []
    for name in STREAM_DOMAINS:
        stream = bus.subjects.stream(name)
        try:
            base = (await bus.js.consumer_info(stream, f"{service}-{STABLE}")).config
        except NotFoundError:
            continue
        with contextlib.suppress(NotFoundError):
            await bus.js.consumer_info(stream, f"{service}-{lane}")
            continue
        durable = f"{service}-{lane}"
        cfg = dataclasses.replace(base, name=durable, durable_name=durable, deliver_policy=DeliverPolicy.NEW,
                                  opt_start_seq=None, opt_start_time=None, pause_until=None)
        await bus.js.add_consumer(stream, cfg)
        made.append(name)
    return made


async def retire(bus: Bus, service: str, lane: str, replicas: list[str] | None = None) -> None:
    """Remove the confirmations of ``replicas`` of ``lane`` (None: of all of them, and the lane's
    durables too: the lane is gone)."""
    store = await RouteStore.open(bus, service)
    if replicas is None:
        for c in await cursors(bus, service, lane):
            with contextlib.suppress(NotFoundError):
                await bus.js.delete_consumer(bus.subjects.stream(c.stream), c.durable)
        replicas = [k.rsplit(".", 1)[1] for k in await live_entries(store.kv, f"{service}.{lane}.")]
    for replica in replicas or []:
        with contextlib.suppress(KeyNotFoundError, NotFoundError):
            await store.kv.delete(ack_key(service, lane, replica))

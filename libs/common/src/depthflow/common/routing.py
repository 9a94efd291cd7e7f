"""Canary lanes with a sequence fence (ARCHITECTURE §5): who handles which input message.

Each service runs lane ``stable`` and optionally other lanes (``canary``). Every lane reads the
whole input stream with its own durable consumer; the owner of a message is a pure function of
``(symbol, stream sequence, route history)`` (:func:`owner`), so both lanes decide alike, a
redelivery resolves to the same lane as the first delivery, and the non-owner acks and skips.

**The route** of a service is one value in the ``routes`` KV bucket, key ``<service>``: a
versioned :class:`Route` whose ``history`` is a list of :class:`Assignment` s. An assignment
holds the full symbol → lane map (a symbol absent from it belongs to ``stable``) and, per input
stream of the service, its **fence**: the assignment applies to that stream's messages with
sequence ``> fence`` and never before. Why a fence per stream: a service may read several
streams (risk reads SIGNALS and AGG), whose sequences are unrelated; one switch fences them all
at once. A stream an assignment has no fence for is not affected by it. Why the whole map in
each entry (not a delta): an entry alone says who owns what, so :func:`owner` is one lookup.
No route (no key, or an empty history) means ``stable`` owns every message: today's behaviour.

**The switch** (:func:`switch`): pause every lane's durable of the service (nats-server ≥ 2.11),
take per stream the fence ``F = max(delivered.stream_seq)`` over the lanes (after the pause
nothing above ``F`` has been delivered to any lane), write the new history with a
compare-and-set on the KV revision (two operators cannot both write), wait until every replica
confirmed the revision (each writes ``<service>.<lane>.<replica>`` = the revision it applied),
then resume. A replica that does not confirm in time gets the route written back as it was (no
message above the fence was delivered meanwhile, so nobody acted on the new one) and the switch
fails; the consumers are resumed in any case (their pause also expires by itself).

Not here yet (later slices of issue 11): the ``depthflow canary`` commands, replicas of one lane
(rendezvous assignment, presence with liveness), automatic rollback, pruning old history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
import nats.errors
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from depthflow.common.bus import Bus
from depthflow.common.subjects import STREAM_DOMAINS

log = logging.getLogger("depthflow.routing")

STABLE = "stable"
CANARY = "canary"
ROUTE_VERSION = 1

_Token = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")]
_Seq = Annotated[int, msgspec.Meta(ge=0)]

#: One stream's view of a route: ``(fence, symbol -> lane)`` entries, in any order.
History = Sequence[tuple[int, Mapping[str, str]]]


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Who owns which symbol, from each input stream's fence on (``seq > fence``)."""

    fences: dict[_Token, _Seq]  # input stream (``MD``, ``AGG``, ...) -> fence sequence
    lanes: dict[_Token, _Token] = {}  # symbol -> lane; absent = stable

    def __post_init__(self) -> None:
        if not self.fences:
            raise ValueError("an assignment needs a fence for at least one stream")


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """The routing of one service: the history of its assignments (the ``routes`` KV value)."""

    v: int = ROUTE_VERSION
    service: _Token
    history: tuple[Assignment, ...] = ()

    def __post_init__(self) -> None:
        if self.v != ROUTE_VERSION:
            raise ValueError(f"route version {self.v} is not readable here (reads {ROUTE_VERSION})")

    def for_stream(self, stream: str) -> tuple[tuple[int, Mapping[str, str]], ...]:
        """Return the history as seen by input ``stream`` (entries without its fence left out),
        ordered by fence, ties kept in writing order (a later entry at the same fence wins)."""
        entries = [(a.fences[stream], i, a.lanes) for i, a in enumerate(self.history)
                   if stream in a.fences]
        entries.sort(key=lambda e: (e[0], e[1]))
        return tuple((f, lanes) for f, _, lanes in entries)

    def current(self) -> dict[str, str]:
        """Return the latest symbol -> lane map (empty: stable owns all)."""
        return dict(self.history[-1].lanes) if self.history else {}


def owner(symbol: str, stream_seq: int, history: History) -> str:
    """Return the lane that handles ``symbol``'s message at ``stream_seq``.

    The entry with the highest fence below ``stream_seq`` decides (a later entry wins a tie);
    without one, ``stable``. Pure: every lane and every redelivery computes the same answer.
    """
    best: Mapping[str, str] | None = None
    best_fence = -1
    for fence, lanes in history:
        # ">=" lets a later entry at the same fence win when ``history`` is in writing order
        if fence < stream_seq and fence >= best_fence:
            best, best_fence = lanes, fence
    return STABLE if best is None else best.get(symbol, STABLE)


def transfers(symbol: str, history: History) -> list[tuple[int, str, str]]:
    """Return ``(fence, from_lane, to_lane)`` for each change of ``symbol``'s owner, ascending.

    The state of a symbol moves with it (ARCHITECTURE §5): at each transfer the lane it leaves
    hands over its state as of the fence, and the lane it joins takes it before handling the
    symbol's first message past the fence.
    """
    by_fence: dict[int, Mapping[str, str]] = {}
    for fence, lanes in history:  # a later entry at the same fence wins, as in owner()
        by_fence[fence] = lanes
    out, prev = [], STABLE
    for fence in sorted(by_fence):
        lane = by_fence[fence].get(symbol, STABLE)
        if lane != prev:
            out.append((fence, prev, lane))
            prev = lane
    return out


def acquired(symbol: str, stream_seq: int, history: History) -> tuple[int, str] | None:
    """Return ``(fence, previous lane)`` of the transfer that gave ``symbol``'s message at
    ``stream_seq`` its owner, or None when its owner has held the symbol from the start."""
    last = None
    for fence, frm, _ in transfers(symbol, history):
        if fence >= stream_seq:
            break
        last = (fence, frm)
    return last


def losses(lane: str, history: History) -> list[tuple[int, str]]:
    """Return ``(fence, symbol)`` for every transfer away from ``lane``, ascending."""
    symbols = {s for _, lanes in history for s in lanes}
    out = [(f, s) for s in symbols for f, frm, _ in transfers(s, history) if frm == lane]
    return sorted(out)


def decode_route(raw: bytes) -> Route:
    """Decode a ``routes`` value; raise ``ValueError`` naming the problem."""
    try:
        return msgspec.msgpack.decode(raw, type=Route)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"unreadable route: {exc}") from exc


def encode_route(route: Route) -> bytes:
    return msgspec.msgpack.encode(route)


class RouteConflict(RuntimeError):
    """Someone else wrote the route since it was read (compare-and-set refused)."""


class SwitchFailed(RuntimeError):
    """A switch did not complete; the route is as it was before it."""


def ack_key(service: str, lane: str, replica: str) -> str:
    """Return the ``routes`` key where a replica confirms the route revision it applied."""
    return f"{service}.{lane}.{replica}"


class RouteStore:
    """The ``routes`` KV bucket as seen by one service: read, watch, compare-and-set, acks."""

    def __init__(self, kv: KeyValue, service: str) -> None:
        self.kv = kv
        self.service = service

    @classmethod
    async def open(cls, bus: Bus, service: str) -> RouteStore:
        """Bind the bucket (created by ``depthflow bootstrap``; a missing one is an error)."""
        name = bus.subjects.kv_bucket("routes")
        try:
            kv = await bus.js.key_value(name)
        except NotFoundError as exc:
            raise RuntimeError(
                f"KV bucket {name} does not exist; run `depthflow bootstrap` first"
            ) from exc
        return cls(kv, service)

    async def read(self) -> tuple[Route | None, int]:
        """Return the route and its KV revision; ``(None, 0)`` when there is none."""
        try:
            entry = await self.kv.get(self.service)
        except (NotFoundError, KeyNotFoundError):  # never written, or deleted (create works)
            return None, 0
        return (decode_route(entry.value) if entry.value else None), entry.revision or 0

    async def write(self, route: Route, revision: int) -> int:
        """Write ``route`` if the stored revision is still ``revision`` (0: none yet); return
        the new revision, or raise :class:`RouteConflict`."""
        if route.service != self.service:
            raise ValueError(f"route of {route.service!r} written under {self.service!r}")
        try:
            if revision == 0:
                return await self.kv.create(self.service, encode_route(route))
            return await self.kv.update(self.service, encode_route(route), last=revision)
        except (KeyWrongLastSequenceError, BadRequestError) as exc:
            raise RouteConflict(
                f"the route of {self.service} changed since revision {revision}: read it again"
            ) from exc

    async def watch(self, idle_s: float = 1.0) -> AsyncIterator[tuple[Route | None, int]]:
        """Yield the current route at once, then every change, as ``(route, revision)``.

        An absent route yields ``(None, 0)``. Raises when the watch breaks (the connection
        closed); the caller decides what to do meanwhile (the runtime stops consuming).
        """
        watcher = await self.kv.watch(self.service)
        try:
            first = True
            while True:
                try:
                    entry = await watcher.updates(timeout=idle_s)
                except nats.errors.TimeoutError:
                    if not self.kv._js._nc.is_connected:
                        raise ConnectionError("route watch lost: NATS disconnected") from None
                    continue
                if entry is None:  # end of the initial values: nothing stored
                    if first:
                        yield None, 0
                        first = False
                    continue
                first = False
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    yield None, entry.revision or 0
                else:
                    yield decode_route(entry.value), entry.revision or 0
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def confirm(self, lane: str, replica: str, revision: int) -> None:
        """Record that ``replica`` of ``lane`` applies the route at ``revision``."""
        await self.kv.put(ack_key(self.service, lane, replica), str(revision).encode())

    async def confirmations(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return ``<lane>.<replica> -> confirmed revision`` for the given lanes."""
        wanted = tuple(f"{self.service}.{lane}." for lane in lanes)
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return {}
        out: dict[str, int] = {}
        for key in keys:
            if key.startswith(wanted):
                with contextlib.suppress(NotFoundError, KeyNotFoundError, KeyDeletedError,
                                         ValueError):
                    entry = await self.kv.get(key)
                    out[key[len(self.service) + 1 :]] = int((entry.value or b"0").decode())
        return out


def with_assignment(route: Route | None, service: str, fences: Mapping[str, int],
                    lanes: Mapping[str, str]) -> Route:
    """Return ``route`` with one more assignment (``stable`` entries dropped from the map)."""
    clean = {s: lane for s, lane in sorted(lanes.items()) if lane != STABLE}
    entry = Assignment(fences=dict(fences), lanes=clean)
    history = route.history if route is not None else ()
    return Route(service=service, history=(*history, entry))


async def switch(
    bus: Bus,
    service: str,
    moves: Mapping[str, str],
    lanes: Sequence[str] = (STABLE, CANARY),
    confirm_within_s: float = 30.0,
    pause_s: float = 120.0,
    poll_s: float = 0.1,
) -> tuple[Route, int]:
    """Move symbols between lanes of ``service`` exactly at a sequence fence.

    ``moves`` maps a symbol to its new lane. Every lane in ``lanes`` must have its durable
    (``<service>-<lane>``) on every input stream of the service: a lane is never created here
    (so never with an empty filter, which would mean everything). Return the route written and
    its revision; raise :class:`SwitchFailed` (route restored) or :class:`RouteConflict`.
    """
    js = bus.js
    store = await RouteStore.open(bus, service)
    route, revision = await store.read()
    for lane in moves.values():
        if lane not in lanes:
            raise ValueError(f"lane {lane!r} is not among the lanes switched {list(lanes)}")
    durables: dict[str, list[tuple[str, str]]] = {}  # stream name -> (stream, durable)
    for name in STREAM_DOMAINS:
        stream = bus.subjects.stream(name)
        for lane in lanes:
            with contextlib.suppress(NotFoundError):
                await js.consumer_info(stream, f"{service}-{lane}")
                durables.setdefault(name, []).append((stream, f"{service}-{lane}"))
    if not durables:
        raise SwitchFailed(f"{service} has no durable consumer of lanes {list(lanes)}")
    for name, ds in durables.items():
        missing = set(f"{service}-{lane}" for lane in lanes) - {d for _, d in ds}
        if missing:
            raise SwitchFailed(f"{sorted(missing)} not consuming {name}: start the lane first")
    until = (datetime.now(UTC) + timedelta(seconds=pause_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    paused = [sd for ds in durables.values() for sd in ds]
    try:
        for stream, durable in paused:
            await js.pause_consumer(stream, durable, until)
        # read the cursors only once every pause is acknowledged: nothing above them moves now
        fences: dict[str, int] = {}
        for name, ds in durables.items():
            seqs = [(await js.consumer_info(s, d)).delivered.stream_seq or 0 for s, d in ds]
            fences[name] = max(seqs)
        lanes_now = {**(route.current() if route else {}), **moves}
        new = with_assignment(route, service, fences, lanes_now)
        new_rev = await store.write(new, revision)
        log.info("route written", extra={"service": service, "fences": fences,
                                          "lanes": lanes_now, "revision": new_rev})
        try:
            await _confirmed(store, lanes, new_rev, confirm_within_s, poll_s)
        except TimeoutError:
            # nothing above the fences was delivered: writing the old history back is exact
            restored = route if route is not None else Route(service=service)
            await store.write(restored, new_rev)
            raise SwitchFailed(
                f"not every replica of {service} confirmed revision {new_rev} within "
                f"{confirm_within_s:g}s; the route is back as before"
            ) from None
        return new, new_rev
    finally:
        for stream, durable in paused:
            with contextlib.suppress(Exception):
                await js.resume_consumer(stream, durable)


async def _confirmed(store: RouteStore, lanes: Sequence[str], revision: int, within_s: float,
                     poll_s: float) -> None:
    async def wait() -> None:
        while True:
            acks = await store.confirmations(lanes)
            have = {key.split(".", 1)[0] for key in acks}
            # every lane has a replica, and every replica that ever confirmed is at this revision
            if have >= set(lanes) and all(rev >= revision for rev in acks.values()):
                return
            await asyncio.sleep(poll_s)

    await asyncio.wait_for(wait(), within_s)

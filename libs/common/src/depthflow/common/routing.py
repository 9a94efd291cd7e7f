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

**Replicas** of a lane (:mod:`depthflow.common.replicas` runs their presence and rebalances):
an assignment may name each lane's replica set; the owner of a message is then its *seat*
``(lane, replica)`` (:func:`seat_of`), the replica chosen by :func:`rendezvous` among the set.
A rebalance is a switch with a new set; the durables of replicas taken out are deleted.

Not here: the ``depthflow`` commands (tools/ctl), automatic rollback, pruning old history.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import msgspec
import nats.errors
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from depthflow.common.bus import Bus
from depthflow.common.kvkeys import live_entries
from depthflow.common.subjects import STREAM_DOMAINS

log = logging.getLogger("depthflow.routing")
_P = TypeVar("_P")  # a history entry's payload: a lane map, or an assignment
_W = TypeVar("_W")  # an owner: a lane, or a seat

STABLE = "stable"
CANARY = "canary"
ROUTE_VERSION = 1

_Token = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")]
_Seq = Annotated[int, msgspec.Meta(ge=0)]

#: One stream's view of a route: ``(fence, symbol -> lane)`` entries, in any order.
History = Sequence[tuple[int, Mapping[str, str]]]
#: Where a symbol is handled: ``(lane, replica)``.
Seat = tuple[str, str]
#: One replica per lane unless an assignment names the lane's replicas.
DEFAULT_REPLICAS = ("0",)


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Who owns which symbol, from each input stream's fence on (``seq > fence``)."""

    fences: dict[_Token, _Seq]  # input stream (``MD``, ``AGG``, ...) -> fence sequence
    lanes: dict[_Token, _Token] = {}  # symbol -> lane; absent = stable
    # lane -> its live replicas, among which its symbols are split (rendezvous); absent = "0"
    replicas: dict[_Token, list[_Token]] = {}

    def __post_init__(self) -> None:
        if not self.fences:
            raise ValueError("an assignment needs a fence for at least one stream")
        if any(not rs for rs in self.replicas.values()):
            raise ValueError("a lane's replica set is never empty (leave the lane out instead)")

    def replicas_of(self, lane: str) -> tuple[str, ...]:
        return tuple(self.replicas.get(lane, DEFAULT_REPLICAS))

    def seat(self, symbol: str) -> Seat:
        """Return where ``symbol`` is handled under this assignment."""
        lane = self.lanes.get(symbol, STABLE)
        return lane, rendezvous(symbol, self.replicas_of(lane))


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

    def seats_for_stream(self, stream: str) -> tuple[tuple[int, Assignment], ...]:
        """Like :meth:`for_stream`, with the whole assignments (for :func:`seat_of`)."""
        entries = [(a.fences[stream], i, a) for i, a in enumerate(self.history)
                   if stream in a.fences]
        entries.sort(key=lambda e: (e[0], e[1]))
        return tuple((f, a) for f, _, a in entries)

    def current(self) -> dict[str, str]:
        """Return the latest symbol -> lane map (empty: stable owns all)."""
        return dict(self.history[-1].lanes) if self.history else {}

    def current_replicas(self) -> dict[str, list[str]]:
        """Return the latest lane -> replicas map (a lane absent: replica ``"0"`` alone)."""
        return {k: list(v) for k, v in self.history[-1].replicas.items()} if self.history else {}


#: One stream's view of a route with replicas: ``(fence, assignment)`` entries.
SeatHistory = Sequence[tuple[int, Assignment]]


def rendezvous(symbol: str, replicas: Sequence[str]) -> str:
    """Return the replica of ``replicas`` that owns ``symbol`` (highest random weight).

    Why rendezvous hashing: a replica joining takes ~1/N of the symbols and a replica leaving
    gives away only its own; every other symbol stays where it is, so a rebalance moves (and
    hands off) the fewest states. The weight is a keyed hash, the same in every process.
    """
    def weight(replica: str) -> bytes:
        return hashlib.blake2b(f"{symbol}\x00{replica}".encode(), digest_size=8).digest()

    return max(replicas, key=lambda r: (weight(r), r))


def seat_of(symbol: str, stream_seq: int, history: SeatHistory) -> Seat:
    """Return the ``(lane, replica)`` handling ``symbol``'s message at ``stream_seq``; the
    same rule as :func:`owner` (highest fence below, later entry wins a tie, default
    ``(stable, "0")``), the replica chosen by :func:`rendezvous` among the entry's replicas."""
    return _owner_at(symbol, stream_seq, history, Assignment.seat, (STABLE, DEFAULT_REPLICAS[0]))


def seat_transfers(symbol: str, history: SeatHistory) -> list[tuple[int, Seat, Seat]]:
    """:func:`transfers` by seat: a move between replicas of one lane is a transfer too."""
    return _transfers(symbol, history, Assignment.seat, (STABLE, DEFAULT_REPLICAS[0]))


def seat_acquired(symbol: str, stream_seq: int, history: SeatHistory) -> tuple[int, Seat] | None:
    """:func:`acquired` by seat."""
    return _acquired(seat_transfers(symbol, history), stream_seq)


def seat_losses(seat: Seat, symbols: Iterable[str], history: SeatHistory) -> list[tuple[int, str]]:
    """Return ``(fence, symbol)`` for every transfer of one of ``symbols`` away from ``seat``.

    Symbols must be given: under stable with several replicas a symbol moves without being in
    any lane map."""
    return sorted((f, s) for s in symbols for f, frm, _ in seat_transfers(s, history) if frm == seat)


def seat_orphans(seat: Seat, symbols: Iterable[str], history: SeatHistory) -> list[tuple[int, str]]:
    """Return ``(fence, symbol)``, ascending, for every one of ``symbols`` that ``seat`` holds
    at the end of ``history`` and took, at its last transfer, from a replica gone at that fence
    (a recovery is owed: :func:`gone_at`)."""
    out = []
    for s in symbols:
        moves = seat_transfers(s, history)
        if moves and moves[-1][2] == seat and gone_at(moves[-1][1], moves[-1][0], history):
            out.append((moves[-1][0], s))
    return sorted(out)


def gone_at(seat: Seat, fence: int, history: SeatHistory) -> bool:
    """Whether ``seat``'s replica left its lane's replica set at ``fence`` (died or left): it
    hands nothing over, its symbols' states come from its checkpoint and a replay."""
    lane, replica = seat
    at = [a for f, a in history if f == fence]
    return bool(at) and replica not in at[-1].replicas_of(lane)


def gone_since(seat: Seat, fence: int, history: SeatHistory) -> bool:
    """Whether ``seat``'s replica left its lane's set at ``fence`` or later: a hand-off it owes
    at ``fence`` will never come (it died after the rebalance that took a symbol from it)."""
    lane, replica = seat
    return any(f >= fence and replica not in a.replicas_of(lane) for f, a in history)


def removed(seat: Seat, history: SeatHistory) -> bool:
    """Whether ``seat``'s replica was ever taken out of its lane's replica set."""
    lane, replica = seat
    sets = [a.replicas_of(lane) for _, a in history]
    return any(replica in a and replica not in b for a, b in itertools.pairwise(sets)) or (
        bool(sets) and replica in DEFAULT_REPLICAS and replica not in sets[0])


def durable_name(service: str, lane: str, replica: str) -> str:
    """The durable consumer of one replica of one lane (``<service>-<lane>`` for replica "0",
    the name before replicas; ``<service>-<lane>-<replica>`` for the others)."""
    return f"{service}-{lane}" if replica == DEFAULT_REPLICAS[0] else f"{service}-{lane}-{replica}"


def _owner_at(symbol: str, stream_seq: int, history: Sequence[tuple[int, _P]],
                    pick: Callable[[_P, str], _W], default: _W) -> _W:
    best: _P | None = None
    best_fence = -1
    for fence, entry in history:
        # ">=" lets a later entry at the same fence win when ``history`` is in writing order
        if fence < stream_seq and fence >= best_fence:
            best, best_fence = entry, fence
    return default if best is None else pick(best, symbol)


def _transfers(symbol: str, history: Sequence[tuple[int, _P]], pick: Callable[[_P, str], _W],
                     default: _W) -> list[tuple[int, _W, _W]]:
    by_fence: dict[int, _P] = {}
    for fence, entry in history:  # a later entry at the same fence wins, as in owner()
        by_fence[fence] = entry
    out, prev = [], default
    for fence in sorted(by_fence):
        who = pick(by_fence[fence], symbol)
        if who != prev:
            out.append((fence, prev, who))
            prev = who
    return out


def _acquired(moves: list[tuple[int, _W, _W]], stream_seq: int) -> tuple[int, _W] | None:
    last = None
    for fence, frm, _ in moves:
        if fence >= stream_seq:
            break
        last = (fence, frm)
    return last


def _lane_of(lanes: Mapping[str, str], symbol: str) -> str:
    return lanes.get(symbol, STABLE)


def owner(symbol: str, stream_seq: int, history: History) -> str:
    """Return the lane that handles ``symbol``'s message at ``stream_seq``.

    The entry with the highest fence below ``stream_seq`` decides (a later entry wins a tie);
    without one, ``stable``. Pure: every lane and every redelivery computes the same answer.
    """
    return _owner_at(symbol, stream_seq, history, _lane_of, STABLE)


def transfers(symbol: str, history: History) -> list[tuple[int, str, str]]:
    """Return ``(fence, from_lane, to_lane)`` for each change of ``symbol``'s owner, ascending.

    The state of a symbol moves with it (ARCHITECTURE §5): at each transfer the lane it leaves
    hands over its state as of the fence, and the lane it joins takes it before handling the
    symbol's first message past the fence.
    """
    return _transfers(symbol, history, _lane_of, STABLE)


def acquired(symbol: str, stream_seq: int, history: History) -> tuple[int, str] | None:
    """Return ``(fence, previous lane)`` of the transfer that gave ``symbol``'s message at
    ``stream_seq`` its owner, or None when its owner has held the symbol from the start."""
    return _acquired(transfers(symbol, history), stream_seq)


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
        """Return the route and its KV revision; ``(None, 0)`` when there is none (never
        written, or deleted: a write at revision 0 creates it again)."""
        route, revision = await self.stored()
        return (route, revision) if route is not None else (None, 0)

    async def stored(self) -> tuple[Route | None, int]:
        """Like :meth:`read`, but a deleted route is ``(None, revision of the deletion)``: not
        "never written", which gives stable every symbol, but a route to wait for."""
        try:
            entry = await self.kv.get(self.service)
        except (NotFoundError, KeyNotFoundError) as exc:
            deleted = getattr(exc, "entry", None)  # nats-py's get keeps a deletion's entry
            return None, (deleted.revision or 0) if deleted is not None else 0
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

        An absent route yields ``(None, 0)``, a deleted one ``(None, revision)``. Raises when
        the watch breaks (the connection closed); the caller decides what to do meanwhile (the
        runtime stops consuming).

        Why the key is read when the watch says it holds nothing: nats-py signals "no initial
        values" when the server reports nothing pending and the client has received nothing,
        which also holds while the stored value is on its way; the signal then comes first.
        Taken as "no route", a lane would consume as if stable replica 0 owned every symbol
        (seen in CI, a lane consuming under an unreadable route). Entries at or below the
        revision already given are skipped (the value that was on its way).
        """
        watcher = await self.kv.watch(self.service)
        try:
            first = True
            given = 0  # the revision last yielded
            while True:
                try:
                    entry = await watcher.updates(timeout=idle_s)
                except nats.errors.TimeoutError:
                    if not self.kv._js._nc.is_connected:
                        raise ConnectionError("route watch lost: NATS disconnected") from None
                    continue
                if entry is None:  # the end of the initial values, perhaps before the value
                    if first:
                        first = False
                        route, given = await self.stored()
                        yield route, given
                    continue
                first = False
                revision = entry.revision or 0
                if revision and revision <= given:
                    continue
                given = revision
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    yield None, revision
                else:
                    yield decode_route(entry.value), revision
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def confirm(self, lane: str, replica: str, revision: int) -> None:
        """Record that ``replica`` of ``lane`` applies the route at ``revision``."""
        await self.kv.put(ack_key(self.service, lane, replica), str(revision).encode())

    async def confirmation(self, seat: str) -> int:
        """Return the revision ``<lane>.<replica>`` confirmed (0: none yet), read by its key.

        Why not :meth:`confirmations` in a poll loop: each listing creates a consumer on the
        bucket's stream, and a switch polling listings while replicas came and went reached the
        server's consumer limit (``maximum consumers limit reached``)."""
        with contextlib.suppress(NotFoundError, KeyNotFoundError, KeyDeletedError, ValueError):
            entry = await self.kv.get(f"{self.service}.{seat}")
            return int((entry.value or b"0").decode())
        return 0

    async def confirmations(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return ``<lane>.<replica> -> confirmed revision`` for the given lanes."""
        out: dict[str, int] = {}
        for lane in lanes:
            for key, value in (await live_entries(self.kv, f"{self.service}.{lane}.")).items():
                with contextlib.suppress(ValueError):
                    out[key[len(self.service) + 1 :]] = int((value or b"0").decode())
        return out


def with_assignment(route: Route | None, service: str, fences: Mapping[str, int],
                    lanes: Mapping[str, str],
                    replicas: Mapping[str, Sequence[str]] | None = None) -> Route:
    """Return ``route`` with one more assignment (``stable`` entries dropped from the map).

    ``replicas`` (lane -> replica set) replaces those lanes' sets; the others carry over.
    """
    clean = {s: lane for s, lane in sorted(lanes.items()) if lane != STABLE}
    sets = route.current_replicas() if route is not None else {}
    for lane, rs in (replicas or {}).items():
        sets[lane] = sorted(set(rs))
    sets = {lane: rs for lane, rs in sorted(sets.items()) if tuple(rs) != DEFAULT_REPLICAS}
    entry = Assignment(fences=dict(fences), lanes=clean, replicas=sets)
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
    replicas: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Route, int]:
    """Move symbols between lanes of ``service``, or change a lane's replicas, exactly at a
    sequence fence.

    ``moves`` maps a symbol to its new lane; ``replicas`` maps a lane to its new replica set
    (a rebalance: :mod:`depthflow.common.replicas`). Every replica of the new sets must have its
    durable (:func:`durable_name`) on every input stream of the service: nothing is created here
    (so never with an empty filter, which would mean everything). The durables of replicas
    taken out of a set are deleted once the route is confirmed: a replica thought dead that
    wakes up cannot fetch with its stale route. Return the route written and its revision;
    raise :class:`SwitchFailed` (route restored) or :class:`RouteConflict`.
    """
    if pause_s <= confirm_within_s:
        raise ValueError("pause_s must exceed confirm_within_s: the lanes must not resume "
                         "before every replica confirmed the route")
    js = bus.js
    store = await RouteStore.open(bus, service)
    route, revision = await store.read()
    for lane in (*moves.values(), *(replicas or {})):
        if lane not in lanes:
            raise ValueError(f"lane {lane!r} is not among the lanes switched {list(lanes)}")
    old = {lane: set(route.history[-1].replicas_of(lane) if route and route.history
                     else DEFAULT_REPLICAS) for lane in lanes}
    new = {lane: set((replicas or {}).get(lane, old[lane])) for lane in lanes}
    need = {durable_name(service, lane, r) for lane in lanes for r in new[lane]}
    leaving = {durable_name(service, lane, r) for lane in lanes for r in old[lane] - new[lane]}
    durables: dict[str, list[tuple[str, str]]] = {}  # stream name -> (stream, durable)
    for name in STREAM_DOMAINS:
        stream = bus.subjects.stream(name)
        for durable in sorted(need | leaving):
            with contextlib.suppress(NotFoundError):
                await js.consumer_info(stream, durable)
                durables.setdefault(name, []).append((stream, durable))
    if not durables:
        raise SwitchFailed(f"{service} has no durable consumer of lanes {list(lanes)}")
    for name, ds in durables.items():
        missing = need - {d for _, d in ds}
        if missing:
            raise SwitchFailed(f"{sorted(missing)} not consuming {name}: start the lane first")
    if route is not None:
        await _settled(bus, service, route, moves, {lane: sorted(rs) for lane, rs in new.items()},
                       list(durables), confirm_within_s, poll_s)
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
        written = with_assignment(route, service, fences, lanes_now,
                                  {lane: sorted(rs) for lane, rs in new.items()})
        new_rev = await store.write(written, revision)
        log.info("route written", extra={"service": service, "fences": fences,
                                          "lanes": lanes_now, "revision": new_rev,
                                          "replicas": {k: sorted(v) for k, v in new.items()}})
        seats = [f"{lane}.{r}" for lane in lanes for r in sorted(new[lane])]
        try:
            await _confirmed(store, seats, new_rev, confirm_within_s, poll_s)
        except TimeoutError:
            # nothing above the fences was delivered: writing the old history back is exact
            restored = route if route is not None else Route(service=service)
            try:
                await store.write(restored, new_rev)
            except RouteConflict:
                # another switch (a rebalance taking the silent replica out) built on this one
                # and was confirmed by every replica left: the move stands, with a later fence
                raise SwitchFailed(
                    f"not every replica of {service} confirmed revision {new_rev} within "
                    f"{confirm_within_s:g}s, and the route changed meanwhile (a rebalance?); "
                    "it was not put back: read it again"
                ) from None
            raise SwitchFailed(
                f"not every replica of {service} confirmed revision {new_rev} within "
                f"{confirm_within_s:g}s; the route is back as before"
            ) from None
        for stream, durable in paused:
            if durable in leaving:
                with contextlib.suppress(NotFoundError):
                    await js.delete_consumer(stream, durable)
        return written, new_rev
    finally:
        for stream, durable in paused:
            with contextlib.suppress(Exception):
                await js.resume_consumer(stream, durable)


async def _settled(bus: Bus, service: str, route: Route, moves: Mapping[str, str],
                   replicas: Mapping[str, Sequence[str]], streams: Sequence[str],
                   within_s: float, poll_s: float) -> None:
    """Wait (up to ``within_s``) before giving a symbol back to the seat it last left until
    that seat's ack floor reached the fence it left at, else raise :class:`SwitchFailed`: the
    seat owes the symbol's hand-off until then (a message at or below that fence is still to
    come again to it), and gaining the symbol back it would wait for a hand-off that waits for
    it. Usually a matter of milliseconds (a move right after another)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            return await _check_settled(bus, service, route, moves, replicas, streams)
        except SwitchFailed:
            if asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(poll_s)


async def _check_settled(bus: Bus, service: str, route: Route, moves: Mapping[str, str],
                         replicas: Mapping[str, Sequence[str]], streams: Sequence[str]) -> None:
    nxt = with_assignment(route, service, dict.fromkeys(streams, 0),
                          {**route.current(), **moves}, replicas).history[-1]
    for name in streams:
        history = route.seats_for_stream(name)
        for symbol in moves:
            done = seat_transfers(symbol, history)
            if not done:
                continue
            fence, frm, _ = done[-1]
            if nxt.seat(symbol) != frm or gone_since(frm, fence, history):
                continue
            try:
                info = await bus.js.consumer_info(bus.subjects.stream(name),
                                                  durable_name(service, *frm))
            except NotFoundError:
                continue
            floor = (info.ack_floor.stream_seq if info.ack_floor else 0) or 0
            if floor < fence:
                raise SwitchFailed(
                    f"{symbol} left {frm[0]} replica {frm[1]} at {name} {fence}, and that lane "
                    f"has not acked up to there yet (ack floor {floor}): it still owes the "
                    "symbol's state; try again once it has")


async def _confirmed(store: RouteStore, seats: Sequence[str], revision: int, within_s: float,
                     poll_s: float) -> None:
    """Return once every seat confirmed ``revision``; raise :class:`TimeoutError` past
    ``within_s``.

    Every replica of the new sets applies this revision (one taken out is not asked: it may be
    dead, and its durable is deleted before anything resumes). Why the loop keeps its own
    deadline instead of running under ``asyncio.wait_for``: on Python 3.11 a cancellation that
    lands as a reply arrives is lost inside nats-py's request (its own ``wait_for`` returns the
    reply), the poll goes on, and the outer ``wait_for`` waits for it for good. Seen in CI: a
    switch with a replica dead hung for 300 s instead of failing after 4. Each read is bounded by
    the client's request timeout, whose error is a ``TimeoutError`` too.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        if all([await store.confirmation(seat) >= revision for seat in seats]):
            return
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError(f"revision {revision} not confirmed by every one of {list(seats)}")
        await asyncio.sleep(min(poll_s, left))

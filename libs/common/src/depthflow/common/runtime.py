"""The service lifecycle every depthflow service shares.

connect → verify streams → bind durable consumers → serve ``/healthz`` ``/readyz`` ``/metrics`` →
consume until SIGTERM → drain (stop fetching, finish in-flight messages, flush) → exit 0.

A service registers handlers; a handler turns one decoded input into zero or more
:class:`Output` s and never touches NATS. The runtime publishes the outputs, each with
``Nats-Msg-Id = <service>:<input stream>:<input seq>:<n>``, and acks the input only after
JetStream acknowledged every output, so a crash at any point loses nothing and doubles nothing.

Canary lanes (ARCHITECTURE §5, :mod:`depthflow.common.routing`): a service with inputs loads its
route from the ``routes`` KV bucket before restoring state and follows it with a watch; each
delivered message that passes admission goes to the handler only if
``owner(symbol, stream seq, history)`` is this lane (``RuntimeConfig.lane``), else it is acked and
counted as ``skipped``. While the watch is broken, or the route unreadable or deleted, nothing is
fetched. A symbol's checkpointed state moves with it at the fence (hand-off keys in the checkpoint
store). With no route, ``stable`` owns every message: the behaviour before lanes, unchanged.

Outages of NATS or the checkpoint store are waited out, not fatal (a crashed service is a gap in
the pipeline until something restarts it): fetches and publishes wait for the reconnect, a
checkpoint that cannot be saved is saved at the next interval. Start-up, by contrast, is bounded
(``startup_timeout_s``): a server that never answers is an error naming its setting, and SIGTERM
is honoured at every step of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, cast

import msgspec
import nats.errors
import redis.exceptions
from aiohttp import web
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from depthflow.common.bus import FETCH_ERRORS, TRANSIENT_ERRORS, Bus, Unreachable
from depthflow.common.checkpoint import Checkpointed, CheckpointStore, IncompatibleState
from depthflow.common.codec import Decoder, InvalidMessage
from depthflow.common.config import RuntimeConfig
from depthflow.common.endpoints import REDIS_URL_ENV
from depthflow.common.redact import mask_url
from depthflow.common.replicas import Membership
from depthflow.common.routing import (
    STABLE,
    RouteStore,
    Seat,
    SeatHistory,
    durable_name,
    gone_at,
    gone_since,
    removed,
    seat_acquired,
    seat_losses,
    seat_of,
    seat_orphans,
)
from depthflow.common.routing import Route as LaneRoute
from depthflow.common.subjects import Subjects, subject_matches
from depthflow.common.telemetry import Metrics, extract_trace, setup_logging, setup_tracing

T = TypeVar("T")
log = logging.getLogger("depthflow.runtime")

#: How long a draining service lets a worker finish the message in hand. Past it (a publish
#: waiting out an outage, say) the worker is cancelled: its message is not acked, so it comes
#: again to the next run, whose outputs carry the same ids and are dropped as duplicates.
DRAIN_TIMEOUT_S = 10.0
_STORE_ERRORS = (redis.exceptions.RedisError, OSError)
#: What breaks a route watch (the bus away, an unreadable value): not consuming until it is back.
_ROUTE_ERRORS: tuple[type[BaseException], ...] = (ValueError, *FETCH_ERRORS)
_WAIT_ERRORS: tuple[type[BaseException], ...] = (*_STORE_ERRORS, *FETCH_ERRORS)


@dataclass(frozen=True)
class Output:
    """A message a handler wants published."""

    subject: str
    message: msgspec.Struct


@dataclass(frozen=True)
class Delivery:
    """Where an input came from: enough to build idempotency keys from it."""

    subject: str
    stream: str
    seq: int
    num_delivered: int


Handler = Callable[[Any, Delivery], Awaitable[Sequence[Output]]]


@dataclass(frozen=True)
class Route:
    """Which handler takes a message type, and the subject pattern it must arrive on."""

    type_: type
    pattern: str
    handler: Handler
    kind: str
    admit: bool = True  # the runtime checks venue, symbol and clock before the handler sees it


@dataclass
class _Checkpointing:
    target: Checkpointed
    interval_s: float
    last_save: float = 0.0
    restored: dict[str, int] = field(default_factory=dict)  # symbol -> seq included in its state


@dataclass
class StreamInput:
    """One durable consumer on one stream: its filter subjects and a route per message type.

    One consumer per stream (not per subject) keeps the stream's order across subjects and
    gives each service lane exactly one durable name per stream.
    """

    stream: str
    routes: list[Route] = field(default_factory=list)
    decoder: Decoder[Any] | None = None
    checkpointing: _Checkpointing | None = None
    last_seq: int = 0  # the last stream sequence fully handled (published and acked)
    high: int = 0  # the highest stream sequence handled (a redelivery may come after it)
    # canary lanes: symbol -> fence of the transfer whose state this lane holds (0: from the
    # start); the transfers away from this lane, and the last one handed over
    adopted: dict[str, int] = field(default_factory=dict)
    losses: list[tuple[int, str]] = field(default_factory=list)
    handed: int = 0
    # (fence, symbol) this replica holds now, taken from a replica gone at that fence: recovered
    # once the consumer reaches the fence, not at the symbol's next message (there may be none)
    orphans: list[tuple[int, str]] = field(default_factory=list)
    floor_checked: float = 0.0  # when the durable's ack floor was last read for a hand-off

    @property
    def filters(self) -> list[str]:
        return [r.pattern for r in self.routes]

    def route_for(self, msg: Any, subject: str) -> Route:
        for r in self.routes:
            if isinstance(msg, r.type_) and subject_matches(r.pattern, subject):
                return r
        raise InvalidMessage(f"{type(msg).__name__} is not accepted on subject {subject!r}")


class _Abandoned(Exception):
    """A draining service gave up waiting for a symbol's state: the message stays unacked."""


class HandOffFailed(RuntimeError):
    """A symbol's state handed over by another lane cannot be taken: the service stops.

    Why not retry or dead-letter the message: the message is fine; the lane would process the
    symbol on a wrong state. A canary whose state format differs from stable's lands here.
    """


class _HandOff(msgspec.Struct, frozen=True):
    state: bytes | None  # None: the lane it left held no state for the symbol


class _Gone:
    """The replica owing a hand-off was taken out of its lane before writing it."""


class ServiceFailed(RuntimeError):
    """A worker of the service died; the process exits non-zero so it is restarted."""


class Service:
    """A running depthflow service: register inputs and tasks, then :meth:`run`."""

    def __init__(self, name: str, cfg: RuntimeConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.subjects = Subjects(cfg.prefix)
        self.metrics = Metrics(name, cfg.lane, cfg.symbols)
        self.tracer = setup_tracing(name, cfg.otel_endpoint, cfg.lane, cfg.replica or "0")
        self.bus: Bus | None = None
        self._inputs: dict[str, StreamInput] = {}
        self._tasks: list[Callable[[Bus], Coroutine[Any, Any, None]]] = []
        self._on_start: list[Callable[[Bus], Awaitable[None]]] = []
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self._stopping = asyncio.Event()
        self._checkpoints: CheckpointStore | None = None
        self._ready = False
        self._ready_checks: list[Callable[[], bool]] = []
        self._symbols = frozenset(cfg.symbols)
        self._http_port = 0
        # canary lanes (routing.py): the route in force, per input stream; set = it is current
        self._routes: RouteStore | None = None
        self._route_rev = 0
        self._histories: dict[str, SeatHistory] = {}
        self._route_live = asyncio.Event()
        self.replica = cfg.replica or "0"
        self.seat: Seat = (cfg.lane, self.replica)
        setup_logging(name, cfg.log_level)

    @property
    def durable(self) -> str:
        return durable_name(self.name, self.cfg.lane, self.replica)

    @property
    def stopping(self) -> asyncio.Event:
        return self._stopping

    def consume(
        self, stream: str, pattern: str, type_: type, handler: Handler, kind: str, admit: bool = True
    ) -> None:
        """Route ``type_`` messages arriving on ``pattern`` in ``stream`` to ``handler``.

        With ``admit`` (the default) a message for another venue, an unconfigured symbol or
        stamped in the future is a dead letter before the handler sees it; a handler that must
        answer such input itself (risk decides every signal) passes ``admit=False``.
        """
        inp = self._inputs.setdefault(stream, StreamInput(stream))
        inp.routes.append(Route(type_, pattern, handler, kind, admit))
        types = tuple(dict.fromkeys(r.type_ for r in inp.routes))
        inp.decoder = Decoder(types[0] if len(types) == 1 else Union[types])  # noqa: UP007

    def checkpoint(self, stream: str, target: Checkpointed, interval_s: float = 5.0) -> None:
        """Checkpoint ``target``'s per-symbol state for input ``stream`` (see checkpoint.py)."""
        self._inputs[stream].checkpointing = _Checkpointing(target, interval_s)

    def task(self, fn: Callable[[Bus], Coroutine[Any, Any, None]]) -> None:
        """Register a producer task; it must return soon after :attr:`stopping` is set."""
        self._tasks.append(fn)

    def on_start(self, fn: Callable[[Bus], Awaitable[None]]) -> None:
        """Run ``fn`` once connected and verified, before consuming."""
        self._on_start.append(fn)

    def readiness(self, check: Callable[[], bool]) -> None:
        """Add a condition of ``/readyz`` (for instance: the ledger is reachable)."""
        self._ready_checks.append(check)

    def admission_error(self, msg: Any) -> str | None:
        """Why ``msg`` must not reach a handler of this deployment, or None.

        Values a message can check alone (finite, positive, sorted) are checked when it is
        decoded (messages.py); these need the deployment: its venue, its symbols and the clock.
        """
        venue = getattr(msg, "venue", self.cfg.venue)
        if venue != self.cfg.venue:
            return f"venue {venue!r} is not this deployment's venue {self.cfg.venue!r}"
        symbol = getattr(msg, "symbol", None)
        if symbol is not None and symbol not in self._symbols:
            return f"symbol {symbol!r} is not configured (symbols: {sorted(self._symbols)})"
        bound = time.time_ns() + int(self.cfg.max_future_s * 1e9)
        for name in ("ts_event", "ts_init", "origin_ts"):
            ts = getattr(msg, name, 0)
            if ts > bound:
                ahead = (ts - bound) / 1e9 + self.cfg.max_future_s
                return f"{name} is {ahead:.1f}s in the future (bound {self.cfg.max_future_s:g}s)"
        return None

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` after draining (close pools and clients)."""
        self._on_close.append(fn)

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT or :meth:`stop`, then drain and return."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        runner = await self._serve_http()
        try:
            stop_wait = asyncio.create_task(self._stopping.wait())
            starting = asyncio.create_task(self._start(), name="start-up")
            await asyncio.wait([stop_wait, starting], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():  # SIGTERM while connecting or restoring: leave at once
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                log.info("stopped during start-up")
                return
            inputs, subs = starting.result()
            consumers = [
                asyncio.create_task(self._consume_loop(i, s), name=f"consume-{i.stream}")
                for i, s in zip(inputs, subs, strict=True)
            ]
            assert self.bus is not None
            workers = consumers + [asyncio.create_task(t(self.bus), name="task") for t in self._tasks]
            follower = (asyncio.create_task(self._follow_route(), name="route")
                        if self._routes is not None else None)
            membership, beating = None, None
            if follower is not None:
                workers.append(follower)
                assert self._routes is not None
                membership = Membership(
                    self.bus, self._routes, self.cfg.lane, self.replica,
                    [self.bus.subjects.stream(i.stream) for i in inputs],
                    self.cfg.replica_heartbeat_s, self.cfg.replica_dead_after_s)
                beating = asyncio.create_task(membership.run(), name="presence")
                workers.append(beating)
            self._ready = True
            self.metrics.ready.labels(self.cfg.lane).set(1)
            log.info("ready", extra={"port": self._http_port, "inputs": len(inputs)})
            await asyncio.wait([stop_wait, *workers], return_when=asyncio.FIRST_COMPLETED)
            failed = [w for w in workers if w.done() and w.exception() is not None]
            self._stopping.set()
            if follower is not None:
                follower.cancel()  # watching the route needs no drain
                if beating is not None and membership is not None:
                    beating.cancel()
                    await membership.leave()  # the others take this replica's symbols over
            self._ready = False
            self.metrics.ready.labels(self.cfg.lane).set(0)
            log.info("draining")
            # workers finish the message in hand, then return
            _, late = await asyncio.wait(workers, timeout=DRAIN_TIMEOUT_S) if workers else (set(), set())
            for w in late:
                log.warning("drain timed out; cancelling", extra={"worker": w.get_name()})
                w.cancel()
            await asyncio.gather(*workers, stop_wait, return_exceptions=True)
            for i, w in zip(inputs, consumers, strict=True):
                if w not in late:  # a cancelled worker may hold a half-applied message
                    await self._save_checkpoint(i, force=True)
            if failed:
                # crash-only: a consumer that died must not leave a half-working service behind
                raise ServiceFailed(f"{self.name}: worker failed") from failed[0].exception()
        finally:
            if self.bus is not None:
                await self.bus.close()
            if self._checkpoints is not None:
                await self._checkpoints.close()
            for close in self._on_close:
                with contextlib.suppress(Exception):
                    await close()
            await runner.cleanup()
        log.info("stopped")

    async def _start(self) -> tuple[list[StreamInput], list[Any]]:
        """Connect (each server within the bound), verify, restore state, bind the consumers."""
        self.bus = await Bus.connect(
            self.cfg.nats_url, self.cfg.prefix, name=self.name, within_s=self.cfg.startup_timeout_s
        )
        await self.bus.verify()
        for fn in self._on_start:
            await fn(self.bus)
        inputs = list(self._inputs.values())
        if inputs:  # before restoring: a restore re-applies only what this lane owns
            self._routes = await RouteStore.open(self.bus, self.name)
            route, rev = await self._routes.read()
            self._apply_route(route, rev)
        if any(i.checkpointing for i in inputs):
            store = self._checkpoints = CheckpointStore.connect(
                self.cfg.redis_url, self.cfg.prefix, self.durable
            )
            await self.reach("Valkey", REDIS_URL_ENV, self.cfg.redis_url, store.ping, _STORE_ERRORS)
            for i in inputs:
                if i.checkpointing is not None:
                    await self._restore(i)
        subs = [await self._bind(i) for i in inputs]
        return inputs, subs

    async def reach(
        self,
        what: str,
        setting: str,
        url: str,
        attempt: Callable[[], Coroutine[Any, Any, T]],
        retry_on: tuple[type[BaseException], ...] = (OSError, TimeoutError),
    ) -> T:
        """Run ``attempt`` until it succeeds, for at most ``startup_timeout_s``.

        Past the bound, :class:`Unreachable` names the server and the setting to fix, e.g.
        ``cannot reach Postgres at postgresql://u:***@h/db (DEPTHFLOW_POSTGRES_URL) within
        15s``: a service that cannot start says so and exits instead of hanging. A service
        opening its own client at start (risk's ledger) wraps it in this too.
        """
        bound = self.cfg.startup_timeout_s
        deadline = time.monotonic() + bound
        while True:
            left = deadline - time.monotonic()
            try:
                return await asyncio.wait_for(attempt(), max(left, 0.01))
            except retry_on as exc:
                if time.monotonic() + 0.5 >= deadline:
                    raise Unreachable(
                        f"cannot reach {what} at {mask_url(url)} ({setting}) within {bound:g}s"
                        f" (last error: {mask_url(str(exc)) or type(exc).__name__})"
                    ) from exc
                await asyncio.sleep(0.5)

    def stop(self) -> None:
        """Begin a graceful drain."""
        self._stopping.set()

    async def _bind(self, inp: StreamInput) -> Any:
        assert self.bus is not None
        js = self.bus.js
        stream = self.bus.subjects.stream(inp.stream)
        cfg = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=self.cfg.max_ack_pending,
            ack_wait=self.cfg.ack_wait_s,
            max_deliver=-1,
        )
        if len(inp.filters) == 1:
            cfg.filter_subject = inp.filters[0]
        else:
            cfg.filter_subjects = inp.filters
        try:
            info = await js.consumer_info(stream, self.durable)
            if info.config.pause_until:  # a switch is on: a restart must not resume the lane
                cfg.pause_until = info.config.pause_until
            if self.seat != (STABLE, "0"):  # where a lane starts is fixed at its creation
                cfg.deliver_policy = info.config.deliver_policy
                cfg.opt_start_seq = info.config.opt_start_seq
            await js.add_consumer(stream, cfg)  # same config: no-op; changed filters: update
        except NotFoundError:
            history = self._histories.get(inp.stream, ())
            if self.seat != (STABLE, "0") or removed(self.seat, history):
                # Another lane reads from where the route first gives it a symbol; given none, from
                # now on (a switch fences past its cursor). Its filter is the stable lane's, never
                # empty: an empty filter would mean every subject of the stream. A replica taken
                # out of its lane (its durable deleted) and back reads from now on: what it owned
                # before went to the others, who replayed it.
                owned = [f for f, a in history if self.cfg.lane in a.lanes.values()]
                if owned and self.replica == "0" and not removed(self.seat, history):
                    cfg.deliver_policy, cfg.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, min(owned) + 1
                else:
                    cfg.deliver_policy = DeliverPolicy.NEW
            await js.add_consumer(stream, cfg)
        return await js.pull_subscribe_bind(durable=self.durable, stream=stream)

    async def _consume_loop(self, inp: StreamInput, sub: Any) -> None:
        assert self.bus is not None
        while not self._stopping.is_set():
            if not self._route_live.is_set():
                # no current route (watch lost, unreadable value): guessing an owner could
                # handle a message twice or never, so fetch nothing until the watch is back
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._route_live.wait(), 0.5)
                continue
            try:
                msgs = await sub.fetch(self.cfg.fetch_batch, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                with contextlib.suppress(_Abandoned):
                    await self._hand_over(inp)  # idle: the ack floor may have reached a fence
                    await self._take_orphans(inp)
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
                return
            except FETCH_ERRORS as exc:
                # the server is away or recovering: the durable keeps our place, so wait
                log.warning("fetch failed; waiting for the bus", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
                await self.bus.wait_connected()
                continue
            for m in msgs:
                await self._handle(inp, m)
            with contextlib.suppress(_Abandoned):
                await self._hand_over(inp)
                await self._take_orphans(inp)

    async def _handle(self, inp: StreamInput, m: Any) -> None:
        assert self.bus is not None
        meta = m.metadata
        stream, seq = meta.stream, meta.sequence.stream
        delivery = Delivery(m.subject, stream, seq, meta.num_delivered)
        symbol = Subjects.symbol_of(m.subject)
        lane = self.cfg.lane
        inp.high = max(inp.high, seq)  # a dead letter too: the ack floor may reach a fence by it
        started = time.perf_counter()
        kind = inp.stream.lower()
        skipped = False
        ctx = extract_trace(m.headers)
        with self.tracer.start_as_current_span(
            f"{self.name} {m.subject}", context=ctx, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.destination", m.subject)
            span.set_attribute("depthflow.stream_seq", seq)
            try:
                assert inp.decoder is not None
                msg = inp.decoder.decode(m.data)
                route = inp.route_for(msg, m.subject)
                kind = route.kind
                if getattr(msg, "symbol", symbol) != symbol:
                    raise InvalidMessage(
                        f"symbol {msg.symbol!r} does not match subject {m.subject!r}"
                    )
                if route.admit and (why := self.admission_error(msg)) is not None:
                    raise InvalidMessage(why)
                if not self.mine(inp.stream, symbol, seq):
                    skipped = True  # another lane's or replica's: ack it so every cursor moves on
                else:
                    await self._adopt(inp, symbol, seq)
                    outputs = await route.handler(msg, delivery)
                    for n, out in enumerate(outputs):
                        await self.publish(out, msg_id=f"{self.name}:{stream}:{seq}:{n}")
            except InvalidMessage as exc:
                await self._dead_letter(kind, m, exc.reason, symbol)
                return
            except _Abandoned:
                return  # not acked: it comes again to the next run
            except HandOffFailed:
                raise  # crash-only: never handle a symbol on a state it could not take over
            except Exception as exc:
                if meta.num_delivered >= self.cfg.max_deliver:
                    reason = f"handler failed {meta.num_delivered} times: {exc!r}"
                    log.exception("giving up on message", extra={"subject": m.subject})
                    await self._dead_letter(kind, m, reason, symbol)
                    return
                log.warning("handler failed, will retry", exc_info=True)
                self.metrics.messages.labels(kind, self.metrics.symbol(symbol), lane, "retry").inc()
                with contextlib.suppress(Exception):
                    await m.nak(delay=min(2.0 ** meta.num_delivered * 0.1, 5.0))
                return
            await self._ack(m)
        inp.last_seq = seq
        await self._save_checkpoint(inp)
        if skipped:
            self.metrics.messages.labels(kind, self.metrics.symbol(symbol), lane, "skipped").inc()
            return
        self.metrics.messages.labels(kind, self.metrics.symbol(symbol), lane, "ok").inc()
        self.metrics.handle_seconds.labels(kind, lane).observe(time.perf_counter() - started)

    async def _ack(self, m: Any) -> None:
        """Ack ``m``, waiting out a disconnect (an ack lost to an outage is a redelivery)."""
        assert self.bus is not None
        while True:
            try:
                await m.ack()
                return
            except TRANSIENT_ERRORS:
                await asyncio.sleep(0.2)
                await self.bus.wait_connected()

    async def publish(self, out: Output, msg_id: str) -> None:
        """Publish ``out`` (waiting for JetStream's ack) and count it; for handlers and tasks."""
        assert self.bus is not None
        await self.bus.publish(out.subject, out.message, msg_id=msg_id)
        self._observe_output(out)

    # --- routes (canary lanes, see routing.py) --------------------------------------------------

    def owner_of(self, stream: str, symbol: str, seq: int) -> str:
        """Return the lane owning ``symbol``'s message ``seq`` of input ``stream`` (``MD``...)."""
        return seat_of(symbol, seq, self._histories.get(stream, ()))[0]

    def mine(self, stream: str, symbol: str, seq: int) -> bool:
        """Whether this replica of this lane handles ``symbol``'s message ``seq`` of ``stream``."""
        return seat_of(symbol, seq, self._histories.get(stream, ())) == self.seat

    def _apply_route(self, route: LaneRoute | None, revision: int) -> None:
        if route is not None and route.service != self.name:
            raise ValueError(f"the route of {self.name} names service {route.service!r}")
        self._histories = {s: route.seats_for_stream(s) for s in self._inputs} if route else {}
        for name, inp in self._inputs.items():
            history = self._histories.get(name, ())
            # a symbol routed here but not configured here (its messages dead letters) still
            # leaves at a fence and owes its (empty) hand-off
            named = self._symbols | {s for _, a in history for s in a.lanes}
            inp.losses = seat_losses(self.seat, named, history)
            inp.orphans = seat_orphans(self.seat, named, history)
        self._route_rev = revision

    async def _follow_route(self) -> None:
        """Apply every change of this service's route; consume only while the watch is live.

        Each applied revision is confirmed under ``<service>.<lane>.<replica>``, which a switch
        waits for before resuming the lanes. While the watch is broken or the route unreadable,
        :attr:`_route_live` is clear and the consumers fetch nothing.
        """
        assert self._routes is not None
        assert self.bus is not None
        while True:
            try:
                async for route, rev in self._routes.watch():
                    if route is None and rev:
                        # a deleted route would hand every symbol to stable with no fence
                        raise ValueError("the route was deleted; write one to resume")
                    self._apply_route(route, rev)
                    self._route_live.set()
                    if rev:
                        await self._routes.confirm(self.cfg.lane, self.replica, rev)
                    log.info("route applied", extra={"revision": rev, "lane": self.cfg.lane})
            except _ROUTE_ERRORS as exc:
                self._route_live.clear()
                log.warning("route watch lost; not consuming until it is back",
                            extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
                await self.bus.wait_connected()

    # State moves with its symbol. At a transfer fence G the lane losing a symbol writes the
    # symbol's state as of G to a hand-off key once its durable's ack floor reached G (nothing
    # of the symbol at or below G can come again to it: a failed or crashed message at or below
    # G would, and is the lane's to handle); the lane gaining it waits for that key before
    # handling the symbol's first message past G. The loser handles nothing of the symbol past
    # G meanwhile (not its own), so its state stays as of G. Lanes read the stream in order, so
    # the chain of waits ends, and the symbol's outputs keep its order.
    # An input without checkpoints hands over order only: the gaining lane waits until the
    # losing lane's durable acked everything up to G.

    def _handoff_key(self, stream: str, symbol: str, fence: int) -> str:
        return f"{self.cfg.prefix or 'depthflow'}:handoff:{self.name}:{stream}:{symbol}:{fence}"

    def _state_current(self, inp: StreamInput, symbol: str, seq: int) -> bool:
        # whether the state held for symbol includes every message of it up to seq
        if not self.mine(inp.stream, symbol, seq):
            # frozen since it left (or never here; restored as not current), but complete only
            # once handed over: until then a message of it at or below the fence may come again
            gone = [f for f, s in inp.losses if s == symbol and f < seq]
            return not gone or inp.handed >= gone[-1]
        got = seat_acquired(symbol, seq, self._histories.get(inp.stream, ()))
        return inp.adopted.get(symbol, 0) == (got[0] if got else 0)

    async def _adopt(self, inp: StreamInput, symbol: str, seq: int) -> None:
        """Take over ``symbol``'s state from the seat it came from, if not held yet."""
        got = seat_acquired(symbol, seq, self._histories.get(inp.stream, ()))
        fence = got[0] if got else 0
        if got is None or inp.adopted.get(symbol, 0) == fence:
            return
        frm = got[1]
        ck, store = inp.checkpointing, self._checkpoints
        if gone_at(frm, fence, self._histories.get(inp.stream, ())):
            await self._recover(inp, symbol, fence, frm)
        elif ck is not None and store is not None:
            state = await self._handed_state(inp, symbol, fence, frm)
            if isinstance(state, _Gone):
                await self._recover(inp, symbol, fence, frm)
            elif state is not None:
                self._load(inp, symbol, state, f"{symbol}'s state from {frm} at {fence}")
            elif symbol in ck.target.checkpoint_symbols():
                log.warning("no state handed over, but some held from before; kept",
                            extra={"symbol": symbol, "fence": fence})
        else:
            durable = durable_name(self.name, *frm)

            async def floor() -> int | None:
                done = await self._ack_floor(inp.stream, durable)
                return done if done >= fence else None

            await self._wait_for(f"{frm} to pass {fence}", floor)
        inp.adopted[symbol] = fence
        log.info("symbol taken over", extra={"symbol": symbol, "fence": fence, "from": frm})

    async def _take_orphans(self, inp: StreamInput) -> None:
        """Recover every symbol this replica took from a replica gone at a fence the consumer
        has reached (between messages, after its own hand-offs: a recovery may wait for one).

        Why not only at the symbol's first message past the fence, as a hand-off is taken: what
        the gone replica left unpublished up to the fence would wait for that message, which a
        quiet symbol or the end of a replay never sends."""
        while inp.orphans and inp.orphans[0][0] <= inp.high:
            fence, symbol = inp.orphans[0]
            await self._adopt(inp, symbol, fence + 1)  # a no-op once adopted
            inp.orphans.pop(0)

    async def _handed_state(self, inp: StreamInput, symbol: str, fence: int,
                            frm: Seat) -> bytes | _Gone | None:
        """Wait for the hand-off of ``symbol`` at ``fence``; :class:`_Gone` when ``frm`` was
        taken out of its lane since (it died before writing it: recover instead)."""
        assert self._checkpoints is not None
        r, key = self._checkpoints.r, self._handoff_key(inp.stream, symbol, fence)

        async def attempt() -> bytes | _Gone | None:
            raw = await r.get(key)
            if raw is None and gone_since(frm, fence, self._histories.get(inp.stream, ())):
                return _Gone()
            return cast("bytes | None", raw)

        raw = await self._wait_for(f"{symbol}'s state from {frm} at {fence}", attempt)
        if isinstance(raw, _Gone):
            return raw
        try:
            return msgspec.msgpack.decode(raw, type=_HandOff).state
        except msgspec.DecodeError as exc:
            raise HandOffFailed(f"{symbol}'s state from {frm} at {fence}: {exc!r}") from exc

    def _load(self, inp: StreamInput, symbol: str, state: bytes, what: str) -> None:
        assert inp.checkpointing is not None
        try:
            inp.checkpointing.target.load_state(symbol, state)
        except Exception as exc:
            raise HandOffFailed(f"{what}: {exc!r}") from exc

    async def _recover(self, inp: StreamInput, symbol: str, fence: int, frm: Seat) -> None:
        """Rebuild ``symbol``'s state as of ``fence`` for ``frm``, a replica that left its lane
        (died) without handing it over, and publish what it may not have published.

        The base is ``frm``'s last checkpoint of the symbol if taken in its tenure, else the
        state ``frm`` took over at its start (a hand-off key, or a recovery of its own if its
        predecessor was gone too). Then every message of the symbol after the base up to the
        fence is handled again, publishing: outputs carry the input's sequence in their id, so
        the server drops those ``frm`` had published. The result is written as the hand-off at
        ``fence`` (write-once), for this replica's own restart and any chain after it.
        """
        assert self.bus is not None
        history = self._histories.get(inp.stream, ())
        got = seat_acquired(symbol, fence, history)
        start, state = (got[0] if got else 0), None
        ck, store = inp.checkpointing, self._checkpoints
        if ck is not None and store is not None:
            if got is not None and got[0] > 0:  # at fence 0 there is nothing to take over
                if gone_at(got[1], got[0], history):
                    await self._recover(inp, symbol, got[0], got[1])
                handed = await self._handed_state(inp, symbol, got[0], got[1])
                if isinstance(handed, _Gone):
                    await self._recover(inp, symbol, got[0], got[1])
                    handed = await self._handed_state(inp, symbol, got[0], got[1])
                state = None if isinstance(handed, _Gone) else handed
            theirs = CheckpointStore(store.r, self.cfg.prefix, durable_name(self.name, *frm))
            saved = (await self._wait_for(f"{frm}'s checkpoint", lambda: theirs.load(inp.stream))
                     ).get(symbol)
            if saved is not None and start < saved[0] <= fence and seat_of(symbol, saved[0], history) == frm:
                start, state = saved
            if state is not None:
                self._load(inp, symbol, state, f"{symbol}'s state of {frm} at {start}")
        replayed = await self._replay_symbol(inp, symbol, start, fence)
        if ck is not None and store is not None:
            held = symbol in ck.target.checkpoint_symbols()
            blob = msgspec.msgpack.encode(_HandOff(ck.target.dump_state(symbol) if held else None))
            await self._put_handoff(inp, symbol, fence, blob)
        log.info("symbol recovered from a replica gone", extra={
            "symbol": symbol, "fence": fence, "from": frm, "base": start, "replayed": replayed})

    async def _replay_symbol(self, inp: StreamInput, symbol: str, after: int, upto: int) -> int:
        """Handle ``symbol``'s messages of ``inp`` in ``(after, upto]`` again, publishing."""
        assert self.bus is not None
        js, stream = self.bus.js, self.bus.subjects.stream(inp.stream)
        found: dict[int, Any] = {}
        for pattern in inp.filters:  # the symbol is a subject's last token
            subject, seq = f"{pattern.rsplit('.', 1)[0]}.{symbol}", after + 1
            while seq <= upto:
                try:
                    raw = await js.get_msg(stream, seq, subject=subject, next=True)
                except NotFoundError:
                    break
                if raw.seq is None or raw.seq > upto:
                    break
                found[raw.seq] = raw
                seq = raw.seq + 1
        kind = inp.stream.lower()
        for seq in sorted(found):
            raw = found[seq]
            try:
                msg = inp.decoder.decode(raw.data or b"") if inp.decoder else None
                route = inp.route_for(msg, raw.subject or "")
                if route.admit and self.admission_error(msg) is not None:
                    continue
                outputs = await route.handler(msg, Delivery(raw.subject or "", stream, seq, 1))
            except InvalidMessage:
                continue  # it went to the dead-letter subject the first time
            for n, out in enumerate(outputs):
                await self.publish(out, msg_id=f"{self.name}:{stream}:{seq}:{n}")
            self.metrics.messages.labels(route.kind or kind, self.metrics.symbol(symbol),
                                         self.cfg.lane, "replayed").inc()
        return len(found)

    async def _hand_over(self, inp: StreamInput) -> None:
        """Write the state of every symbol that left this lane at a fence its ack floor reached.

        Called between messages (never with one half-applied). The floor is read from the
        server at most every 0.1 s, and only while a hand-off is due: a fence at or below the
        highest sequence handled here.
        """
        ck, store = inp.checkpointing, self._checkpoints
        due = [(f, sym) for f, sym in inp.losses if inp.handed < f <= inp.high]
        history = self._histories.get(inp.stream, ())
        while due and gone_at(self.seat, due[0][0], history):
            inp.handed = due.pop(0)[0]  # taken out of the lane: the gaining replica recovers it
        if not due:
            return
        if ck is None or store is None:
            inp.handed = due[-1][0]  # order only: the gaining lane waits for our floor itself
            return
        now = time.monotonic()
        if now - inp.floor_checked < 0.1:
            return
        inp.floor_checked = now
        floor = await self._wait_for("the ack floor", lambda: self._ack_floor(inp.stream, self.durable))
        for fence, symbol in due:
            if fence > floor:
                return  # a message at or below the fence may come again: not yet
            await self._adopt(inp, symbol, fence)  # this lane's own copy must be current first
            held = symbol in ck.target.checkpoint_symbols()
            blob = msgspec.msgpack.encode(_HandOff(ck.target.dump_state(symbol) if held else None))
            await self._put_handoff(inp, symbol, fence, blob)
            inp.handed = fence
            log.info("symbol handed over", extra={"symbol": symbol, "fence": fence})

    async def _put_handoff(self, inp: StreamInput, symbol: str, fence: int, blob: bytes) -> None:
        assert self._checkpoints is not None
        r, key = self._checkpoints.r, self._handoff_key(inp.stream, symbol, fence)

        async def put() -> bool:
            await r.set(key, blob, nx=True)  # the first copy stays (a redelivery's, a recovery's)
            return True

        await self._wait_for(f"hand-off of {symbol} at {fence} to be written", put)

    async def _ack_floor(self, stream: str, durable: str) -> int:
        """Return the stream sequence up to which ``durable`` has acked everything."""
        assert self.bus is not None
        info = await self.bus.js.consumer_info(self.bus.subjects.stream(stream), durable)
        return (info.ack_floor.stream_seq if info.ack_floor else 0) or 0

    async def _wait_for(self, what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
        # poll until attempt() gives a value (store and bus errors waited out); give up draining
        said = False
        while True:
            error = None
            try:
                got = await attempt()
                if got is not None:
                    return got
            except _WAIT_ERRORS as exc:
                error = repr(exc)
            if not said:
                log.info("waiting", extra={"for": what, "error": error})
                said = True
            if self._stopping.is_set():
                raise _Abandoned(what)
            await asyncio.sleep(0.05)

    # --- checkpoints ---------------------------------------------------------------------------

    async def _save_checkpoint(self, inp: StreamInput, force: bool = False) -> None:
        # Called only between messages: the state holds exactly the messages up to last_seq.
        ck = inp.checkpointing
        if ck is None or self._checkpoints is None or not inp.last_seq:
            return
        now = time.monotonic()
        if not force and now - ck.last_save < ck.interval_s:
            return
        states = {s: ck.target.dump_state(s) for s in ck.target.checkpoint_symbols()
                  if self._state_current(inp, s, inp.last_seq)}
        ck.last_save = now  # a failed save is tried again after another interval, not each message
        try:
            await self._checkpoints.save(inp.stream, inp.last_seq, states)
        except _STORE_ERRORS as exc:
            # the previous checkpoint still holds an exact (older) state: nothing is lost
            log.warning("checkpoint not saved; retrying at the next interval",
                        extra={"stream": inp.stream, "seq": inp.last_seq, "error": repr(exc)})

    async def _restore(self, inp: StreamInput) -> None:
        """Load the checkpoint, then re-apply (without publishing) what was acked after it."""
        assert self._checkpoints is not None
        assert self.bus is not None
        assert inp.checkpointing is not None
        ck = inp.checkpointing
        saved = await self._checkpoints.load(inp.stream)
        refused = False
        for symbol, (seq, blob) in saved.items():
            try:
                ck.target.load_state(symbol, blob)
            except IncompatibleState as e:
                log.warning("checkpoint in another format: rebuilding from the stream",
                            extra={"stream": inp.stream, "symbol": symbol, "reason": str(e)})
                refused = True
                continue
            ck.restored[symbol] = seq
            # the state saved at seq is the lane's own only where the lane owned the symbol then
            # (saves leave out a symbol owned but not yet taken over, see _state_current)
            if self.mine(inp.stream, symbol, seq):
                got = seat_acquired(symbol, seq, self._histories.get(inp.stream, ()))
                inp.adopted[symbol] = got[0] if got else 0
            else:
                inp.adopted[symbol] = -1  # kept from before a transfer away: never current
        stream = self.bus.subjects.stream(inp.stream)
        try:
            info = await self.bus.js.consumer_info(stream, self.durable)
        except NotFoundError:
            return
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        # a refused state is rebuilt from the stream's start, not from the other symbols' checkpoints
        start = 1 if refused else min(ck.restored.values(), default=0) + 1
        replayed = 0
        for seq in range(start, floor + 1):
            try:
                raw = await self.bus.js.get_msg(stream, seq)
            except NotFoundError:
                continue
            symbol = Subjects.symbol_of(raw.subject or "")
            if seq <= ck.restored.get(symbol, 0) or not self.mine(inp.stream, symbol, seq):
                continue
            try:
                msg = inp.decoder.decode(raw.data or b"") if inp.decoder else None
                route = inp.route_for(msg, raw.subject or "")
                if route.admit and self.admission_error(msg) is not None:
                    continue
                await self._adopt(inp, symbol, seq)
                await route.handler(msg, Delivery(raw.subject or "", stream, seq, 1))
            except InvalidMessage:
                continue  # it went to the dead-letter subject the first time (a handler's refusal too)
            replayed += 1
        inp.last_seq = inp.high = floor
        # hand-offs at or below the floor were due before the crash; one not written then is
        # written now from the restored state (exact as of its fence: saves leave a symbol out
        # until it is handed over, and the replay stops at the floor)
        for fence, symbol in inp.losses:
            if fence > floor:
                break
            if not await self._checkpoints.r.exists(self._handoff_key(inp.stream, symbol, fence)):
                log.info("hand-off not written before the restart", extra={"symbol": symbol})
                break
            inp.handed = fence
        log.info("state restored", extra={"stream": stream, "symbols": len(saved), "replayed": replayed,
                                           "checkpoint_seq": start - 1, "ack_floor": floor})

    def _observe_output(self, out: Output) -> None:
        kind = type(out.message).__name__
        sym = self.metrics.symbol(getattr(out.message, "symbol", "other"))
        self.metrics.published.labels(kind, sym, self.cfg.lane).inc()
        origin = getattr(out.message, "origin_ts", 0)
        if origin:
            age = max(0.0, (time.time_ns() - origin) / 1e9)
            self.metrics.origin_latency.labels(kind, self.cfg.lane).observe(age)

    async def _dead_letter(self, kind: str, m: Any, reason: str, symbol: str) -> None:
        assert self.bus is not None
        log.warning("dead letter", extra={"subject": m.subject, "reason": reason})
        meta = m.metadata
        await self.bus.dead_letter(
            self.name, m.subject, meta.stream, meta.sequence.stream, m.data, m.headers, reason
        )
        await self._ack(m)
        self.metrics.dead_letters.labels(kind, self.cfg.lane).inc()
        self.metrics.messages.labels(
            kind, self.metrics.symbol(symbol), self.cfg.lane, "dead_letter"
        ).inc()

    # --- HTTP ----------------------------------------------------------------------------------

    async def _serve_http(self) -> web.AppRunner:
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def readyz(_: web.Request) -> web.Response:
            ok = (self._ready and self.bus is not None and self.bus.nc.is_connected
                  and all(check() for check in self._ready_checks))
            return web.Response(status=200 if ok else 503, text="ready" if ok else "not ready")

        async def metrics(_: web.Request) -> web.Response:
            body = generate_latest(self.metrics.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.cfg.http_host, self.cfg.http_port)
        await site.start()
        self._http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    @property
    def http_port(self) -> int:
        return self._http_port


def run_main(build: Callable[[], Awaitable[Service]]) -> None:
    """Entry point helper: build the service (config errors exit 2 with the message), run it."""
    from depthflow.common.config import ConfigError

    async def _main() -> None:
        service = await build()
        await service.run()

    try:
        asyncio.run(_main())
    except (ConfigError, Unreachable) as exc:
        raise SystemExit(f"{exc}") from None

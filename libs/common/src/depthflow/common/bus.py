"""JetStream plumbing shared by every service: streams, KV buckets, publish, dead letters.

Semantics (ARCHITECTURE §4):
- Streams ``MD AGG PEAKS SIGNALS RISK DLQ`` and KV buckets ``routes`` and ``control`` are created
  or updated idempotently by :meth:`Bus.bootstrap`; services call :meth:`Bus.verify` at start and
  refuse to run against a server whose streams do not match.
- Every publish carries ``Nats-Msg-Id``; the server drops a second copy within the duplicate
  window, so a redelivery after a crash never doubles an output.
- Anything that cannot be decoded or validated goes whole to ``dlq.<service>`` with the reason.
- Outages are waited out, not fatal: the client reconnects for ever, and a publish that fails
  while the server is away is sent again with the same ``Nats-Msg-Id`` (so it never doubles)
  until JetStream acknowledges it. Only the first connection is bounded, so a wrong URL is an
  error naming the setting instead of a service that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass

import msgspec
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NoStreamResponseError, NotFoundError, ServiceUnavailableError

from depthflow.common.codec import encode
from depthflow.common.endpoints import NATS_URL_ENV
from depthflow.common.messages import DeadLetter
from depthflow.common.redact import mask_url
from depthflow.common.retention import DEFAULT_BUDGET_GIB, GIB, Load, plan_retention
from depthflow.common.subjects import STREAM_DOMAINS, Subjects
from depthflow.common.telemetry import inject_trace

KV_BUCKETS = ("routes", "control")
DUPLICATE_WINDOW_S = 600.0
log = logging.getLogger("depthflow.bus")

#: What a request to JetStream raises while the server is away or still recovering its streams:
#: worth the same request again once connected, never a reason to give up on a message.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    NoStreamResponseError,  # no responders: JetStream not up yet after a restart
    ServiceUnavailableError,
    TimeoutError,
    ConnectionError,
)
#: What a fetch may raise and the consumer waits out: the transient errors and any other client
#: error (the durable consumer keeps the place).
FETCH_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, nats.errors.Error)


class Unreachable(RuntimeError):
    """A server did not answer within the start-up bound; the message names the setting."""


class _Throttled:
    """Log a recurring connection error once per ``every_s`` instead of a traceback a second."""

    def __init__(self, what: str, every_s: float = 10.0) -> None:
        self.what = what
        self.every_s = every_s
        self.last: float = -every_s
        self.error: BaseException | None = None

    def __call__(self, exc: BaseException) -> None:
        self.error = exc
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            log.warning("%s: %s", self.what, exc or type(exc).__name__)


@dataclass(frozen=True)
class StreamLimits:
    """Retention of one stream: what the bus keeps for replay and audit."""

    max_age_s: float
    max_bytes: int


def planned_limits(
    load: Load | None = None, budget_gib: float = DEFAULT_BUDGET_GIB
) -> dict[str, StreamLimits]:
    """Stream limits from the retention plan (see :mod:`depthflow.common.retention`)."""
    plan = plan_retention(load or Load(), int(budget_gib * GIB))
    return {name: StreamLimits(p.max_age_s, p.max_bytes) for name, p in plan.items()}


class BusMismatch(RuntimeError):
    """The server's streams are missing or differ from what this code expects."""


class Bus:
    """A NATS connection with JetStream, within one subject namespace."""

    def __init__(self, nc: NatsClient, subjects: Subjects) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.subjects = subjects

    @classmethod
    async def connect(
        cls, url: str, prefix: str = "", name: str = "depthflow", within_s: float = 15.0
    ) -> Bus:
        """Connect within ``within_s`` seconds, else raise :class:`Unreachable`.

        Once connected the client reconnects for ever (``max_reconnect_attempts=-1``): an outage
        later is waited out, with one log line per disconnect and reconnect.
        """
        errors = _Throttled(f"NATS {mask_url(url)}")

        async def on_error(exc: Exception) -> None:
            errors(exc)

        async def on_disconnect() -> None:
            if not nc.is_closed:  # a close of ours is no outage
                log.warning("NATS disconnected; reconnecting")

        async def on_reconnect() -> None:
            log.warning("NATS reconnected")

        nc = NatsClient()
        try:
            await asyncio.wait_for(
                nc.connect(
                    url, name=name, connect_timeout=max(1, math.ceil(min(5.0, within_s))),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1, error_cb=on_error, disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                ),
                within_s,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            last = errors.error or exc
            raise Unreachable(
                f"cannot reach NATS at {mask_url(url)} ({NATS_URL_ENV}) within {within_s:g}s"
                f" (last error: {last or type(last).__name__})"
            ) from exc
        return cls(nc, Subjects(prefix))

    async def wait_connected(self, poll_s: float = 0.2) -> None:
        """Return once the connection is up (at once if it is); a closed client raises."""
        while not self.nc.is_connected:
            if self.nc.is_closed:
                raise nats.errors.ConnectionClosedError
            await asyncio.sleep(poll_s)

    async def close(self) -> None:
        """Flush what was published or acked, then close (pull subscriptions need no drain)."""
        if not self.nc.is_closed:
            if self.nc.is_connected:
                await self.nc.flush(timeout=5)
            await self.nc.close()

    def _stream_config(self, name: str, limits: StreamLimits) -> StreamConfig:
        return StreamConfig(
            name=self.subjects.stream(name),
            subjects=self.subjects.stream_subjects(name),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=limits.max_age_s,
            max_bytes=limits.max_bytes,
            duplicate_window=DUPLICATE_WINDOW_S,
        )

    async def bootstrap(self, limits: dict[str, StreamLimits] | None = None) -> None:
        """Create or update every stream and KV bucket; safe to run any number of times.

        Without ``limits`` the default retention plan applies (two symbols, 20 GiB)."""
        limits = limits or planned_limits()
        for name in STREAM_DOMAINS:
            cfg = self._stream_config(name, limits[name])
            try:
                await self.js.stream_info(self.subjects.stream(name))
                await self.js.update_stream(cfg)
            except NotFoundError:
                await self.js.add_stream(cfg)
        for bucket in KV_BUCKETS:
            name = self.subjects.kv_bucket(bucket)
            try:
                await self.js.key_value(name)
            except NotFoundError:
                await self.js.create_key_value(KeyValueConfig(bucket=name, history=16))

    async def verify(self, streams: list[str] | None = None) -> None:
        """Raise :class:`BusMismatch` unless every stream exists with the expected subjects."""
        for name in streams or list(STREAM_DOMAINS):
            stream = self.subjects.stream(name)
            try:
                info = await self.js.stream_info(stream)
            except NotFoundError as exc:
                raise BusMismatch(
                    f"stream {stream} does not exist; run `depthflow bootstrap` first"
                ) from exc
            want = self.subjects.stream_subjects(name)
            if sorted(info.config.subjects or []) != sorted(want):
                raise BusMismatch(
                    f"stream {stream} captures {info.config.subjects}, expected {want}"
                )

    async def publish(
        self, subject: str, message: msgspec.Struct, msg_id: str, headers: dict[str, str] | None = None
    ) -> bool:
        """Publish and wait for JetStream's ack; return False if it was a duplicate.

        During an outage the same message (same ``Nats-Msg-Id``) is sent again until JetStream
        acknowledges it: the server keeps one copy, however many attempts reached it. The
        caller bounds the wait by cancelling (a draining service does).
        """
        hdrs = inject_trace(dict(headers or {}))
        hdrs["Nats-Msg-Id"] = msg_id
        payload = encode(message)
        delay = 0.1
        while True:
            try:
                ack = await self.js.publish(subject, payload, headers=hdrs)
                return not ack.duplicate
            except TRANSIENT_ERRORS as exc:
                if self.nc.is_closed:
                    raise
                log.warning("publish to %s failed (%r); retrying with the same id", subject, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            await self.wait_connected()

    async def dead_letter(
        self,
        service: str,
        subject: str,
        stream: str,
        seq: int,
        payload: bytes,
        headers: dict[str, str] | None,
        reason: str,
    ) -> None:
        """Keep an unusable input whole on ``dlq.<service>`` with the reason."""
        letter = DeadLetter(
            service=service,
            subject=subject,
            stream=stream,
            stream_seq=seq,
            reason=reason,
            payload=payload,
            headers=dict(headers or {}),
            ts_init=time.time_ns(),
        )
        await self.publish(
            self.subjects.dlq(service), letter, msg_id=f"{service}:dlq:{stream}:{seq}"
        )

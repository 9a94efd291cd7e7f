"""JetStream plumbing shared by every service: streams, KV buckets, publish, dead letters.

Semantics (ARCHITECTURE §4):
- Streams ``MD AGG PEAKS SIGNALS RISK DLQ`` and KV buckets ``routes`` and ``control`` are created
  or updated idempotently by :meth:`Bus.bootstrap`; services call :meth:`Bus.verify` at start and
  refuse to run against a server whose streams do not match.
- Every publish carries ``Nats-Msg-Id``; the server drops a second copy within the duplicate
  window, so a redelivery after a crash never doubles an output.
- Anything that cannot be decoded or validated goes whole to ``dlq.<service>`` with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from depthflow.common.codec import encode
from depthflow.common.messages import DeadLetter
from depthflow.common.subjects import STREAM_DOMAINS, Subjects
from depthflow.common.telemetry import inject_trace

KV_BUCKETS = ("routes", "control")
DUPLICATE_WINDOW_S = 600.0


@dataclass(frozen=True)
class StreamLimits:
    """Retention of one stream: what the bus keeps for replay and audit."""

    max_age_s: float
    max_bytes: int


DEFAULT_LIMITS: dict[str, StreamLimits] = {
    "MD": StreamLimits(6 * 3600, 2 << 30),
    "AGG": StreamLimits(6 * 3600, 2 << 30),
    "PEAKS": StreamLimits(24 * 3600, 1 << 30),
    "SIGNALS": StreamLimits(7 * 86400, 1 << 30),
    "RISK": StreamLimits(30 * 86400, 1 << 30),
    "DLQ": StreamLimits(30 * 86400, 1 << 30),
}


class BusMismatch(RuntimeError):
    """The server's streams are missing or differ from what this code expects."""


class Bus:
    """A NATS connection with JetStream, within one subject namespace."""

    def __init__(self, nc: NatsClient, subjects: Subjects) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.subjects = subjects

    @classmethod
    async def connect(cls, url: str, prefix: str = "", name: str = "depthflow") -> Bus:
        nc = await nats.connect(
            url, name=name, connect_timeout=5, max_reconnect_attempts=-1, reconnect_time_wait=1,
        )
        return cls(nc, Subjects(prefix))

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
        """Create or update every stream and KV bucket; safe to run any number of times."""
        limits = {**DEFAULT_LIMITS, **(limits or {})}
        for name in STREAM_DOMAINS:
            cfg = self._stream_config(name, limits[name])
            try:
                await self.js.stream_info(cfg.name)
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
        """Publish and wait for JetStream's ack; return False if it was a duplicate."""
        hdrs = inject_trace(dict(headers or {}))
        hdrs["Nats-Msg-Id"] = msg_id
        ack = await self.js.publish(subject, encode(message), headers=hdrs)
        return not ack.duplicate

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

"""Metrics and traces for every service.

Metrics: one Prometheus registry per service, named ``depthflow_<service>_<what>_<unit>``, with
``symbol`` and ``lane`` labels kept to bounded sets (a symbol outside the configured list is
counted as ``other``, so a bad feed cannot explode the series count).

Traces: W3C ``traceparent`` travels in NATS headers, so one market event is one trace from the
collector to risk. Spans are exported over OTLP/HTTP only when an endpoint is configured; without
one, spans are still created and propagated (ids are needed for correlation in logs).

The lane (and replica) of the process is on every metric (``lane`` label), every log line
(``lane``, ``replica``) and every span (``depthflow.lane`` / ``depthflow.replica`` attributes,
and the tracer resource's), so a canary's errors or latency can be told from stable's anywhere.
The process's identity is set once (:func:`identify`); :class:`Metrics` sets the lane, being the
telemetry object every service builds with it first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_tracing_ready = False
#: This process's lane and replica, as its logs and spans report them (the replica only once
#: someone says which: a wrong "0" would be worse than none).
_identity: dict[str, str] = {"lane": "stable"}


def identify(lane: str | None = None, replica: str | None = None) -> dict[str, str]:
    """Set this process's lane and/or replica (None: unchanged); return the identity."""
    if lane is not None:
        _identity["lane"] = lane
    if replica is not None:
        _identity["replica"] = replica
    return dict(_identity)


class LaneSpans(SpanProcessor):
    """Stamp every span with the process's lane and replica when it starts."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        for key, value in _identity.items():
            span.set_attribute(f"depthflow.{key}", value)


def setup_tracing(service: str, otel_endpoint: str, lane: str | None = None,
                  replica: str | None = None) -> trace.Tracer:
    """Install the process-wide tracer provider once and return this service's tracer."""
    global _tracing_ready
    ident = identify(lane, replica)
    if not _tracing_ready:
        provider = TracerProvider(resource=Resource.create({
            "service.name": f"depthflow-{service}", **{f"depthflow.{k}": v for k, v in ident.items()}}))
        provider.add_span_processor(LaneSpans())
        if otel_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otel_endpoint.rstrip("/") + "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        _tracing_ready = True
    return trace.get_tracer(f"depthflow.{service}")


def inject_trace(headers: dict[str, str]) -> dict[str, str]:
    """Add the current span's ``traceparent`` to ``headers`` and return them."""
    propagate.inject(headers)
    return headers


def extract_trace(headers: Mapping[str, str] | None) -> otel_context.Context:
    """Return the trace context carried by ``headers`` (an empty one if none)."""
    return propagate.extract(dict(headers or {}))


class Metrics:
    """The metrics every service exposes; services add their own to ``registry``."""

    def __init__(self, service: str, lane: str, symbols: Iterable[str]) -> None:
        self.service = service.replace("-", "_")
        self.lane = lane
        identify(lane=lane)  # logs and spans carry it too
        self.registry = CollectorRegistry()
        self._symbols = frozenset(symbols)
        p = f"depthflow_{self.service}"
        self.messages = Counter(
            f"{p}_messages", "Input messages by kind and outcome (ok, dead_letter, retry).",
            ["kind", "symbol", "lane", "outcome"], registry=self.registry,
        )
        self.published = Counter(
            f"{p}_published_messages", "Messages published by kind.",
            ["kind", "symbol", "lane"], registry=self.registry,
        )
        self.handle_seconds = Histogram(
            f"{p}_handle_seconds", "Time to handle one input, publishing included.",
            ["kind", "lane"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.origin_latency = Histogram(
            f"{p}_origin_latency_seconds", "From the market event (origin_ts) to this output.",
            ["kind", "lane"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.dead_letters = Counter(
            f"{p}_dead_letters", "Inputs sent to the dead-letter subject.",
            ["kind", "lane"], registry=self.registry,
        )
        self.ready = Gauge(f"{p}_ready", "1 when consuming.", ["lane"], registry=self.registry)

    def symbol(self, symbol: str) -> str:
        """Return ``symbol`` as a label value, or ``other`` outside the configured set."""
        return symbol if symbol in self._symbols else "other"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the active trace and span ids for correlation."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": record.created,
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            **_identity,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = f"{span.trace_id:032x}"
            out["span_id"] = f"{span.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in self._STANDARD:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(service: str, level: str, lane: str | None = None, replica: str | None = None) -> None:
    """Send structured JSON logs to stderr (the container log), each line with the lane."""
    identify(lane, replica)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

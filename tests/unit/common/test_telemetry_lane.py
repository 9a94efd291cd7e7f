"""Every log line and span of a process says its lane (and replica, once known), as its metrics
do: a canary's errors and latency can be told from stable's in logs and traces too."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from depthflow.common import telemetry
from depthflow.common.telemetry import JsonFormatter, LaneSpans, Metrics, identify


@pytest.fixture(autouse=True)
def _identity_restored():
    """Each test starts from a process that said nothing yet (another test in this worker may
    have built a Service, which says its lane and replica), and leaves the identity as found."""
    before = dict(telemetry._identity)
    telemetry._identity.clear()
    telemetry._identity["lane"] = "stable"
    yield
    telemetry._identity.clear()
    telemetry._identity.update(before)


def test_metrics_set_the_lane_that_log_lines_then_carry() -> None:
    Metrics("peaks", "canary", ["BTCFDUSD"])
    record = logging.makeLogRecord({"name": "depthflow.runtime", "levelname": "INFO", "msg": "ready"})
    line = json.loads(JsonFormatter("peaks").format(record))
    assert line["lane"] == "canary"
    assert "replica" not in line  # not said yet: no guess
    identify(replica="2")
    assert json.loads(JsonFormatter("peaks").format(record))["replica"] == "2"


def test_every_span_is_stamped_with_the_lane_and_replica() -> None:
    identify(lane="canary", replica="1")
    provider = TracerProvider()
    provider.add_span_processor(LaneSpans())
    with provider.get_tracer("t").start_as_current_span("handle") as span:
        assert span.attributes["depthflow.lane"] == "canary"
        assert span.attributes["depthflow.replica"] == "1"


def test_a_service_says_its_lane_and_replica_in_every_log_line() -> None:
    from depthflow.common.config import RuntimeConfig
    from depthflow.common.runtime import Service

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        Service("peaks", RuntimeConfig(lane="canary", replica="3"))
    finally:
        root.handlers[:], root.level = handlers, level
    record = logging.makeLogRecord({"name": "depthflow.runtime", "levelname": "INFO", "msg": "ready"})
    line = json.loads(JsonFormatter("peaks").format(record))
    assert (line["lane"], line["replica"]) == ("canary", "3")

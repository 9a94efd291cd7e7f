"""The operator's lane parts without servers: the topology's processes and the supervisor's
answer a command waits for, the ``--canary`` options, the automatic-rollback verdict and the
per-lane readings of ``/metrics``."""

from __future__ import annotations

import re
import threading
import time

import pytest
from prometheus_client import generate_latest

from depthflow.common.telemetry import Metrics
from depthflow.ctl.canary import Failed, Refused, SupervisorDeployer
from depthflow.ctl.commands.canary import canary_spec
from depthflow.ctl.guard import CanaryGuard, verdict
from depthflow.ctl.lanemetrics import Reading, parse
from depthflow.ctl.stack import Want
from depthflow.ctl.summary import lane_counts, render_lanes
from depthflow.ctl.supervisor import RunLock
from depthflow.ctl.topology import Applied, Lane, Shape, Topology, TopologyFile

SYMBOLS = ["BTCFDUSD", "ETHFDUSD"]


def test_the_topology_wants_every_replica_then_the_canary(tmp_path) -> None:
    file = TopologyFile(tmp_path)
    assert file.read() == Topology()
    with file.change() as box:
        box[0] = box[0].with_shape("peaks", Shape(stable=Lane(replicas=2), canary=Lane(env={"A": "1"})))
    got = file.read().wanted(("aggregator", "peaks"))
    assert got == [Want("aggregator"), Want("peaks", "stable", "0"), Want("peaks", "stable", "1"),
                   Want("peaks", "canary", "0", (("A", "1"),))]
    assert [w.key for w in got] == ["aggregator", "peaks", "peaks.stable.1", "peaks.canary.0"]
    with pytest.raises(ValueError, match="unknown service"):
        file.read().with_shape("nosuch", Shape())


def test_canary_options_name_the_service_symbols_and_settings() -> None:
    assert canary_spec(None, [], SYMBOLS) is None
    assert canary_spec("peaks:ETHFDUSD", [], SYMBOLS) == (
        "peaks", ["ETHFDUSD"], {"DEPTHFLOW_PEAKS_RUNTIME__FETCH_BATCH": "32"})
    assert canary_spec("ai-fusion", ["DEPTHFLOW_AI_FUSION_X=2"], SYMBOLS) == (
        "ai-fusion", [], {"DEPTHFLOW_AI_FUSION_X": "2"})
    for spec, sets, why in [
        ("peaks:DOGE", [], "unknown symbol"), ("nosuch", [], "unknown service"),
        ("peaks", ["X=1"], "DEPTHFLOW_NAME=VALUE"), (None, ["DEPTHFLOW_X=1"], "needs --canary"),
    ]:
        with pytest.raises(Refused, match=why):
            canary_spec(spec, sets, SYMBOLS)


def _reading(ok: float, dead: float = 0.0, slow: bool = False) -> Reading:
    le = 0.5 if slow else 0.001
    return Reading({"ETHFDUSD": {"ok": ok, "dead_letter": dead, "skipped": 7.0}},
                   {0.001: 0.0 if slow else ok, 0.5: ok, float("inf"): ok} if ok else {le: 0.0})


def test_the_verdict_compares_the_canary_with_stable_over_enough_messages() -> None:
    guard = CanaryGuard(max_error_ratio=3, max_p99_ratio=5, min_messages=20)
    stable = _reading(1000)
    assert verdict(guard, stable, _reading(9, dead=10)) is None  # 19: too few to say
    assert verdict(guard, stable, _reading(99, dead=1)) is None  # 1 % is within 3 x the 1 % floor
    why = verdict(guard, stable, _reading(90, dead=10))
    assert why is not None
    assert why.startswith("error rate 10.0% (10 of 100) > 3 x stable's 0.0%")
    assert verdict(guard, _reading(1000, dead=100), _reading(90, dead=10)) is None  # stable as bad
    why = verdict(guard, stable, _reading(100, slow=True))
    assert why is not None
    assert why.startswith("p99 handling time 500 ms > 5 x stable's 1 ms")


def test_readings_come_from_the_services_own_metrics() -> None:
    m = Metrics("ai-fusion", "canary", SYMBOLS)
    m.messages.labels("zones", "ETHFDUSD", "canary", "ok").inc(3)
    m.messages.labels("book", "ETHFDUSD", "canary", "ok").inc(2)
    m.messages.labels("zones", "BTCFDUSD", "canary", "skipped").inc(4)
    m.handle_seconds.labels("zones", "canary").observe(0.02)
    r = parse(generate_latest(m.registry).decode(), "ai-fusion")
    assert r.handled("ETHFDUSD") == 5
    assert r.outcome("skipped") == 4
    assert r.p99() == 0.025
    lanes = lane_counts({"ai-fusion": {"ETHFDUSD": "canary"}}, {("ai-fusion", "canary"): r},
                        {("ai-fusion", "canary"): 1}, SYMBOLS)
    c = lanes["ai-fusion"]["canary"]
    assert (c.symbols, c.handled, c.skipped) == (["ETHFDUSD"], {"BTCFDUSD": 0, "ETHFDUSD": 5}, 4)
    assert render_lanes(lanes) == [
        "  ai-fusion  canary x1  owns ETHFDUSD              handled BTCFDUSD 0  ETHFDUSD 5  skipped 4"
        "  dead letters 0"]


async def test_a_command_waits_for_the_supervisors_answer_and_fails_with_its_reason(tmp_path) -> None:
    # the record of processes alone changes before a process stopped has drained and its lane
    # is retired; a command waits for the supervisor's answer to its change of the file
    lock = RunLock(tmp_path)
    assert lock.acquire()
    try:
        file = TopologyFile(tmp_path)
        assert file.applied() == Applied()
        deployer = SupervisorDeployer(tmp_path)

        def supervisor_refuses() -> None:
            while file.stamp() == 0.0:
                time.sleep(0.01)
            file.mark_applied(file.stamp(), "peaks.canary.0 did not become ready")

        refusing = threading.Thread(target=supervisor_refuses)
        refusing.start()
        with pytest.raises(Failed, match=re.escape("could not run peaks as asked: peaks.canary.0 did not")):
            await deployer.deploy("peaks", Shape(canary=Lane(env={"A": "1"})))
        refusing.join()
        assert file.applied() == Applied(stamp=file.stamp(), error="peaks.canary.0 did not become ready")
    finally:
        lock.release()

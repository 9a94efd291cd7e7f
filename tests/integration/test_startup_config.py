"""A service given a bad configuration value refuses to start and names the field."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "env", "field"),
    [
        ("depthflow.aggregator", {"DEPTHFLOW_AGGREGATOR_BUCKET_SIZE": "-1"}, "aggregator.bucket_size"),
        ("depthflow.risk", {"DEPTHFLOW_RISK_LIMITS__MAX_DRAWDOWN_PCT": "1.5"},
         "risk.limits.max_drawdown_pct"),
        ("depthflow.collector", {"DEPTHFLOW_COLLECTOR_DEPTH": "many"}, "collector.depth"),
        ("depthflow.peaks", {"DEPTHFLOW_MAX_ACK_PENDING": "0"}, "peaks.runtime.max_ack_pending"),
        ("depthflow.risk", {"DEPTHFLOW_RISK_EXECUTION": "live"}, "live_confirm"),
    ],
)
def test_bad_config_stops_startup_naming_the_field(module, env, field):
    proc = subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert field in proc.stderr
    assert "invalid config" in proc.stderr

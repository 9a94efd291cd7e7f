"""A service given a bad configuration value refuses to start and names the field."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "env", "field"),
    [
        ("depthflow.aggregator", {"DEPTHFLOW_AGGREGATOR_BUCKET_TARGET_REL": "-1"},
         "aggregator.bucket_target_rel"),
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


def _run(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEPTHFLOW_")}
    return subprocess.run([sys.executable, "-m", module], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("module", "setting"),
    [
        ("depthflow.collector", "DEPTHFLOW_NATS_URL"),
        ("depthflow.aggregator", "DEPTHFLOW_REDIS_URL"),
        ("depthflow.risk", "DEPTHFLOW_POSTGRES_URL"),
    ],
)
def test_a_service_without_a_server_url_refuses_to_start(module, setting, tmp_path):
    """No guessed default port: the one config file with every section gets past each service's
    parsing (the others' sections are ignored), then the missing URL is named."""
    path = tmp_path / "depthflow.yaml"
    path.write_text(
        "runtime:\n  symbols: [BTCFDUSD]\n"
        "aggregator:\n  bucket_sizes: {BTCFDUSD: 1.0}\n"
        "risk:\n  limits:\n    max_position_pct: 0.05\n"
        "collector:\n  source: generator\n"
    )
    env = {"DEPTHFLOW_CONFIG": str(path), "DEPTHFLOW_NATS_URL": "nats://127.0.0.1:1"}
    if setting == "DEPTHFLOW_NATS_URL":
        del env["DEPTHFLOW_NATS_URL"]
    proc = _run(module, env)
    assert proc.returncode != 0
    assert f"{setting} is not set" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_mistyped_shared_variable_stops_startup() -> None:
    proc = _run("depthflow.peaks", {"DEPTHFLOW_SYMBOL": "BTCFDUSD"})
    assert proc.returncode != 0
    assert "unknown variable DEPTHFLOW_SYMBOL (did you mean DEPTHFLOW_SYMBOLS?)" in proc.stderr

"""``up`` and ``bootstrap`` size the streams from the plan: the symbols asked for, the collector's
depth and cadence as configured, within ``stream_budget_gib`` (and, for ``up``, half the free
disk); a budget too small for the wanted retention is refused with the plan's message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from depthflow.common.bus import planned_limits
from depthflow.common.config import ConfigError
from depthflow.common.retention import GIB, Load, describe, plan_retention
from depthflow.ctl.streamplan import half_free_disk_gib, plan_streams


def test_the_collectors_settings_and_the_budget_size_the_streams() -> None:
    env = {"DEPTHFLOW_COLLECTOR_DEPTH": "1000", "DEPTHFLOW_COLLECTOR_SNAPSHOT_INTERVAL_S": "2",
           "DEPTHFLOW_STREAM_BUDGET_GIB": "3"}
    load = Load(symbols=3, depth_levels=1000, snapshot_interval_s=2.0)
    streams = plan_streams(3, environ=env)
    assert streams.limits == planned_limits(load, 3.0)
    assert streams.description == describe(plan_retention(load, 3 * GIB))


def test_the_disk_caps_the_budget() -> None:
    assert plan_streams(2, disk_cap_gib=4.0, environ={}).limits == planned_limits(Load(symbols=2), 4.0)
    assert plan_streams(2, disk_cap_gib=400.0, environ={}).limits == planned_limits(Load(symbols=2), 20.0)


def test_a_budget_too_small_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="raise stream_budget_gib") as small:
        plan_streams(2, environ={"DEPTHFLOW_STREAM_BUDGET_GIB": "0.2"})
    assert "half the free disk" not in str(small.value)
    capped = r"half the free disk of the state folder, below stream_budget_gib 20\)"
    with pytest.raises(ValueError, match=capped):
        plan_streams(2, disk_cap_gib=0.2, environ={})


def test_a_bad_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"collector\.depth"):
        plan_streams(2, environ={"DEPTHFLOW_COLLECTOR_DEPTH": "many"})


def test_half_the_free_disk_of_a_folder_not_made_yet(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free / 2 / GIB
    assert half_free_disk_gib(tmp_path / "state" / "deeper") == pytest.approx(free, rel=0.01)

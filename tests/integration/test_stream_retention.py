"""Bootstrap gives every stream on the real server the retention the plan computed."""

from __future__ import annotations

import pytest

from depthflow.common.bus import Bus, planned_limits
from depthflow.common.retention import Load
from depthflow.common.subjects import STREAM_DOMAINS
from depthflow.devstack.testing.plugin import TEST_LIMITS


async def _limits(bus: Bus) -> dict[str, tuple[float, int]]:
    out = {}
    for name in STREAM_DOMAINS:
        info = await bus.js.stream_info(bus.subjects.stream(name))
        out[name] = (info.config.max_age, info.config.max_bytes)
    return out


async def test_streams_get_the_planned_age_and_bytes_and_a_new_plan_updates_them(bus: Bus) -> None:
    got = await _limits(bus)
    for name, want in TEST_LIMITS.items():
        assert got[name][0] == pytest.approx(want.max_age_s, abs=1e-6)
        assert got[name][1] == want.max_bytes
    more = planned_limits(Load(symbols=4, depth_levels=1000), budget_gib=3.0)
    await bus.bootstrap(more)
    got = await _limits(bus)
    for name, want in more.items():
        assert got[name][0] == pytest.approx(want.max_age_s, abs=1e-6)
        assert got[name][1] == want.max_bytes
    assert got["MD"] != (TEST_LIMITS["MD"].max_age_s, TEST_LIMITS["MD"].max_bytes)

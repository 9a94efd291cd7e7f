"""Stream retention plans: the bytes hold the stated age, the budget holds every stream."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.common.retention import (
    GIB,
    MIN_AGE_S,
    NATS_OVERHEAD_B,
    WANTED_AGE_S,
    Load,
    plan_retention,
    stream_rates,
)

loads = st.builds(
    Load,
    symbols=st.integers(1, 200),
    depth_levels=st.sampled_from([100, 1000, 5000]),
    snapshot_interval_s=st.sampled_from([0.5, 1.0, 5.0]),
    trades_per_s=st.floats(0.1, 500),
)


def test_a_5000_level_book_stream_is_sized_from_its_real_bytes() -> None:
    # independent arithmetic: 2 sides x 2 arrays x 5000 levels x 8 bytes, once a second
    arrays = 2 * 2 * 5000 * 8
    one = stream_rates(Load(symbols=1, trades_per_s=0.0, trade_batches_per_s=1e-9))["MD"]
    assert arrays <= one <= arrays + 1000 + NATS_OVERHEAD_B
    ten = stream_rates(Load(symbols=10, trades_per_s=0.0, trade_batches_per_s=1e-9))["MD"]
    assert ten == pytest.approx(10 * one)


@settings(max_examples=200, deadline=None)
@given(load=loads, budget_gib=st.floats(0.5, 5000))
def test_a_plan_keeps_its_stated_age_within_its_bytes_and_the_budget(load: Load, budget_gib: float) -> None:
    try:
        plan = plan_retention(load, int(budget_gib * GIB), headroom=1.5)
    except ValueError as exc:
        why = str(exc)
        plan = {}
    else:
        why = ""
    if not plan:
        assert "raise stream_budget_gib" in why
        return
    assert sum(p.max_bytes for p in plan.values()) <= budget_gib * GIB
    for name, p in plan.items():
        assert MIN_AGE_S <= p.max_age_s <= WANTED_AGE_S[name]
        # the age the server is told is one the bytes really hold, at the estimated rate
        assert p.bytes_per_s * p.max_age_s <= p.max_bytes * (1 + 1e-9)
        assert p.shortened == (p.max_age_s < WANTED_AGE_S[name])


@settings(max_examples=100, deadline=None)
@given(load=loads, budget_gib=st.floats(1, 1000))
def test_more_budget_never_shortens_a_stream(load: Load, budget_gib: float) -> None:
    try:
        small = plan_retention(load, int(budget_gib * GIB))
    except ValueError:
        return
    big = plan_retention(load, int(2 * budget_gib * GIB))
    for name in small:
        assert big[name].max_age_s >= small[name].max_age_s * (1 - 1e-9)


def test_an_ample_budget_keeps_every_wanted_age_and_a_tight_one_shortens_market_data_first() -> None:
    ample = plan_retention(Load(symbols=2), 1000 * GIB)
    assert all(not p.shortened for p in ample.values())
    tight = plan_retention(Load(symbols=2), 8 * GIB)
    assert tight["MD"].shortened
    assert tight["AGG"].shortened
    assert not tight["PEAKS"].shortened  # small streams get all they need first


def test_a_budget_that_would_keep_minutes_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="stream_budget_gib") as err:
        plan_retention(Load(symbols=100), GIB)
    assert "100 symbol(s)" in str(err.value)

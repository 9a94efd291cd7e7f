"""Every numeric core fails closed: fed NaN, +-inf, 0, negative, 1e300, 1e-300 and huge ranges,
it either raises a clear ``ValueError`` or returns output that is entirely finite (issue 8: one
NaN that a core passed on became a maximum-confidence BUY)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthflow.aggregator.bucketing import bucket_side
from depthflow.aggregator.profile import NS_PER_MIN, RollingProfile
from depthflow.ai_fusion.fusion import _clip, components, weighted_score
from depthflow.peaks import find_wave_peaks
from depthflow.peaks.zones import analyse

EXTREME = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e300, -1e300, 1e-300, 5e-324, 1e15, 1.0, 60_000.0]
values = st.one_of(st.sampled_from(EXTREME), st.floats(allow_nan=True, allow_infinity=True))
prices = st.one_of(st.sampled_from(EXTREME), st.floats(1e-3, 1e7))
arrays = st.lists(values, max_size=40).map(np.array)
price_arrays = st.lists(prices, max_size=40).map(np.array)
sizes = st.sampled_from([math.nan, math.inf, -1.0, 0.0, 1e-300, 0.01, 1.0, 1e300])
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def finite(*xs: object) -> bool:
    """Whether every number in ``xs`` (scalars, arrays, nested lists and tuples) is finite."""
    return all(np.isfinite(np.asarray(x, dtype=np.float64)).all() for x in _flat(xs))


def _flat(x: object) -> list:
    if isinstance(x, list | tuple) and not hasattr(x, "_fields"):
        return [y for item in x for y in _flat(item)]
    if hasattr(x, "_fields"):  # a NamedTuple: its numbers
        return [y for item in x if not isinstance(item, str) for y in _flat(item)]
    return [x]


def fails_closed(call, *args):
    """Run ``call``; a ValueError with a reason is a correct refusal. Return the output or None."""
    try:
        return call(*args)
    except ValueError as exc:
        reason = str(exc)
    assert reason, "a refusal must say why"
    return None


@FAST
@given(st.data(), sizes)
def test_bucketing(data, size):
    n = data.draw(st.integers(0, 30))
    px = np.array(data.draw(st.lists(prices, min_size=n, max_size=n)), dtype=np.float64)
    qty = np.array(data.draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    out = fails_closed(bucket_side, px, qty, size)
    if out is not None:
        assert finite(out.px, out.qty, out.volume_in, out.volume_out, out.price_low, out.price_high)


@FAST
@given(st.lists(st.tuples(price_arrays, arrays, st.integers(-3, 3000)), min_size=1, max_size=6),
       st.sampled_from([0.01, 1.0, 1e6]))
def test_rolling_profile(batches, size):
    p = RollingProfile(size, window_min=60, max_buckets=5000)
    next_id = 1
    for px, qty, minute in batches:
        n = min(px.size, qty.size)
        ids = np.arange(next_id, next_id + n)
        next_id += n
        before = p.to_bytes()
        applied = fails_closed(p.add, ids, px[:n], qty[:n], np.full(n, minute * NS_PER_MIN, np.int64),
                               np.zeros(n))
        if applied is None:
            assert p.to_bytes() == before, "a refused batch must leave the state as it was"
        out_px, buy, sell = p.arrays()
        assert finite(out_px, buy, sell)
        assert p.totals.shape[1] <= 5000


@FAST
@given(arrays, price_arrays)
def test_peak_detection(vol, px):
    found = fails_closed(find_wave_peaks, np.arange(vol.size, dtype=np.float64), vol)
    if found is not None:
        for pk in [*found.peaks, *found.walls]:
            assert 0.0 <= pk.confidence <= 1.0
            assert 0 <= pk.low_index <= pk.index <= pk.high_index < vol.size
            assert finite(pk)
    found = fails_closed(find_wave_peaks, px, np.ones(px.size))  # any prices: refused or finite
    if found is not None:
        assert finite(list(found.peaks), list(found.walls))


@FAST
@given(price_arrays, arrays, price_arrays, arrays, price_arrays, arrays, values, sizes, values, values)
def test_zones_analyse(bpx, bq, apx, aq, tpx, tq, mid, size, lo, hi):
    n, m, k = min(bpx.size, bq.size), min(apx.size, aq.size), min(tpx.size, tq.size)
    a = fails_closed(analyse, np.sort(bpx[:n]), bq[:n], np.sort(apx[:m]), aq[:m], size, mid, lo, hi,
                     np.sort(tpx[:k]), tq[:k])
    if a is not None:
        assert finite(a.poc, a.value_area_low, a.value_area_high, a.support, a.resistance, a.resonance,
                      a.high_volume_nodes, a.low_volume_nodes, a.vacuums)


def zones_like(**v: float) -> SimpleNamespace:
    """Duck-typed ``ZonesDetected``: the real one refuses these values, the core must too."""
    zone = SimpleNamespace(low=v["zl"], high=v["zh"], volume=v["zv"])
    return SimpleNamespace(support=[zone], resistance=[zone], **{k: x for k, x in v.items() if k[0] != "z"})


FIELDS = ["mid", "poc", "value_area_low", "value_area_high", "bid_depth_near", "ask_depth_near",
          "trade_buy_volume", "trade_sell_volume", "zl", "zh", "zv"]


COMPONENTS = ["book_imbalance", "trade_flow", "zone_position", "value_area"]


@FAST
@given(st.fixed_dictionaries({f: values for f in FIELDS}),
       st.dictionaries(st.sampled_from(COMPONENTS), values))
def test_fusion(fields, weights):
    parts = fails_closed(components, zones_like(**fields))
    if parts is None:
        return
    assert all(-1.0 <= x <= 1.0 for x in parts.values())
    score = fails_closed(weighted_score, parts, weights)
    if score is not None:
        assert -1.0 <= score <= 1.0


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_clip_refuses_what_it_cannot_order(x):
    with pytest.raises(ValueError, match="not finite"):
        _clip(x)

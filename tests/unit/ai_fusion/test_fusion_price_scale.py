"""The fusion core reads no price unit: scaling every price of a zones message by 10^k (a BTC book
at 60 000 with 1-dollar buckets vs an altcoin at 0.006 with 1e-7 buckets) changes neither the side
nor the score of its signal. Why a property: bucket sizes are per symbol and relative to price, so
any absolute distance or "N buckets" threshold would make one symbol's whole book "near the mid"."""

from __future__ import annotations

import msgspec
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from depthflow.ai_fusion.config import DEFAULT_WEIGHTS, FusionConfig
from depthflow.ai_fusion.fusion import ConfidenceMode, Fused, fuse
from depthflow.common.messages import TS_FLOOR_NS as TS
from depthflow.common.messages import PriceBand, Zone, ZonesDetected

CFG = FusionConfig()
THRESHOLDS = (CFG.enter_trading, CFG.exit_trading, CFG.action_threshold)
amounts = st.floats(0.0, 1000.0)  # depths and volumes: not prices, never scaled


@st.composite
def zone_list(draw: st.DrawFn, edge: int, step: int, b: float) -> list[Zone]:
    """0-3 zones on the bucket grid, beyond ``edge`` (a grid index) in the direction of ``step``."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        near = edge + step * draw(st.integers(0, 500))
        far = near + step * draw(st.integers(0, 50))
        lo, hi = sorted((near * b, far * b))
        out.append(Zone(low=lo, high=hi, price=(lo + hi) / 2, volume=draw(amounts),
                        strength=draw(st.floats(0, 1)), confidence=draw(st.floats(0, 1))))
    return out


@st.composite
def zones_messages(draw: st.DrawFn) -> ZonesDetected:
    """A zones message whose prices sit on its bucket grid, as peaks builds them."""
    b = draw(st.floats(1e-6, 10.0))
    bid = draw(st.integers(1_000, 1_000_000))
    ask = bid + draw(st.integers(1, 5))
    mid = (bid * b + ask * b) / 2
    va_low = bid + draw(st.integers(-1_000, 1_000))
    return ZonesDetected(
        symbol="X", venue="binance", ts_event=TS, ts_init=TS, origin_ts=TS, mid=mid,
        best_bid=bid * b, best_ask=ask * b, poc=(bid + draw(st.integers(-1_000, 1_000))) * b,
        value_area_low=va_low * b, value_area_high=(va_low + draw(st.integers(0, 2_000))) * b,
        support=draw(zone_list(bid, -1, b)), resistance=draw(zone_list(ask, 1, b)),
        bid_depth_near=draw(amounts), ask_depth_near=draw(amounts),
        trade_buy_volume=draw(amounts), trade_sell_volume=draw(amounts),
        high_volume_nodes=[bid * b], low_volume_nodes=[ask * b],
        vacuums=[PriceBand(low=ask * b, high=(ask + 3) * b)], resonance=draw(zone_list(bid, -1, b)),
        bucket_size=b, tick_size=b / draw(st.sampled_from([1, 2, 5, 10])),
    )


def scaled(z: ZonesDetected, f: float) -> ZonesDetected:
    """``z`` with every price (mid, touch, zones, POC, value area, nodes, bands, bucket and tick
    size) multiplied by ``f``; depths and volumes unchanged."""

    def zone(x: Zone) -> Zone:
        return msgspec.structs.replace(x, low=x.low * f, high=x.high * f, price=x.price * f)

    return msgspec.structs.replace(
        z, mid=z.mid * f, best_bid=z.best_bid * f, best_ask=z.best_ask * f, poc=z.poc * f,
        value_area_low=z.value_area_low * f, value_area_high=z.value_area_high * f,
        support=[zone(x) for x in z.support], resistance=[zone(x) for x in z.resistance],
        resonance=[zone(x) for x in z.resonance],
        high_volume_nodes=[x * f for x in z.high_volume_nodes],
        low_volume_nodes=[x * f for x in z.low_volume_nodes],
        vacuums=[PriceBand(low=v.low * f, high=v.high * f) for v in z.vacuums],
        bucket_size=z.bucket_size * f, tick_size=z.tick_size * f,
    )


def run(messages: list[ZonesDetected]) -> list[Fused]:
    """One symbol's signals for ``messages`` in order, from a fresh hysteresis."""
    mode = ConfidenceMode(CFG.enter_trading, CFG.exit_trading)
    return [fuse(z, dict(DEFAULT_WEIGHTS), mode, CFG.action_threshold) for z in messages]


@settings(max_examples=300, deadline=None)
@given(st.lists(zones_messages(), min_size=1, max_size=4), st.integers(-6, 3))
def test_scaling_every_price_by_a_power_of_ten_changes_neither_side_nor_score(messages, k):
    base = run(messages)
    # a confidence within rounding of a threshold may fall either way: not what this is about
    assume(all(abs(s.confidence - t) > 1e-6 for s in base for t in THRESHOLDS))
    again = run([scaled(z, 10.0**k) for z in messages])
    assert [s.side for s in again] == [s.side for s in base]
    assert [s.mode for s in again] == [s.mode for s in base]
    for a, s in zip(again, base, strict=True):
        assert abs(a.score - s.score) <= 1e-9
        assert a.components.keys() == s.components.keys()
        assert all(abs(a.components[name] - x) <= 1e-9 for name, x in s.components.items())

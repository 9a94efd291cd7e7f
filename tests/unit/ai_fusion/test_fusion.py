"""Fusion components point the right way and the mode only flips on a real change."""

import math

import msgspec
import pytest

from depthflow.ai_fusion.config import DEFAULT_WEIGHTS, FusionConfig
from depthflow.ai_fusion.fusion import NO_ZONES, ConfidenceMode, components, fuse, side_of, weighted_score
from depthflow.common.messages import TS_FLOOR_NS as TS
from depthflow.common.messages import Zone, ZonesDetected

BALANCED = ZonesDetected(
    symbol="X", venue="binance", ts_event=TS, ts_init=TS, origin_ts=TS, mid=100.0,
    best_bid=99.9, best_ask=100.1, poc=100.0, value_area_low=99.0, value_area_high=101.0,
    support=[Zone(low=98, high=99, price=98.5, volume=10, strength=0.1, confidence=0.5)],
    resistance=[Zone(low=101, high=102, price=101.5, volume=10, strength=0.1, confidence=0.5)],
    bid_depth_near=1.0, ask_depth_near=1.0, trade_buy_volume=1.0, trade_sell_volume=1.0,
)


def zones(**over: object) -> ZonesDetected:
    return msgspec.structs.replace(BALANCED, **over)  # validated again, as on decode


def test_balanced_market_scores_zero():
    parts = components(zones())
    assert all(abs(v) < 1e-12 for v in parts.values())
    assert weighted_score(parts, {"book_imbalance": 1, "trade_flow": 1}) == 0


def test_bid_heavy_book_and_buying_flow_are_bullish():
    parts = components(zones(bid_depth_near=3.0, trade_buy_volume=4.0, mid=98.9 + 0.2))
    assert parts["book_imbalance"] == 0.5
    assert parts["trade_flow"] == 0.6
    assert parts["zone_position"] > 0  # nearer support than resistance
    assert parts["value_area"] > 0  # below POC pulls up


def test_weights_scale_the_score_and_unweighted_parts_are_ignored():
    parts = {"a": 1.0, "b": -1.0, "c": 0.5}
    assert weighted_score(parts, {"a": 3, "b": 1}) == 0.5
    assert weighted_score(parts, {}) == 0.0


def test_mode_has_hysteresis():
    m = ConfidenceMode(enter=0.3, exit=0.2)
    assert [m.update(c) for c in (0.25, 0.31, 0.25, 0.21, 0.19, 0.25)] == [
        "LEARNING", "TRADING", "TRADING", "TRADING", "LEARNING", "LEARNING",
    ]


def test_a_weight_that_is_not_finite_is_refused_at_start_up():
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="weight 'book_imbalance' must be finite"):
            FusionConfig(weights={"book_imbalance": bad})


def bearish(**over):
    """A book whose every component says SELL: ask-heavy, selling, above the POC, near resistance."""
    return zones(ask_depth_near=9.0, trade_sell_volume=9.0, mid=100.9, best_bid=100.85, best_ask=100.95,
                 **over)


def test_zones_give_a_side_and_no_zones_give_flat_with_the_reason():
    mode = ConfidenceMode(enter=0.15, exit=0.10)
    traded = fuse(bearish(), DEFAULT_WEIGHTS, mode, 0.15)
    assert (traded.side, traded.mode) == ("SELL", "TRADING")
    assert NO_ZONES not in traded.components
    flat = fuse(bearish(support=[], resistance=[]), DEFAULT_WEIGHTS, mode, 0.15)
    assert (flat.side, flat.mode, flat.score, flat.confidence) == ("FLAT", "LEARNING", 0.0, 0.0)
    assert flat.components[NO_ZONES] == 1.0
    assert flat.components["book_imbalance"] == -0.8  # the evidence is kept, only not acted on


@pytest.mark.parametrize("side", ["support", "resistance"])
def test_one_side_of_zones_is_enough_to_act(side):
    one_sided = bearish(**{side: []})
    assert fuse(one_sided, DEFAULT_WEIGHTS, ConfidenceMode(0.15, 0.10), 0.15).side == "SELL"


def test_no_zones_is_flat_whatever_the_thresholds():
    never_leaves = ConfidenceMode(enter=0.0, exit=0.0, mode="TRADING")
    flat = fuse(bearish(support=[], resistance=[]), DEFAULT_WEIGHTS, never_leaves, 0.0)
    assert (flat.side, flat.mode) == ("FLAT", "TRADING")


@pytest.mark.parametrize(("score", "mode", "side"), [
    (0.2, "TRADING", "BUY"), (-0.2, "TRADING", "SELL"), (0.2, "LEARNING", "FLAT"),
    (0.1, "TRADING", "FLAT"), (0.0, "TRADING", "FLAT"),
])
def test_side_follows_sign_mode_and_threshold(score, mode, side):
    threshold = 0.0 if score == 0 else 0.15  # a score of 0 points nowhere, even at threshold 0
    assert side_of(score, mode, threshold) == side

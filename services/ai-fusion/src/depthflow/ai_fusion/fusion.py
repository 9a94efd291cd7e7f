"""Weighted signal fusion and confidence hysteresis: ai-fusion's pure core.

Each component is a number in [-1, 1], positive meaning "price likely to rise":

- ``book_imbalance``: resting bids vs asks near the mid.
- ``zone_position``: nearer the strongest support than the strongest resistance is bullish.
  Support and resistance are zones of either kind (``Zone.kind``: a wave peak, a hump of volume,
  or a wall, one big order): both hold price, so both count; the strongest is the one holding
  the most volume, a ratio of volumes, so walls change nothing of the scale invariance.
- ``value_area``: below the value area pulls up toward the point of control, above pulls down.
- ``trade_flow``: aggressive buying vs selling in the trade profile.

The score is their weighted mean. Fail closed: every helper raises ``ValueError`` on a non-finite
input or intermediate instead of passing it on. Why: ``max(-1, min(1, x))`` maps NaN to 1.0, and
that is how one NaN quantity upstream once became a BUY at full confidence on every later signal.

Why hysteresis: a score hovering at a threshold would flip the
mode on every message; entering TRADING needs ``enter`` confidence, leaving it needs a drop below
``exit``, so the mode changes only on a real change of conviction.

Why nothing here is in price units or bucket counts: bucket sizes are per symbol and relative to
the price (BTC at 60 000 has 1-dollar buckets, an altcoin at 0.006 has 1e-7), so an absolute
distance or "N buckets" means the whole book for one symbol and nothing for another. Every
component is a ratio of two amounts in one unit (depths, volumes, distances), so the signal of a
book is the same whatever its price scale (tests/unit/ai_fusion: the 10^k scaling property).

Why a book without zones is FLAT (:func:`fuse`): an altcoin at 0.006 whose whole book fell into
one bucket had no support and no resistance, yet its depth "near the mid" was the whole book and
gave actionable SELLs. Without any zone the analysis has found no structure, so there is nothing
to act on: score and confidence 0, side FLAT, and the component ``no_zones`` = 1 says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from depthflow.common.messages import FusionMode, SignalSide, ZonesDetected

NO_ZONES = "no_zones"
"""Marker component (1.0) of a signal made FLAT because its book had no support or resistance
zone; never weighted (the config accepts only the four real components)."""


def _finite(name: str, x: float) -> float:
    """``x``, or ``ValueError`` naming it if it is NaN or infinite."""
    if not math.isfinite(x):
        raise ValueError(f"fusion: {name} is {x!r}, not finite")
    return x


def _ratio(name: str, a: float, b: float) -> float:
    """``(a - b) / (a + b)`` of two non-negative amounts, 0 when both are 0."""
    if not (0.0 <= a < math.inf and 0.0 <= b < math.inf):
        raise ValueError(f"fusion: {name} inputs must be finite and >= 0, were {a!r} and {b!r}")
    total = _finite(f"{name} total", a + b)
    return 0.0 if total <= 0 else (a - b) / total


def _clip(x: float) -> float:
    """``x`` clipped to [-1, 1]; NaN is an error, never a bound."""
    return max(-1.0, min(1.0, _finite("value to clip", x)))


def components(z: ZonesDetected) -> dict[str, float]:
    """Return every fusion component of one zones message."""
    out = {
        "book_imbalance": _ratio("book_imbalance", z.bid_depth_near, z.ask_depth_near),
        "trade_flow": _ratio("trade_flow", z.trade_buy_volume, z.trade_sell_volume),
    }
    support = max(z.support, key=lambda s: s.volume, default=None)
    resistance = max(z.resistance, key=lambda s: s.volume, default=None)
    if support is not None and resistance is not None and z.mid > 0:
        to_support = max(_finite("distance to support", z.mid - support.high), 0.0)
        to_resistance = max(_finite("distance to resistance", resistance.low - z.mid), 0.0)
        out["zone_position"] = _ratio("zone_position", to_resistance, to_support)
    else:
        out["zone_position"] = 0.0
    width = _finite("value area width", z.value_area_high - z.value_area_low)
    out["value_area"] = _clip(_finite("value_area", (z.poc - z.mid) / width)) if width > 0 else 0.0
    return out


def weighted_score(parts: dict[str, float], weights: dict[str, float]) -> float:
    """Return the weighted mean of ``parts`` over the components that have a weight."""
    total = _finite("sum of weights", sum(abs(w) for k, w in weights.items() if k in parts))
    if total <= 0:
        return 0.0
    for k in weights:
        if k in parts:
            _finite(f"component {k}", parts[k])
    return _clip(_finite("weighted sum", sum(parts[k] * w for k, w in weights.items() if k in parts)) / total)


@dataclass
class ConfidenceMode:
    """TRADING/LEARNING with hysteresis: enter at ``enter``, leave below ``exit``."""

    enter: float
    exit: float
    mode: FusionMode = "LEARNING"

    def update(self, confidence: float) -> FusionMode:
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"fusion: confidence {confidence!r} is not in [0, 1]")
        if self.mode == "LEARNING" and confidence >= self.enter:
            self.mode = "TRADING"
        elif self.mode == "TRADING" and confidence < self.exit:
            self.mode = "LEARNING"
        return self.mode


class Fused(msgspec.Struct, frozen=True, kw_only=True):
    """The decision of one zones message, before the handler wraps it in a ``SignalFused``."""

    score: float
    confidence: float
    side: SignalSide
    mode: FusionMode
    components: dict[str, float]


def side_of(score: float, mode: FusionMode, action_threshold: float) -> SignalSide:
    """BUY or SELL by the sign of ``score``, only in TRADING with ``|score| >= action_threshold``;
    a score of exactly 0 is FLAT even with a threshold of 0 (it points nowhere)."""
    if mode != "TRADING" or not abs(score) >= action_threshold or score == 0:
        return "FLAT"
    return "BUY" if score > 0 else "SELL"


def fuse(z: ZonesDetected, weights: dict[str, float], mode: ConfidenceMode, action_threshold: float) -> Fused:
    """Fuse one zones message and advance ``mode`` (the symbol's hysteresis).

    A book with neither a support nor a resistance zone scores 0 (so the hysteresis sees no
    conviction) and is FLAT whatever the thresholds; its raw components are kept, with
    ``no_zones`` = 1, so the signal says why. Raises ``ValueError`` before ``mode`` changes if a
    component or the score is not finite.
    """
    parts = components(z)
    score = weighted_score(parts, weights)  # first: a non-finite input fails closed, zones or not
    if not (z.support or z.resistance):
        return Fused(score=0.0, confidence=0.0, side="FLAT", mode=mode.update(0.0),
                     components={**parts, NO_ZONES: 1.0})
    confidence = abs(score)
    current = mode.update(confidence)
    return Fused(score=score, confidence=confidence, side=side_of(score, current, action_threshold),
                 mode=current, components=parts)

"""Weighted signal fusion and confidence hysteresis: ai-fusion's pure core.

Each component is a number in [-1, 1], positive meaning "price likely to rise":

- ``book_imbalance``: resting bids vs asks near the mid.
- ``zone_position``: nearer the strongest support than the strongest resistance is bullish.
- ``value_area``: below the value area pulls up toward the point of control, above pulls down.
- ``trade_flow``: aggressive buying vs selling in the trade profile.

The score is their weighted mean. Fail closed: every helper raises ``ValueError`` on a non-finite
input or intermediate instead of passing it on. Why: ``max(-1, min(1, x))`` maps NaN to 1.0, and
that is how one NaN quantity upstream once became a BUY at full confidence on every later signal.

Why hysteresis: a score hovering at a threshold would flip the
mode on every message; entering TRADING needs ``enter`` confidence, leaving it needs a drop below
``exit``, so the mode changes only on a real change of conviction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from depthflow.common.messages import ZonesDetected


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
    mode: str = "LEARNING"

    def update(self, confidence: float) -> str:
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"fusion: confidence {confidence!r} is not in [0, 1]")
        if self.mode == "LEARNING" and confidence >= self.enter:
            self.mode = "TRADING"
        elif self.mode == "TRADING" and confidence < self.exit:
            self.mode = "LEARNING"
        return self.mode

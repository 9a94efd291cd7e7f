"""Weighted signal fusion and confidence hysteresis: ai-fusion's pure core.

Each component is a number in [-1, 1], positive meaning "price likely to rise":

- ``book_imbalance``: resting bids vs asks near the mid.
- ``zone_position``: nearer the strongest support than the strongest resistance is bullish.
- ``value_area``: below the value area pulls up toward the point of control, above pulls down.
- ``trade_flow``: aggressive buying vs selling in the trade profile.

The score is their weighted mean. Why hysteresis: a score hovering at a threshold would flip the
mode on every message; entering TRADING needs ``enter`` confidence, leaving it needs a drop below
``exit``, so the mode changes only on a real change of conviction.
"""

from __future__ import annotations

from dataclasses import dataclass

from depthflow.common.messages import ZonesDetected


def _ratio(a: float, b: float) -> float:
    total = a + b
    return 0.0 if total <= 0 else (a - b) / total


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def components(z: ZonesDetected) -> dict[str, float]:
    """Return every fusion component of one zones message."""
    out = {
        "book_imbalance": _ratio(z.bid_depth_near, z.ask_depth_near),
        "trade_flow": _ratio(z.trade_buy_volume, z.trade_sell_volume),
    }
    support = max(z.support, key=lambda s: s.volume, default=None)
    resistance = max(z.resistance, key=lambda s: s.volume, default=None)
    if support is not None and resistance is not None and z.mid > 0:
        to_support = max(z.mid - support.high, 0.0)
        to_resistance = max(resistance.low - z.mid, 0.0)
        out["zone_position"] = _ratio(to_resistance, to_support)
    else:
        out["zone_position"] = 0.0
    width = z.value_area_high - z.value_area_low
    out["value_area"] = _clip((z.poc - z.mid) / width) if width > 0 else 0.0
    return out


def weighted_score(parts: dict[str, float], weights: dict[str, float]) -> float:
    """Return the weighted mean of ``parts`` over the components that have a weight."""
    total = sum(abs(w) for k, w in weights.items() if k in parts)
    if total <= 0:
        return 0.0
    return _clip(sum(parts[k] * w for k, w in weights.items() if k in parts) / total)


@dataclass
class ConfidenceMode:
    """TRADING/LEARNING with hysteresis: enter at ``enter``, leave below ``exit``."""

    enter: float
    exit: float
    mode: str = "LEARNING"

    def update(self, confidence: float) -> str:
        if self.mode == "LEARNING" and confidence >= self.enter:
            self.mode = "TRADING"
        elif self.mode == "TRADING" and confidence < self.exit:
            self.mode = "LEARNING"
        return self.mode

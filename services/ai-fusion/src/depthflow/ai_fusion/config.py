"""ai-fusion configuration (``DEPTHFLOW_AI_FUSION_*``)."""

from __future__ import annotations

import math

import msgspec

from depthflow.common.config import Fraction, RuntimeConfig

DEFAULT_WEIGHTS = {"book_imbalance": 0.35, "zone_position": 0.25, "value_area": 0.15, "trade_flow": 0.25}


class FusionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Component weights and the thresholds of the confidence modes."""

    runtime: RuntimeConfig = RuntimeConfig()
    weights: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    enter_trading: Fraction = 0.15
    exit_trading: Fraction = 0.10
    action_threshold: Fraction = 0.15

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            names = sorted(DEFAULT_WEIGHTS)
            raise ValueError(f"unknown weight {sorted(unknown)[0]!r}; components are {names}")
        bad = {k: w for k, w in self.weights.items() if not math.isfinite(w)}
        if bad:
            raise ValueError(f"weight {next(iter(bad))!r} must be finite, was {next(iter(bad.values()))!r}")
        if self.exit_trading > self.enter_trading:
            raise ValueError("exit_trading must not exceed enter_trading")

"""Risk configuration (``DEPTHFLOW_RISK_*``). Paper execution unless live is chosen twice."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from depthflow.common.config import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, RuntimeConfig
from depthflow.risk.checks import Limits


class LimitsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pre-trade limits; see ``checks.assess`` for the order they apply in."""

    max_position_pct: Fraction = 0.10
    order_notional_pct: Fraction = 0.02
    min_confidence: Fraction = 0.15
    max_signal_age_s: PositiveFloat = 5.0
    max_orders_per_minute: PositiveInt = 30
    max_drawdown_pct: Fraction = 0.15
    daily_loss_pct: Fraction = 0.05
    min_notional: NonNegativeFloat = 5.0
    qty_step: PositiveFloat = 0.00001
    fee_rate: Annotated[float, msgspec.Meta(ge=0, le=0.01)] = 0.001

    def to_limits(self) -> Limits:
        return Limits(**msgspec.structs.asdict(self))


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits, the paper account, and the execution mode."""

    runtime: RuntimeConfig = RuntimeConfig()
    limits: LimitsConfig = LimitsConfig()
    starting_cash: PositiveFloat = 100_000.0
    execution: Literal["paper", "live"] = "paper"
    live_confirm: str = ""

    def __post_init__(self) -> None:
        if self.execution == "live" and self.live_confirm != "I-ACCEPT-REAL-MONEY-RISK":
            raise ValueError(
                "execution=live also needs live_confirm=I-ACCEPT-REAL-MONEY-RISK "
                "(DEPTHFLOW_RISK_LIVE_CONFIRM)"
            )
        if self.execution == "live":
            raise ValueError("live execution is not available in this build; use paper")

"""Risk configuration (``DEPTHFLOW_RISK_*``). Paper execution unless live is chosen twice.

Every limit has a bounded range, so a value that disables a safeguard stops start-up instead of
running unguarded: ``max_signal_age_s=inf`` or ``max_drawdown_pct=1`` are refused. The bounds
(and why each one) are listed in the risk README.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from depthflow.common.config import RuntimeConfig
from depthflow.common.messages import Execution
from depthflow.risk.checks import Limits, Scope


class LimitsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pre-trade limits; see ``checks.assess`` for the order they apply in."""

    max_position_pct: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.10
    order_notional_pct: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.02
    min_confidence: Annotated[float, msgspec.Meta(ge=0.01, le=1)] = 0.15
    max_signal_age_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    max_orders_per_minute: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 30
    max_drawdown_pct: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.15
    daily_loss_pct: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.05
    min_notional: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 5.0
    qty_step: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.00001
    fee_rate: Annotated[float, msgspec.Meta(ge=0, le=0.01)] = 0.001
    # risk's own mark of a symbol (the latest agg.book) must be at most this old to trade on it
    max_mark_age_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    # a signal's bid and ask may each stray at most this fraction of the mark's mid from the mark
    quote_band_pct: Annotated[float, msgspec.Meta(gt=0, le=0.05)] = 0.005

    def to_limits(self) -> Limits:
        return Limits(**msgspec.structs.asdict(self))


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits, the paper account, the execution mode, and how long storage may take."""

    runtime: RuntimeConfig = RuntimeConfig()
    limits: LimitsConfig = LimitsConfig()
    starting_cash: Annotated[float, msgspec.Meta(gt=0, le=1e12)] = 100_000.0
    execution: Execution = "paper"
    live_confirm: str = ""
    # a decision whose ledger/hot-state work takes longer is answered infrastructure_unavailable
    storage_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 3.0
    # how often the ledger is probed for /readyz and to record decisions kept during an outage
    storage_probe_interval_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 1.0

    def __post_init__(self) -> None:
        if self.execution == "live" and self.live_confirm != "I-ACCEPT-REAL-MONEY-RISK":
            raise ValueError(
                "execution=live also needs live_confirm=I-ACCEPT-REAL-MONEY-RISK "
                "(DEPTHFLOW_RISK_LIVE_CONFIRM)"
            )
        if self.execution == "live":
            raise ValueError("live execution is not available in this build; use paper")

    def scope(self) -> Scope:
        rt = self.runtime
        return Scope(rt.venue, frozenset(rt.symbols), rt.max_future_s)

"""Collector configuration (``DEPTHFLOW_COLLECTOR_*``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from depthflow.common.config import NonNegativeFloat, PositiveFloat, RuntimeConfig


class InstrumentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the synthetic generator prices one symbol."""

    start_price: PositiveFloat
    tick: PositiveFloat
    depth_span: PositiveFloat = 0.004  # the book covers mid ± this fraction


DEFAULT_INSTRUMENTS = {
    "BTCFDUSD": InstrumentConfig(start_price=60000.0, tick=0.01),
    "ETHFDUSD": InstrumentConfig(start_price=3000.0, tick=0.01, depth_span=0.02),
}


class CollectorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where market data comes from and how often it is published."""

    runtime: RuntimeConfig = RuntimeConfig()
    source: Annotated[str, msgspec.Meta(pattern=r"^generator$")] = "generator"
    seed: int = 5
    levels: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 1000
    snapshot_interval_s: PositiveFloat = 1.0
    trade_interval_s: PositiveFloat = 0.1
    speed: NonNegativeFloat = 1.0  # 1 = real time, N = N times faster, 0 = as fast as possible
    max_snapshots: Annotated[int, msgspec.Meta(ge=0)] = 0  # per symbol; 0 = unlimited
    instruments: dict[str, InstrumentConfig] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_INSTRUMENTS)
    )
    default_start_price: PositiveFloat = 100.0
    default_tick: PositiveFloat = 0.01

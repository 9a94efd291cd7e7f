"""Collector configuration (``DEPTHFLOW_COLLECTOR_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

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
    source: Literal["generator", "replay", "live"] = "generator"
    replay_paths: list[str] = msgspec.field(default_factory=list)
    replay_format: Literal["auto", "depthflow", "hftbacktest", "cryptofeed", "binance-csv"] = "auto"
    # a configured symbol without a book within this much recorded time from its first frame is a
    # warning of the replay report (and fails `depthflow up`)
    replay_book_within_s: PositiveFloat = 60.0
    replay_report: str = ""  # write the replay report (JSON) here when set; `depthflow up` sets it
    seed: int = 5
    depth: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 5000  # levels per side, live and replay
    generator_levels: Annotated[int, msgspec.Meta(ge=2, le=5000)] = 1000
    rest_url: str = "https://api.binance.com"
    ws_url: str = "wss://stream.binance.com:9443"
    trade_stream: Literal["aggTrade", "trade"] = "aggTrade"
    rotate_after_s: PositiveFloat = 23 * 3600.0  # before Binance's 24 h connection limit
    stale_after_s: PositiveFloat = 5.0
    resync_min_interval_s: PositiveFloat = 10.0
    record_dir: str = ""  # record every raw frame here (rotating gzip files) when set
    snapshot_interval_s: PositiveFloat = 1.0
    trade_interval_s: PositiveFloat = 0.1
    speed: NonNegativeFloat = 1.0  # 1 = real time, N = N times faster, 0 = as fast as possible
    max_snapshots: Annotated[int, msgspec.Meta(ge=0)] = 0  # per symbol; 0 = unlimited
    instruments: dict[str, InstrumentConfig] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_INSTRUMENTS)
    )
    default_start_price: PositiveFloat = 100.0
    default_tick: PositiveFloat = 0.01

    def __post_init__(self) -> None:
        if self.source == "replay" and not self.replay_paths:
            raise ValueError("source=replay needs replay_paths (DEPTHFLOW_COLLECTOR_REPLAY_PATHS)")
        missing = [p for p in self.replay_paths if not Path(p).is_file()]
        if missing:
            raise ValueError(f"replay file not found: {missing[0]}")

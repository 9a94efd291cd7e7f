"""Aggregator configuration (``DEPTHFLOW_AGGREGATOR_*``)."""

from __future__ import annotations

import msgspec

from depthflow.common.config import PositiveFloat, PositiveInt, RuntimeConfig


class AggregatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bucket width and the trade-profile window."""

    runtime: RuntimeConfig = RuntimeConfig()
    bucket_size: PositiveFloat = 1.0
    profile_window_min: PositiveInt = 2880
    checkpoint_interval_s: PositiveFloat = 5.0

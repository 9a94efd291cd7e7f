"""Peaks configuration (``DEPTHFLOW_PEAKS_*``)."""

from __future__ import annotations

import msgspec

from depthflow.common.config import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, RuntimeConfig


class PeaksConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Detection thresholds."""

    runtime: RuntimeConfig = RuntimeConfig()
    z_min: PositiveFloat = 1.5
    min_volume: NonNegativeFloat = 5.0
    value_area_fraction: Fraction = 0.70
    near_fraction: PositiveFloat = 0.0002  # "near the mid": within 0.02 % of it (the touch),
    near_buckets: PositiveInt = 5  # ... but never fewer buckets than this (coarse buckets)
    max_zones: PositiveInt = 5
    checkpoint_interval_s: PositiveFloat = 5.0

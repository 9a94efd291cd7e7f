"""Aggregator configuration (``DEPTHFLOW_AGGREGATOR_*``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from depthflow.common.config import PositiveFloat, PositiveInt, RuntimeConfig

# bounds that keep each safeguard on: a ratio of 1 would refuse every price move, one of 1e6 none
Ratio = Annotated[float, msgspec.Meta(ge=1.01, le=1000)]
Buckets = Annotated[int, msgspec.Meta(ge=1000, le=10_000_000)]
AgeS = Annotated[float, msgspec.Meta(gt=0, le=86_400)]


class AggregatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bucket width, the trade-profile window and the bounds on per-symbol state (see guard.py)."""

    runtime: RuntimeConfig = RuntimeConfig()
    bucket_size: PositiveFloat = 1.0
    profile_window_min: PositiveInt = 2880
    checkpoint_interval_s: PositiveFloat = 5.0
    max_profile_buckets: Buckets = 250_000  # dense profile width cap: 64 B a bucket, 16 MB
    max_trade_ratio: Ratio = 1.5  # trades within [ref / r, ref * r] of the symbol's reference price
    max_book_ratio: Ratio = 10.0  # book levels within [mid / r, mid * r] of the book's own mid
    reference_max_age_s: AgeS = 60.0  # older reference prices (market time) are not used

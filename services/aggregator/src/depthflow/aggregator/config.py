"""Aggregator configuration (``DEPTHFLOW_AGGREGATOR_*``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from depthflow.common.config import PositiveFloat, PositiveInt, RuntimeConfig, Symbol
from depthflow.common.pricing import TARGET_REL

# bounds that keep each safeguard on: a ratio of 1 would refuse every price move, one of 1e6 none
Ratio = Annotated[float, msgspec.Meta(ge=1.01, le=1000)]
# resting orders: real thin books reach 116x below the mid (Binance.US HNTUSD, tests/data)
BookRatio = Annotated[float, msgspec.Meta(ge=2, le=1_000_000)]
Buckets = Annotated[int, msgspec.Meta(ge=1000, le=10_000_000)]
AgeS = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
# finer than 1e-7 of the price is under a tick on every market; coarser than 1 % blurs every zone
TargetRel = Annotated[float, msgspec.Meta(ge=1e-7, le=1e-2)]


class AggregatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bucket widths, the trade-profile window and the bounds on per-symbol state (see guard.py).

    A symbol's bucket size is ``bucket_sizes[symbol]`` if set, else chosen from its tick and
    price at its first message (``pricing.choose_bucket_size`` with ``bucket_target_rel``), then
    kept for the symbol's lifetime. Why no global size: one absolute width (1.0) put the whole
    book of a coin at 0.006 in one bucket.
    """

    runtime: RuntimeConfig = RuntimeConfig()
    bucket_sizes: dict[Symbol, PositiveFloat] = msgspec.field(default_factory=dict)
    bucket_target_rel: TargetRel = TARGET_REL
    profile_window_min: PositiveInt = 2880
    checkpoint_interval_s: PositiveFloat = 5.0
    max_profile_buckets: Buckets = 250_000  # dense profile width cap: 64 B a bucket, 16 MB
    max_trade_ratio: Ratio = 1.5  # trades within [ref / r, ref * r] of the symbol's reference price
    max_book_ratio: BookRatio = 1000.0  # book levels within [mid / r, mid * r] of the book's own mid
    reference_max_age_s: AgeS = 60.0  # older reference prices (market time) are not used

    def __post_init__(self) -> None:
        # an override for a symbol this service does not process is a typo, not a no-op
        unknown = sorted(set(self.bucket_sizes) - set(self.runtime.symbols))
        if unknown:
            raise ValueError(f"bucket_sizes names {unknown}, not in runtime.symbols")

"""Peaks configuration (``DEPTHFLOW_PEAKS_*``).

Detection thresholds live in one place, ``params.PeakParams``; the config's ``detection``
section is derived from it field for field (``DEPTHFLOW_PEAKS_DETECTION__WALL_Z=6``), so a new
threshold is configurable the moment it exists, and a bad value still names its field.
"""

from __future__ import annotations

import dataclasses
import typing

import msgspec

from depthflow.common.config import PositiveFloat, RuntimeConfig
from depthflow.peaks.params import PeakParams


def _check_detection(self: msgspec.Struct) -> None:
    p = msgspec.structs.asdict(self)
    if not 0 < p["value_area_fraction"] <= 1:
        raise ValueError("value_area_fraction must be in (0, 1]")
    for name, value in p.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{name} must not be negative, was {value}")
    PeakParams(**p)  # its own checks (level_cap), raised at start-up rather than at first use


_hints = typing.get_type_hints(PeakParams)
DetectionConfig = msgspec.defstruct(
    "DetectionConfig",
    [(f.name, _hints[f.name], f.default) for f in dataclasses.fields(PeakParams)],
    namespace={"__post_init__": _check_detection},
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
)


class PeaksConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Detection thresholds, the near-mid window and checkpointing."""

    runtime: RuntimeConfig = RuntimeConfig()
    detection: DetectionConfig = msgspec.field(default_factory=DetectionConfig)  # type: ignore[valid-type]
    near_fraction: PositiveFloat = 0.0002  # "near the mid" for depth: within 0.02 % of it (the touch)
    checkpoint_interval_s: PositiveFloat = 5.0

    def params(self) -> PeakParams:
        return PeakParams(**msgspec.structs.asdict(self.detection))

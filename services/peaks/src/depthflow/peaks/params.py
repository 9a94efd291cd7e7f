"""Detection thresholds: :class:`PeakParams` (what a config sets) and :data:`KernelParams` (the
same as numba takes them). No kernels here: every other peaks module imports this one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

__all__ = ["DEFAULT", "METHODS", "KernelParams", "PeakParams"]


@dataclass(frozen=True)
class PeakParams:
    """Every detection threshold in one place, so a config maps onto it one field per field.

    Every figure is relative, so one default serves BTC at 60,000 and a token at 0.0001: volumes
    relative to the profile's own (``min_relative_volume``: 5 BTC is not 5 DOT), widths relative
    to the price (``value_area_step``, ``vacuum_min_width``, ``resonance_tolerance``,
    ``weight_scale``), and the rest dimensionless or in buckets. Why some stay in buckets
    (``smooth``, ``window``, ``node_window``, ``neighbours``, ``max_buckets``): they describe the
    profile's resolution, the neighbourhood a detector compares a bucket with, not a price
    distance; the aggregator's buckets are themselves a fixed fraction of the price (a tick multiple
    near 1.6e-5 of it). A price width converts to at least one bucket: nothing finer exists.

    Defaults of the spec'd methods are the issue's (z 1.5, ratio 2, modified z 3.5). The combined
    detector's (``smooth``, ``prominence_z``, ``window``) sit at the optimum of the accuracy
    benchmark's grid search on its training split (``python -m bench --only peaks_accuracy``),
    which is flat there: ``peaks_params_combined`` shows what the search picks,
    ``peaks_f1_combined_defaults`` what these defaults score on the test split. ``window`` stays at
    41 when the search prefers 21, because real high-volume nodes can be wider than the
    generator's, and a window shorter than a peak's flanks understates its prominence. The price
    widths equal the old bucket counts (2 value-area rows, 3-bucket vacuums, 2-bucket resonance)
    at the old 1-dollar buckets of a 60,000 price.
    """

    method: str = "combined"  # combined | normal | ratio | robust
    z_min: float = 1.5
    min_relative_volume: float = 0.5  # a peak's top bucket vs the profile's mean non-empty bucket
    ratio: float = 2.0
    neighbours: int = 2
    robust_z: float = 3.5
    smooth: float = 0.7  # combined: gaussian sigma (buckets) applied to sqrt(volume) first
    prominence_z: float = 3.75  # combined: minimum prominence in units of bucket noise
    window: int = 41  # combined: prominence window (buckets), like find_peaks(wlen=...)
    value_area_fraction: float = 0.70
    value_area_step: float = 3.2e-5  # fraction of the price added per step (>= one row)
    node_prominence_z: float = 6.0  # volume nodes: minimum prominence in bucket-noise units
    node_window: int = 201  # volume nodes: prominence window (buckets)
    vacuum_alpha: float = 0.2
    vacuum_min_width: float = 5e-5  # fraction of the price (>= one bucket)
    resonance_tolerance: float = 3.3e-5  # fraction of the price (>= one bucket)
    max_zones: int = 5
    weight_scale: float = 0.005  # weights exp(-|p - mid| / (weight_scale * mid)); <= 0: uniform
    max_buckets: int = 20_000  # dense grid cap per profile (buckets nearest the mid are kept)

    @cached_property
    def kernel(self) -> KernelParams:
        """These parameters as the kernels take them (built once per instance; frozen, so safe)."""
        return _kernel_params(self)


METHODS = ("combined", "normal", "ratio", "robust")
"""The peak detectors by name; a kernel knows a method by its index here."""

KernelParams = NamedTuple(  # type: ignore[misc]
    "KernelParams", [(f.name, float) for f in dataclasses.fields(PeakParams)]
)
KernelParams.__doc__ = """``PeakParams`` as numba takes them: every field a float (the method as its index in
``METHODS``, counts and flags as 0.0/1.0 ...), kernels convert back with ``int()``.

Why derived from ``PeakParams`` field for field: one list of thresholds, never two to keep in
step. Why all floats: numba's dispatcher types a tuple of one type ~6x faster than a mixed one
(1 us against 7 us a call, measured), and numba compiles one specialisation per argument type,
so a config that says ``z_min: 2`` (an int) must not reach it as an int."""


def _kernel_params(p: PeakParams) -> KernelParams:
    if p.method not in METHODS:
        raise ValueError(f"unknown peak method {p.method!r} ({', '.join(METHODS)})")
    fields = dataclasses.fields(p)
    values = (METHODS.index(p.method) if f.name == "method" else getattr(p, f.name) for f in fields)
    return KernelParams(*(float(v) for v in values))


DEFAULT = PeakParams()  # built once: a frozen dataclass of 19 fields costs microseconds to build

"""Detection thresholds: :class:`PeakParams` (what a config sets) and :data:`KernelParams` (the
same as numba takes them). No kernels here: every other peaks module imports this one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

__all__ = ["DEFAULT", "KernelParams", "PeakParams"]


@dataclass(frozen=True)
class PeakParams:
    """Every detection threshold in one place, so a config maps onto it one field per field, and
    :func:`depthflow.peaks.find_wave_peaks` takes overrides by these names.

    Every figure is relative, so one default serves BTC at 60,000 and a token at 0.0001: volumes
    relative to the profile's own (``min_relative_volume``, ``wall_min_relative``: 5 BTC is not
    5 DOT), noise in the profile's own local units (``prominence_z``, ``wall_z``), widths
    relative to the price (``value_area_step``, ``vacuum_min_width``, ``resonance_tolerance``),
    and the rest dimensionless or in buckets. Why some stay in buckets (``smooth``, ``window``,
    ``noise_window``, ``node_smooth``, ``node_window``, ``max_buckets``): they describe the
    profile's resolution, the neighbourhood a detector compares a bucket with, not a price
    distance; the aggregator's buckets are themselves a fixed fraction of the price (a tick
    multiple near 1.6e-5 of it). A price width converts to at least one bucket: nothing finer
    exists.

    The wave/wall defaults are chosen by the held-out-family score of the peak benchmark
    (``python -m bench --only peaks_accuracy``), never by the score on a family they were tuned
    on; ``wall_min_relative`` by the walls' own held-out precision and recall on another seed's
    profiles (it moves wave detections little); see ``services/peaks/README.md``.
    """

    smooth: float = 3.0  # waves: gaussian sigma (buckets) applied to sqrt(volume) first
    prominence_z: float = 1.5  # waves: minimum prominence in local-noise units
    window: int = 81  # waves: prominence window (buckets), like find_peaks(wlen=...): the local background
    level_noise: float = 0.5  # waves: noise x (level / local mean level)^this above the mean
    level_cap: float = 3.0  # waves: that level ratio at most this (0: no cap)
    noise_window: int = 192  # buckets pooled into the local noise scale around a bucket
    wall_z: float = 4.0  # walls: height over both neighbours and the background (local-noise units)
    wall_shoulder: float = 0.35  # walls: a neighbour's height over the background, at most this x the wall's
    wall_min_relative: float = 4.0  # walls: top bucket >= this x the other levels' mean (else: a lone level)
    spike_ratio: float = 3.0  # waves: a lone level this x each neighbour's volume, wall_z/2 over them: out
    narrow_z: float = 3.5  # narrow waves (1-3 buckets): height over the flanks in noise units (0: off)
    narrow_lumpiness: float = 2.5  # narrow waves: at least this x the 0.9 quantile of nearby maxima's heights
    min_relative_volume: float = 0.0  # a peak's or wall's top bucket vs the profile's mean non-empty bucket
    top_share: float = 0.7  # waves: the two biggest levels of a zone hold at most this share of it (1: off)
    value_area_fraction: float = 0.70
    value_area_step: float = 3.2e-5  # fraction of the price added per step (>= one row)
    node_smooth: float = 0.7  # volume nodes: gaussian sigma (buckets) applied to sqrt(volume) first
    node_prominence_z: float = 6.0  # volume nodes: minimum prominence in bucket-noise units
    node_window: int = 201  # volume nodes: prominence window (buckets)
    vacuum_alpha: float = 0.2
    vacuum_min_width: float = 5e-5  # fraction of the price (>= one bucket)
    resonance_tolerance: float = 3.3e-5  # fraction of the price (>= one bucket)
    max_zones: int = 5
    max_buckets: int = 20_000  # dense grid cap per profile (buckets nearest the mid are kept)

    def __post_init__(self) -> None:
        # the kernels' candidate bounds assume the level factor never shrinks a noise scale
        if self.level_noise < 0:
            raise ValueError(f"level_noise must not be negative, was {self.level_noise}")
        if 0 < self.level_cap < 1:
            raise ValueError(f"level_cap must be 0 (no cap) or at least 1, was {self.level_cap}")

    @cached_property
    def kernel(self) -> KernelParams:
        """These parameters as the kernels take them (built once per instance; frozen, so safe)."""
        return KernelParams(*(float(getattr(self, f.name)) for f in dataclasses.fields(self)))

    @cached_property
    def kernel_array(self) -> np.ndarray:
        """:attr:`kernel` as a read-only float array, for a call from Python into numba: numba
        types an array argument in ~0.1 us and this tuple of 23 floats in ~2 us, on every
        call (``depthflow.peaks.kernels.kernel_params`` makes the tuple again inside)."""
        a = np.array(self.kernel, dtype=np.float64)
        a.flags.writeable = False
        return a


KernelParams = NamedTuple(  # type: ignore[misc]
    "KernelParams", [(f.name, float) for f in dataclasses.fields(PeakParams)]
)
KernelParams.__doc__ = """``PeakParams`` as numba takes them: every field a float (counts as floats
too), kernels convert back with ``int()``.

Why derived from ``PeakParams`` field for field: one list of thresholds, never two to keep in
step. Why all floats: numba's dispatcher types a tuple of one type ~6x faster than a mixed one
(1 us against 7 us a call, measured), and numba compiles one specialisation per argument type,
so a config that says ``wall_z: 6`` (an int) must not reach it as an int."""


DEFAULT = PeakParams()  # built once: a frozen dataclass of 16 fields costs microseconds to build

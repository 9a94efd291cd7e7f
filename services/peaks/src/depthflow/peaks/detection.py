"""Volume-by-price analysis: wave peaks, zones, point of control and value area.

Pure functions over ascending bucket arrays; no I/O. Definitions follow
``shared/reference/domain.md`` §4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Peak:
    """A bucket whose volume stands out: index, z-score, and the zone edges around it."""

    index: int
    z: float
    low_index: int
    high_index: int


def zscore_peaks(vol: np.ndarray, z_min: float = 1.5, min_volume: float = 5.0) -> list[Peak]:
    """Return local maxima whose z-score against the profile is at least ``z_min``.

    A zone spans the contiguous buckets around the peak holding at least half its volume.
    """
    n = vol.size
    if n < 3:
        return []
    mean, std = float(vol.mean()), float(vol.std())
    if std <= 0:
        return []
    z = (vol - mean) / std
    left = np.concatenate(([-np.inf], vol[:-1]))
    right = np.concatenate((vol[1:], [-np.inf]))
    is_peak = (vol >= left) & (vol > right) & (z >= z_min) & (vol >= min_volume)
    peaks = []
    for i in np.flatnonzero(is_peak).tolist():
        half = vol[i] / 2
        lo = i
        while lo > 0 and vol[lo - 1] >= half:
            lo -= 1
        hi = i
        while hi < n - 1 and vol[hi + 1] >= half:
            hi += 1
        peaks.append(Peak(i, float(z[i]), lo, hi))
    return peaks


def point_of_control(px: np.ndarray, vol: np.ndarray) -> int:
    """Return the index of the highest-volume bucket; ties go to the one nearest the middle."""
    if vol.size == 0:
        raise ValueError("point of control of an empty profile")
    top = np.flatnonzero(vol == vol.max())
    middle = (px[0] + px[-1]) / 2
    return int(top[np.argmin(np.abs(px[top] - middle))])


def value_area(vol: np.ndarray, poc: int, fraction: float = 0.70) -> tuple[int, int]:
    """Return (low, high) indices of the value area grown from ``poc`` two rows at a time.

    CME/Dalton "method A": compare the next two rows above with the next two below and add the
    heavier pair (ties go up) until ``fraction`` of the volume is inside.
    """
    target = fraction * float(vol.sum())
    lo = hi = poc
    acc = float(vol[poc])
    n = vol.size
    while acc < target and (lo > 0 or hi < n - 1):
        up = float(vol[hi + 1 : hi + 3].sum()) if hi < n - 1 else -1.0
        dn = float(vol[max(lo - 2, 0) : lo].sum()) if lo > 0 else -1.0
        if up >= dn:
            acc += up
            hi = min(hi + 2, n - 1)
        else:
            acc += dn
            lo = max(lo - 2, 0)
    return lo, hi

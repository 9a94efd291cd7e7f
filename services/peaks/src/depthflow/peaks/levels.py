"""Levels of a volume profile: point of control, value area, high and low volume nodes.

Pure functions over one dense profile (a bucket per price row); no I/O. Definitions and tie rules
follow ``docs/reference/domain.md`` §4 (mypivots, CME/Dalton method A, the peak form of nodes).
Everything here is in rows and indices; the caller (:mod:`depthflow.peaks.zones`) turns a price
width into rows (the value area's step) and indices into prices.
"""

from __future__ import annotations

import numpy as np

from depthflow.peaks.jit import kernel
from depthflow.peaks.kernels import as_f64, noise_scale, prominent_maxima, root32, smooth_gaussian

__all__ = ["point_of_control", "profile_levels", "value_area", "volume_nodes"]


@kernel
def _poc_kernel(px: np.ndarray, vol: np.ndarray) -> int:
    n = vol.size
    top = vol.max()
    ties = 0
    for i in range(n):  # branch-free: vectorises
        ties += vol[i] == top
    if ties == 1:  # the usual case: no tie to break, so no sums either side of the middle
        return int(np.argmax(vol))
    middle = 0.5 * (px[0] + px[n - 1])
    tol = 1e-9 * max(abs(px[n - 1] - px[0]), 1e-300)
    below = 0.0
    above = 0.0
    for i in range(n):
        if px[i] < middle - tol:
            below += vol[i]
        elif px[i] > middle + tol:
            above += vol[i]
    best = -1
    best_d = np.inf
    for i in range(n):
        if vol[i] != top:
            continue
        d = abs(px[i] - middle)
        # equally near the middle (within tol): the side of the midpoint with more volume; when
        # the sides balance, the first (lower) one stays
        tie = best >= 0 and abs(d - best_d) <= tol
        if best < 0 or d < best_d - tol:
            best, best_d = i, d
        elif tie and ((above > below and px[i] > px[best]) or (below > above and px[i] < px[best])):
            best = i
    return best


def point_of_control(px: np.ndarray, vol: np.ndarray) -> int:
    """Index of the highest-volume bucket; ties: nearest the middle of the range, then the side of
    the midpoint with more volume, then the lower price (mypivots' rules, domain.md §4).

    Raises ``ValueError`` on an empty profile: it has no point of control.
    """
    v = as_f64(vol)
    if v.size == 0:
        raise ValueError("point of control of an empty profile")
    return int(_poc_kernel(as_f64(px), v))


@kernel
def _value_area_kernel(v: np.ndarray, poc: int, fraction: float, step: int) -> tuple[int, int]:
    n = v.size
    total = 0.0
    for i in range(n):
        total += v[i]
    target = fraction * total
    lo = poc
    hi = poc
    acc = v[poc]
    while acc < target and (lo > 0 or hi < n - 1):
        up = -1.0
        if hi < n - 1:
            up = 0.0
            for i in range(hi + 1, min(hi + step, n - 1) + 1):
                up += v[i]
        dn = -1.0
        if lo > 0:
            dn = 0.0
            for i in range(max(lo - step, 0), lo):
                dn += v[i]
        if up >= dn:  # ties go up
            acc += up
            hi = min(hi + step, n - 1)
        else:
            acc += dn
            lo = max(lo - step, 0)
    return lo, hi


def value_area(vol: np.ndarray, poc: int, fraction: float = 0.70, rows: int = 2) -> tuple[int, int]:
    """(low, high) indices of the value area grown from ``poc`` until ``fraction`` of the volume.

    CME/Dalton "method A" (``rows`` = 2): compare the next two rows above with the next two below
    and add the heavier pair, ties going up; rows past an end count as missing. With ``rows`` = 1,
    one row at a time (the CBOT/purebytes worked example); any other count likewise. ``vol`` must
    be dense (one entry per price row; a missing row is a zero), or "the next row" is not the next
    price.
    """
    v = as_f64(vol)
    if v.size == 0:
        raise ValueError("value area of an empty profile")
    if not 0 <= poc < v.size:
        raise ValueError(f"poc index {poc} outside the profile (0..{v.size - 1})")
    lo, hi = _value_area_kernel(v, int(poc), float(fraction), max(int(rows), 1))
    return int(lo), int(hi)


@kernel
def _volume_nodes_kernel(v, smooth, prominence_z, window):
    none = np.empty(0, dtype=np.int64)
    if v.size < 3:
        return none, none
    y = root32(v)
    sigma = noise_scale(y)
    if not sigma > 0.0:
        return none, none
    ys = smooth_gaussian(y, smooth)
    half = max(window // 2, 1)
    cut = prominence_z * sigma
    hvn = prominent_maxima(ys, half, cut)
    hvn = hvn[v[hvn] > 0.0]  # between two walls the smoothed top can fall on an empty bucket
    lvn = np.empty(max(hvn.size - 1, 0), dtype=np.int64)
    k = 0
    for t in range(hvn.size - 1):
        a, b = hvn[t], hvn[t + 1]
        low = a + 1 + np.argmin(ys[a + 1 : b]) if b > a + 1 else a
        if min(ys[a], ys[b]) - ys[low] >= cut:
            lvn[k] = low
            k += 1
    return hvn, lvn[:k]


def volume_nodes(
    vol: np.ndarray, smooth: float = 0.7, prominence_z: float = 6.0, window: int = 201
) -> tuple[np.ndarray, np.ndarray]:
    """(HVN, LVN) indices: the peak form of domain.md §4. HVN: a hump of the profile standing out
    by a prominence of ``prominence_z`` bucket-noise units within ``window`` buckets, measured on
    the square root, lightly smoothed, against one noise scale from first differences. LVN:
    the lowest bucket between two neighbouring HVNs, when it lies that far below the lower of them
    ("LVNs mark the edges between HVNs").

    Why the LVN between humps and not any prominent trough: a wide, flat low between two humps
    has no trough standing out within a window, yet it is exactly the low-volume area a trader
    wants marked; its lowest bucket is as good a level for it as any.

    Why not the threshold form (``v >= mu + z sigma``, ``v <= mu - z sigma``) at local extrema: on
    a 48 h trade profile of ~2400 buckets it gave ~100 HVN and ~200 LVN, every noise wiggle above
    or below a line; a trader reads a handful of humps and the troughs between them. Why a wider
    window than the detector's: nodes are the profile's structure (tens of buckets), peaks are
    walls.
    """
    return _volume_nodes_kernel(as_f64(vol), float(smooth), float(prominence_z), max(int(window), 3))


@kernel
def profile_levels(px, v, kp, rows):
    """Point of control, value area (low, high; ``rows`` a step) and volume nodes of one dense,
    non-empty profile: the kernel form of :func:`point_of_control`, :func:`value_area` and
    :func:`volume_nodes`, in one call."""
    poc = _poc_kernel(px, v)
    lo, hi = _value_area_kernel(v, poc, kp.value_area_fraction, rows)
    hvn, lvn = _volume_nodes_kernel(v, kp.node_smooth, kp.node_prominence_z, max(int(kp.node_window), 3))
    return poc, lo, hi, hvn, lvn


def _warm() -> None:
    """Compile (or load from cache) every kernel now, with the argument types used later."""
    v = np.array([1.0, 3.0, 9.0, 3.0, 1.0, 0.0, 2.0, 8.0, 2.0, 1.0])
    px = np.arange(v.size, dtype=np.float64)
    value_area(v, point_of_control(px, v))
    volume_nodes(v)


_warm()

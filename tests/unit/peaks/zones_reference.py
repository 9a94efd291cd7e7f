"""The object-by-object form of ``depthflow.peaks.zones.analyse``: the oracle its kernels are
checked against (``test_zones.py``).

This was the service's implementation until the zone assembly moved into numba kernels (it cost
~1.5 ms a snapshot, mostly Python objects per peak). It is kept, plain and slow, because it reads
like the definition: grids, peaks as zones, clipping at the mid, merging, ranking, resonance.
The peaks and walls come from ``waves_reference`` and the levels and vacuums from
``levels_reference`` (plain numpy, checked against the kernels in ``test_waves_reference.py`` and
``test_levels_reference.py``): nothing here runs a production kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from depthflow.common.messages import Zone
from depthflow.common.pricing import bucket_keys
from depthflow.peaks.params import PeakParams
from depthflow.peaks.zones import ZONE_FIELDS, ZONE_KINDS, Analysis
from tests.unit.peaks.levels_reference import point_of_control, vacuums, value_area, volume_nodes
from tests.unit.peaks.waves_reference import Found, find_wave_peaks


@dataclass(frozen=True)
class _Grid:
    """A profile on a regular grid: ``px[i] = (first + i) * size``; ``real`` marks non-pad rows."""

    px: np.ndarray
    vol: np.ndarray
    real_lo: int  # first and last index holding data (the rest are the zero pads)
    real_hi: int
    total: float  # volume of the whole input profile, including buckets the cap left out
    first: int  # bucket index of px[0]


@dataclass(frozen=True)
class _Found:
    """A detected peak as prices, before it is sorted into support or resistance."""

    peak_px: float  # lower edge of the peak bucket
    zone: Zone


def _clean(px: np.ndarray | None, vol: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copies with non-finite prices dropped and bad volumes (NaN, inf, < 0) set to 0."""
    if px is None or vol is None:
        return np.empty(0), np.empty(0)
    p = np.asarray(px, dtype=np.float64).ravel()
    v = np.asarray(vol, dtype=np.float64).ravel()
    if p.size != v.size:
        raise ValueError(f"prices and volumes differ in length ({p.size} != {v.size})")
    ok = np.isfinite(p)
    p, v = p[ok], v[ok]
    v = np.where(np.isfinite(v) & (v > 0), v, 0.0)
    return p, v


def _grid(
    px: np.ndarray, vol: np.ndarray, size: float, anchor: float, cap: int, pad_low: bool, pad_high: bool
) -> _Grid | None:
    """Lay a sparse profile on a dense grid (cap buckets nearest ``anchor``), with zero pads."""
    if px.size == 0 or float(vol.sum()) <= 0:
        return None
    total = float(vol.sum())
    keys = bucket_keys(px, size)
    k0, k1 = int(keys.min()), int(keys.max())
    cap = max(int(cap), 1)
    if k1 - k0 + 1 > cap:
        a = math.floor(anchor / size) if math.isfinite(anchor) else (k0 + k1) // 2
        k0 = min(max(a - cap // 2, k0), k1 - cap + 1)
        k1 = k0 + cap - 1
        inside = (keys >= k0) & (keys <= k1)
        keys, vol = keys[inside], vol[inside]
    lo_pad, hi_pad = int(pad_low), int(pad_high)
    first = k0 - lo_pad
    dense = np.bincount(keys - first, weights=vol, minlength=k1 - first + 1 + hi_pad)
    grid_px = (first + np.arange(dense.size)) * size
    return _Grid(grid_px, dense, lo_pad, dense.size - 1 - hi_pad, total, first)


def _zones(grid: _Grid, size: float, peaks: Sequence[Found], kind: str) -> list[_Found]:
    """Peaks (or walls) as price bands; pad rows are never a peak and never part of a zone."""
    out = []
    total = grid.total or 1.0
    for p in peaks:
        if not grid.real_lo <= p.index <= grid.real_hi:
            continue
        lo, hi = max(p.low_index, grid.real_lo), min(p.high_index, grid.real_hi)
        volume = float(grid.vol[lo : hi + 1].sum())
        low, high = float(grid.px[lo]), float((grid.first + hi + 1) * size)
        price = float(grid.px[p.index] + size / 2)
        zone = _zone(low, high, price, volume, volume / total, p.confidence, kind)
        out.append(_Found(float(grid.px[p.index]), zone))
    return out


def _zone(*values: float | str) -> Zone:
    return Zone(**dict(zip(ZONE_FIELDS, values, strict=True)))


def _array(zones: list[Zone]) -> np.ndarray:
    """Zones as the core returns them: rows of ``ZONE_FIELDS``, the kind as its index."""
    rows = [[ZONE_KINDS.index(z.kind) if f == "kind" else getattr(z, f) for f in ZONE_FIELDS] for z in zones]
    return np.array(rows, dtype=np.float64).reshape(-1, len(ZONE_FIELDS))


def _buckets(fraction: float, price: float, size: float) -> int:
    """A price width as whole buckets, at least one."""
    return max(1, math.ceil(round(fraction * price / size, 9)))


def _below(found: _Found, mid: float) -> Zone | None:
    """The zone as support (strictly below the mid), clipped at the mid; None if it is not below."""
    z = found.zone
    if not found.peak_px < mid:
        return None
    high = min(z.high, mid)
    price = z.price if z.price < mid else (found.peak_px + mid) / 2
    if not (z.low <= price < mid and z.low < high):
        return None
    return _zone(z.low, high, price, z.volume, z.strength, z.confidence, z.kind)


def _above(found: _Found, mid: float, size: float) -> Zone | None:
    """The zone as resistance (strictly above the mid), clipped at the mid."""
    z = found.zone
    top = found.peak_px + size
    if not top > mid:
        return None
    low = max(z.low, mid)
    price = z.price if z.price > mid else (mid + top) / 2
    if not (mid < price <= z.high and low < z.high):
        return None
    return _zone(low, z.high, price, z.volume, z.strength, z.confidence, z.kind)


def _overlaps(a: Zone, b: Zone) -> bool:
    return a.low < b.high and b.low < a.high


def _rank(zones: list[Zone], limit: int) -> list[Zone]:
    """Most confident first, then the largest volume share, then the lowest price; at most
    ``limit``, none overlapping a better one of its kind."""
    kept: list[Zone] = []
    for z in sorted(zones, key=lambda z: (-z.confidence, -z.strength, z.price)):
        if len(kept) >= limit:
            break
        if not any(_overlaps(z, k) and z.kind == k.kind for k in kept):
            kept.append(z)
    return kept


Sided = list[tuple[float, Zone]]  # (lower edge of the peak bucket, zone on its side of the mid)


def _side(book: Sided, trade: Sided, reach: float, limit: int) -> list[Zone]:
    """Book zones, plus trade zones that neither overlap a book zone nor resonate with one
    (peaks within ``reach``): those are one level seen twice, reported once and as a resonance."""
    extra = [tz for tp, tz in trade if not any(_overlaps(tz, bz) or abs(tp - bp) <= reach for bp, bz in book)]
    return _rank([bz for _, bz in book] + extra, limit)


def _resonance(book: list[_Found], trade: list[_Found], reach: float, limit: int) -> list[Zone]:
    """Book peaks with a trade peak within ``reach`` (price units); each book peak takes the nearest.

    The zone spans both; its volume adds resting and traded base quantity; its strength is the
    mean of the two shares; its confidence treats the two as independent evidence,
    ``1 - (1 - c_book)(1 - c_trade)``; its kind is the book zone's.
    """
    out = []
    if not trade:
        return out
    tpx = np.array([t.peak_px for t in trade])
    for b in book:
        j = int(np.argmin(np.abs(tpx - b.peak_px)))
        if abs(tpx[j] - b.peak_px) > reach:
            continue
        bz, tz = b.zone, trade[j].zone
        out.append(
            _zone(
                min(bz.low, tz.low),
                max(bz.high, tz.high),
                (bz.price + tz.price) / 2,
                bz.volume + tz.volume,
                (bz.strength + tz.strength) / 2,
                1 - (1 - bz.confidence) * (1 - tz.confidence),
                bz.kind,  # a wall where trades hit a wall is a wall
            )
        )
    return _rank(out, limit)


def _levels(
    grid: _Grid, size: float, p: PeakParams, price: float
) -> tuple[float, float, float, list[float], list[float]]:
    """POC, VAL, VAH, HVN and LVN prices of one (unpadded) dense profile."""
    poc = point_of_control(grid.px, grid.vol)
    lo, hi = value_area(grid.vol, poc, p.value_area_fraction, _buckets(p.value_area_step, price, size))
    hvn, lvn = volume_nodes(grid.vol, p.node_smooth, p.node_prominence_z, p.node_window)
    return (
        float(grid.px[poc]),
        float(grid.px[lo]),
        float(grid.px[hi] + size),
        grid.px[hvn].tolist(),
        grid.px[lvn].tolist(),
    )


def analyse(
    bid_px: np.ndarray,
    bid_qty: np.ndarray,
    ask_px: np.ndarray,
    ask_qty: np.ndarray,
    bucket_size: float,
    mid: float,
    known_low: float,
    known_high: float,
    trade_px: np.ndarray | None = None,
    trade_vol: np.ndarray | None = None,
    params: PeakParams | None = None,
) -> Analysis:
    """``depthflow.peaks.zones.analyse``, object by object; see its docstring for the contract."""
    p = params or PeakParams()
    size = float(bucket_size)
    mid = float(mid)
    bpx, bq = _clean(bid_px, bid_qty)
    apx, aq = _clean(ask_px, ask_qty)
    tpx, tv = _clean(trade_px, trade_vol)
    fallback = mid if math.isfinite(mid) else 0.0
    if not (math.isfinite(size) and size > 0):
        return Analysis(fallback, fallback, fallback)
    price = mid if math.isfinite(mid) and mid > 0 else 0.5 * (float(known_low) + float(known_high))
    price = price if math.isfinite(price) and price > 0 else size

    anchor = mid if math.isfinite(mid) else np.nan
    cap = p.max_buckets
    bids = _grid(bpx, bq, size, anchor, cap, pad_low=False, pad_high=True)
    asks = _grid(apx, aq, size, anchor, cap, pad_low=True, pad_high=False)
    trades = _grid(tpx, tv, size, anchor, cap, pad_low=True, pad_high=True)

    def found(grid: _Grid | None) -> list[_Found]:
        if grid is None:
            return []
        found = find_wave_peaks(grid.vol, p)
        return _zones(grid, size, found.peaks, "wave") + _zones(grid, size, found.walls, "wall")

    bid_found, ask_found, trade_found = found(bids), found(asks), found(trades)
    book_px, book_q = np.concatenate((bpx, apx)), np.concatenate((bq, aq))

    def sided(found: list[_Found], to_side: Callable[[_Found, float], Zone | None]) -> Sided:
        if not math.isfinite(mid):
            return []
        return [(f.peak_px, z) for f in found if (z := to_side(f, mid)) is not None]

    below = _below
    above = partial(_above, size=size)
    reach = (_buckets(p.resonance_tolerance, price, size) + 0.5) * size  # peaks are whole buckets apart
    support = _side(sided(bid_found, below), sided(trade_found, below), reach, p.max_zones)
    resistance = _side(sided(ask_found, above), sided(trade_found, above), reach, p.max_zones)
    resonance = _resonance(bid_found + ask_found, trade_found, reach, p.max_zones)

    book = _grid(book_px, book_q, size, anchor, cap, pad_low=False, pad_high=False)
    primary = trades if trades is not None else book
    if primary is not None:
        # the pads of the trade grid are zero rows outside its range: drop them for the levels
        core = _Grid(
            primary.px[primary.real_lo : primary.real_hi + 1],
            primary.vol[primary.real_lo : primary.real_hi + 1],
            0,
            primary.real_hi - primary.real_lo,
            primary.total,
            primary.first + primary.real_lo,
        )
        poc, val, vah, hvn, lvn = _levels(core, size, p, price)
    else:
        poc = val = vah = fallback
        hvn, lvn = [], []

    min_run = _buckets(p.vacuum_min_width, price, size)
    gaps = vacuums(book_px, book_q, size, known_low, known_high, p.vacuum_alpha, min_run)
    return Analysis(
        poc=poc,
        value_area_low=val,
        value_area_high=vah,
        support=_array(support),
        resistance=_array(resistance),
        high_volume_nodes=hvn,
        low_volume_nodes=lvn,
        vacuums=gaps,
        resonance=_array(resonance),
    )

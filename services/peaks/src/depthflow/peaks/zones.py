"""Zones and levels of one bucketed book (plus the trade profile): the peaks service's pure core.

:func:`analyse` turns the aggregator's arrays into an :class:`Analysis`: point of control and
value area, high and low volume nodes, support and resistance zones, liquidity vacuums, and
resonance zones where book and trade peaks coincide. It is the shell over the detectors
(:mod:`depthflow.peaks.detectors`), the levels (:mod:`depthflow.peaks.levels`) and the vacuums
(:mod:`depthflow.peaks.vacuums`), and owns the gridding, the zones and their ranking.

Zones are rows of a float array, columns :data:`ZONE_FIELDS` (those of
``depthflow.common.messages.Zone``, in order); the handler makes the few reported ones into
``Zone`` messages. Why not ``Zone`` here: the core stays free of the wire types (the
architecture's rule: handlers translate, cores compute), and a ``Zone`` validates itself when
built, which the handler pays once per published zone anyway; building a second record type here
(the old ``ZoneOut``) cost an object per zone for nothing.

Ranking: a side's book zones and trade zones compete for its ``max_zones`` places by confidence,
a comparable 0-1 figure from every detector; the volume share (``strength``) breaks ties, then
the lower price. Why confidence first: a share of the book and a share of the traded volume are
shares of different totals, so they do not compare; the detectors' confidences do.

Relative thresholds: price widths (the value area's step, the vacuums' minimum width, the
resonance tolerance) are fractions of the mid, turned into whole buckets here (at least one);
volumes compare only with their own profile. So multiplying every price and the bucket size by
10^k multiplies every output price by 10^k and changes nothing else (a property test checks it).

Why dense grids: the aggregator sends only non-empty buckets, but "the next row" of a value area
and "a neighbour" of a peak mean the next *price*, so each profile is laid on a regular grid of
``bucket_size`` with zeros in the gaps before any detector runs. A grid is capped at
``params.max_buckets`` buckets, keeping those nearest the mid, so a stray far-away level cannot
make it huge. Where the profile is known to be empty beyond its edge (above the best bid, below
the best ask, outside the traded range) one zero bucket is added, so a wall at the touch is an
interior peak and not an edge; at the deep end of the book the data just stops, and nothing is
assumed.

Prices: POC, HVN and LVN levels are bucket lower edges (the aggregator's label of a bucket); the
value area runs from the lower edge of its low row to the upper edge of its high row; a zone's
``price`` is the centre of its peak bucket, moved to the middle of the part below (support) or
above (resistance) the mid when the bucket straddles it, so support is always strictly below the
mid and resistance strictly above.

Why kernels all the way to the ranked zones: a 5000-level book gives each profile tens of peaks,
and building, clipping, pairing and ranking them as Python objects cost ~1.5 ms a snapshot, ten
times the detectors themselves. Here a zone is a row of a float array (columns ``_LOW`` ...
``_PEAK``) from the grid to the ranking, and only the few reported zones become objects (by the
handler). The whole numeric part of :func:`analyse` is one call (:func:`_analysis`): made as a
dozen calls from Python (grids, detectors, zone rows, ranking, levels, vacuums), numba's argument
typing and the glue between them cost as much as the kernels (412 -> 220 us on the analysis
bench's snapshot). Kernels here may call kernels of other modules (the bucket rule of
``depthflow.common.pricing``): :func:`depthflow.peaks.jit.kernel` keeps numba's cache right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from depthflow.common.pricing import MAX_INDEX, scaled_index
from depthflow.peaks.detectors import detect_arrays
from depthflow.peaks.jit import kernel
from depthflow.peaks.kernels import kernel_params
from depthflow.peaks.levels import profile_levels
from depthflow.peaks.params import DEFAULT, PeakParams
from depthflow.peaks.vacuums import vacuum_bands

__all__ = ["ZONE_FIELDS", "ZONE_KINDS", "Analysis", "PeakParams", "analyse"]

ZONE_FIELDS = ("low", "high", "price", "volume", "strength", "confidence", "kind")
"""The columns of a zone array: ``depthflow.common.messages.Zone``'s fields, in order.
``strength`` is the zone's share of its profile's volume, ``confidence`` its detector's 0-1,
``kind`` the index of the zone's kind in :data:`ZONE_KINDS`."""

ZONE_KINDS = ("wave", "wall")
"""What a zone is: a wave peak (a hump) or a wall (one or two buckets); ``messages.ZoneKind``."""

_NO_ZONES = np.empty((0, len(ZONE_FIELDS)))
_NO_ZONES.flags.writeable = False


@dataclass(frozen=True)
class Analysis:
    """Everything the peaks service publishes about one book; see the module doc for prices.

    ``support``, ``resistance`` and ``resonance`` are ``(n, 7)`` arrays of zones, columns
    :data:`ZONE_FIELDS`, best first."""

    poc: float
    value_area_low: float
    value_area_high: float
    support: np.ndarray = field(default_factory=lambda: _NO_ZONES)
    resistance: np.ndarray = field(default_factory=lambda: _NO_ZONES)
    high_volume_nodes: list[float] = field(default_factory=list)
    low_volume_nodes: list[float] = field(default_factory=list)
    vacuums: list[tuple[float, float]] = field(default_factory=list)
    resonance: np.ndarray = field(default_factory=lambda: _NO_ZONES)


# a zone row: the columns of ZONE_FIELDS, then the lower edge of its peak bucket
_LOW, _HIGH, _PRICE, _VOLUME, _STRENGTH, _CONF, _KIND, _PEAK = range(8)
_COLUMNS = 8


# --- kernels --------------------------------------------------------------------------------------


@kernel
def _keyed(px, vol, size, keys, vals, m, total, k0, k1):
    """Append the levels' bucket keys and clean volumes at ``m``; the running count, total and
    key range. Non-finite prices and keys from ``MAX_INDEX`` on are dropped (the edge rule no
    longer holds there); bad volumes count 0."""
    inv = 1.0 / size
    for i in range(px.size):
        p = px[i]
        if not math.isfinite(p):
            continue
        kf = scaled_index(p, inv)
        if not abs(kf) < MAX_INDEX:
            continue
        k = np.int64(kf)
        q = vol[i]
        q = q if math.isfinite(q) and q > 0.0 else 0.0
        keys[m] = k
        vals[m] = q
        total += q
        k0 = k if m == 0 else min(k0, k)
        k1 = k if m == 0 else max(k1, k)
        m += 1
    return m, total, k0, k1


@kernel
def _grid(px, vol, px2, vol2, size, anchor, cap, pad_low, pad_high):
    """Lay a sparse profile (the levels of ``px, vol`` and of ``px2, vol2``, e.g. bids and asks)
    on a dense grid (``cap`` buckets nearest ``anchor``), with zero pads.

    Non-finite prices are dropped and bad volumes (NaN, inf, < 0) count as 0. The bucket key is
    the aggregator's, ``depthflow.common.pricing``'s edge rule: inputs are bucket lower edges,
    which it maps back to their own bucket whatever their float rounding. Why two sources: the
    book's grid is the bids' and the asks' together, and concatenating them first cost more than
    the gridding.

    Returns (first, volumes, real_lo, real_hi, total, whole): bucket ``i`` has lower edge
    ``(first + i) * size``; volumes are empty when the profile holds none; ``real_lo`` and
    ``real_hi`` are the first and last index holding data (the rest are the zero pads);
    ``total`` the volume of the whole input, buckets the cap left out included; ``whole`` that
    the cap left nothing out.
    """
    keys = np.empty(px.size + px2.size, dtype=np.int64)
    vals = np.empty(px.size + px2.size, dtype=np.float64)
    m, total, k0, k1 = _keyed(px, vol, size, keys, vals, 0, 0.0, np.int64(0), np.int64(0))
    m, total, k0, k1 = _keyed(px2, vol2, size, keys, vals, m, total, k0, k1)
    none = np.empty(0, dtype=np.float64)
    if m == 0 or not total > 0.0:
        return np.int64(0), none, 0, -1, total, True
    whole = k1 - k0 + 1 <= cap
    if not whole:
        if not math.isfinite(anchor):
            a = (k0 + k1) // 2
        else:
            af = math.floor(anchor / size)
            a = k0 - cap if af <= k0 - cap else (k1 + cap if af >= k1 + cap else np.int64(af))
        k0 = min(max(a - cap // 2, k0), k1 - cap + 1)
        k1 = k0 + cap - 1
    lo_pad = 1 if pad_low else 0
    hi_pad = 1 if pad_high else 0
    first = k0 - lo_pad
    dense = np.zeros(k1 - first + 1 + hi_pad, dtype=np.float64)
    for t in range(m):
        k = keys[t]
        if k0 <= k <= k1:
            dense[k - first] += vals[t]
    return first, dense, lo_pad, dense.size - 1 - hi_pad, total, whole


@kernel
def _zone_rows(first, size, v, real_lo, real_hi, total, idx, lo, hi, conf, kind):
    """Peaks or walls (index arrays on the grid, of ``kind``) as zone rows; pad rows are never
    a peak nor in a zone."""
    rows = np.empty((idx.size, _COLUMNS), dtype=np.float64)
    share = total if total != 0.0 else 1.0
    m = 0
    for t in range(idx.size):
        i = idx[t]
        if not real_lo <= i <= real_hi:
            continue
        a = max(lo[t], real_lo)
        b = min(hi[t], real_hi)
        volume = 0.0
        for u in range(a, b + 1):
            volume += v[u]
        peak = (first + i) * size
        rows[m, _LOW] = (first + a) * size
        rows[m, _HIGH] = (first + b + 1) * size  # as a next zone's low: touching zones compare equal
        rows[m, _PRICE] = peak + size / 2
        rows[m, _VOLUME] = volume
        rows[m, _STRENGTH] = volume / share
        rows[m, _CONF] = conf[t]
        rows[m, _KIND] = kind
        rows[m, _PEAK] = peak
        m += 1
    return rows[:m]


@kernel
def _below(rows, mid):
    """The zones as support (strictly below the mid), clipped at the mid; others are dropped."""
    out = np.empty_like(rows)
    m = 0
    for r in range(rows.shape[0]):
        peak = rows[r, _PEAK]
        if not peak < mid:
            continue
        low = rows[r, _LOW]
        high = min(rows[r, _HIGH], mid)
        price = rows[r, _PRICE] if rows[r, _PRICE] < mid else (peak + mid) / 2
        if not (low <= price < mid and low < high):
            continue
        out[m] = rows[r]
        out[m, _HIGH] = high
        out[m, _PRICE] = price
        m += 1
    return out[:m]


@kernel
def _above(rows, mid, size):
    """The zones as resistance (strictly above the mid), clipped at the mid."""
    out = np.empty_like(rows)
    m = 0
    for r in range(rows.shape[0]):
        top = rows[r, _PEAK] + size
        if not top > mid:
            continue
        high = rows[r, _HIGH]
        low = max(rows[r, _LOW], mid)
        price = rows[r, _PRICE] if rows[r, _PRICE] > mid else (mid + top) / 2
        if not (mid < price <= high and low < high):
            continue
        out[m] = rows[r]
        out[m, _LOW] = low
        out[m, _PRICE] = price
        m += 1
    return out[:m]


@kernel
def _before(rows, x, y):
    """Whether row ``x`` ranks before row ``y``: higher confidence, then higher volume share,
    then lower price."""
    cx, cy = rows[x, _CONF], rows[y, _CONF]
    if cx != cy:
        return cx > cy
    sx, sy = rows[x, _STRENGTH], rows[y, _STRENGTH]
    if sx != sy:
        return sx > sy
    return rows[x, _PRICE] < rows[y, _PRICE]


@kernel
def _rank(rows, limit):
    """Best first (:func:`_before`; then input order), at most ``limit`` rows, each overlapping
    no better one of its kind.

    Why drop overlapping ones: a book peak and a trade peak of one hump, or two humps' zones
    spilling into each other, are one level; listed apart, one level would take several of the
    ``limit`` places. Why only of its kind: a wall standing on a hump is a level of its own (one
    big order) inside the hump's band, and the hump does not stop being one. An insertion sort:
    stable, and there are tens of rows, not thousands."""
    n = rows.shape[0]
    order = np.arange(n)
    for i in range(1, n):
        x = order[i]
        j = i
        while j > 0:
            y = order[j - 1]
            if not _before(rows, x, y):
                break
            order[j] = y
            j -= 1
        order[j] = x
    out = np.empty((min(n, max(limit, 0)), _COLUMNS), dtype=np.float64)
    k = 0
    for t in range(n):
        if k == out.shape[0]:
            break
        r = order[t]
        apart = True
        for u in range(k):
            same_kind = rows[r, _KIND] == out[u, _KIND]
            if same_kind and rows[r, _LOW] < out[u, _HIGH] and out[u, _LOW] < rows[r, _HIGH]:
                apart = False
                break
        if apart:
            out[k] = rows[r]
            k += 1
    return out[:k]


@kernel
def _side(book, trade, reach, limit):
    """Book zones, plus trade zones that neither overlap a book zone nor resonate with one
    (peaks within ``reach``): those are one level seen twice, reported once and as a resonance.
    The rest compete for the ``limit`` places by confidence (:func:`_rank`)."""
    rows = np.empty((book.shape[0] + trade.shape[0], _COLUMNS), dtype=np.float64)
    m = book.shape[0]
    rows[:m] = book
    for t in range(trade.shape[0]):
        lone = True
        for b in range(book.shape[0]):
            overlap = trade[t, _LOW] < book[b, _HIGH] and book[b, _LOW] < trade[t, _HIGH]
            if overlap or abs(trade[t, _PEAK] - book[b, _PEAK]) <= reach:
                lone = False
                break
        if lone:
            rows[m] = trade[t]
            m += 1
    return _rank(rows[:m], limit)


@kernel
def _resonance(book, trade, reach, limit):
    """Book peaks with a trade peak within ``reach`` (price units); each book peak takes the
    nearest (the first of equally near ones).

    The zone spans both; its volume adds resting and traded base quantity; its strength is the
    mean of the two shares; its confidence treats the two as independent evidence,
    ``1 - (1 - c_book)(1 - c_trade)``; its kind is the book zone's (a wall where trades hit a
    wall is a wall).
    """
    out = np.empty((book.shape[0], _COLUMNS), dtype=np.float64)
    m = 0
    for b in range(book.shape[0] if trade.shape[0] else 0):
        bp = book[b, _PEAK]
        j = 0
        best = abs(trade[0, _PEAK] - bp)
        for t in range(1, trade.shape[0]):
            d = abs(trade[t, _PEAK] - bp)
            if d < best:
                best, j = d, t
        if best > reach:
            continue
        out[m, _LOW] = min(book[b, _LOW], trade[j, _LOW])
        out[m, _HIGH] = max(book[b, _HIGH], trade[j, _HIGH])
        out[m, _PRICE] = (book[b, _PRICE] + trade[j, _PRICE]) / 2
        out[m, _VOLUME] = book[b, _VOLUME] + trade[j, _VOLUME]
        out[m, _STRENGTH] = (book[b, _STRENGTH] + trade[j, _STRENGTH]) / 2
        out[m, _CONF] = 1 - (1 - book[b, _CONF]) * (1 - trade[j, _CONF])
        out[m, _KIND] = book[b, _KIND]
        out[m, _PEAK] = bp
        m += 1
    return _rank(out[:m], limit)


@kernel
def _zones(bids, asks, trades, mid, size, reach, limit):
    """(support, resistance, resonance) rows from each profile's zone rows."""
    none = np.empty((0, _COLUMNS), dtype=np.float64)
    support = resistance = none
    if math.isfinite(mid):
        support = _side(_below(bids, mid), _below(trades, mid), reach, limit)
        resistance = _side(_above(asks, mid, size), _above(trades, mid, size), reach, limit)
    book = np.concatenate((bids, asks))
    return support, resistance, _resonance(book, trades, reach, limit)


# --- the shell over the kernels -------------------------------------------------------------------


def _readonly(a: np.ndarray | None) -> np.ndarray:
    """A read-only, contiguous float64 view (a copy only when needed).

    Why read-only: numba compiles one specialisation per argument type, and read-only is a type;
    the service's inputs are read-only views of message bytes, so making every caller's arrays
    read-only means the one specialisation warmed at import serves all, and no message pays JIT.
    """
    out = np.ascontiguousarray(np.empty(0) if a is None else a, dtype=np.float64).ravel()
    if out.flags.writeable:
        out = out.view()
        out.flags.writeable = False
    return out


def _pair(px: np.ndarray | None, vol: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if px is None or vol is None:
        px = vol = None
    p, v = _readonly(px), _readonly(vol)
    if p.size != v.size:
        raise ValueError(f"prices and volumes differ in length ({p.size} != {v.size})")
    return p, v


@kernel
def _grid_zone_rows(grid, size, kp):
    """Wave peaks and walls (:func:`depthflow.peaks.detectors.detect_arrays`) of one grid as
    zone rows; ``ok`` False when its volumes are not all finite (levels summed past the float
    range into one bucket), which fails the analysis closed."""
    first, v, real_lo, real_hi, total, _ = grid
    none = np.empty((0, _COLUMNS), dtype=np.float64)
    if not total < np.inf:  # a bucket can be inf only then (buckets are >= 0 and sum to <= total)
        bad = False
        for i in range(v.size):
            bad |= not v[i] < np.inf
        if bad:
            return False, none
    if v.size == 0:
        return True, none
    (wi, wlo, whi, _, wcf), (li, llo, lhi, _, lcf) = detect_arrays(v, kp)
    return True, np.concatenate((
        _zone_rows(first, size, v, real_lo, real_hi, total, wi, wlo, whi, wcf, 0.0),
        _zone_rows(first, size, v, real_lo, real_hi, total, li, llo, lhi, lcf, 1.0),
    ))


@kernel
def _first_non_finite(parts):
    """(index of the first array of ``parts`` holding a non-finite number, that number); (-1, 0)
    when all are finite."""
    for k in range(len(parts)):
        a = parts[k].ravel()
        for i in range(a.size):
            if not math.isfinite(a[i]):
                return k, a[i]
    return -1, 0.0


_RESULT_PARTS = ("poc, value area", "support", "resistance", "resonance", "high_volume_nodes",
                 "low_volume_nodes", "vacuums")
"""What :func:`_analysis` checks for finiteness, in its order (names for the error)."""


@kernel
def _analysis(bpx, bq, apx, aq, tpx, tq, size, mid, params, reach, rows, min_run, known_low, known_high):
    """The whole numeric part of :func:`analyse` in one call (each call from Python into numba
    costs microseconds of argument typing, and the analysis made a dozen): the grids, zone rows
    of each profile, support/resistance/resonance, the levels of the trade profile (of the book
    when it has no volume) and the vacuums. ``reach``, ``rows`` and ``min_run``: the resonance
    reach (price units), the value area's step and the vacuums' minimum width (buckets).

    Returns (fault, value, support, resistance, resonance, levels, hvn, lvn, gaps): fault 0, or
    1 when a profile's volumes sum past the float range, or 2 + the index in
    :data:`_RESULT_PARTS` of a result that is not finite (``value``: the first such number);
    zones without their internal peak column; ``levels`` (POC, value area low, high) empty when
    no profile holds volume."""
    kp = kernel_params(params)
    anchor = mid if math.isfinite(mid) else np.nan
    cap = max(int(kp.max_buckets), 1)
    no_levels = bpx[:0]  # a second source that adds nothing (of the first's array type)
    bids = _grid(bpx, bq, no_levels, no_levels, size, anchor, cap, False, True)
    asks = _grid(apx, aq, no_levels, no_levels, size, anchor, cap, True, False)
    trades = _grid(tpx, tq, no_levels, no_levels, size, anchor, cap, True, True)
    book = _grid(bpx, bq, apx, aq, size, anchor, cap, False, False)
    ok_b, b_rows = _grid_zone_rows(bids, size, kp)
    ok_a, a_rows = _grid_zone_rows(asks, size, kp)
    ok_t, t_rows = _grid_zone_rows(trades, size, kp)
    empty = np.empty(0, dtype=np.float64)
    gaps = np.empty((0, 2), dtype=np.float64)
    none = np.empty((0, _PEAK), dtype=np.float64)
    if not (ok_b and ok_a and ok_t):
        return 1, 0.0, none, none, none, empty, empty, empty, gaps
    support, resistance, resonance = _zones(b_rows, a_rows, t_rows, mid, size, reach, int(kp.max_zones))

    primary = trades if trades[1].size else book
    levels, hvn_px, lvn_px = empty, empty, empty
    first, v, lo, hi, _, _ = primary
    if v.size:
        px = (first + np.arange(lo, hi + 1)) * size
        poc, val, vah, hvn, lvn = profile_levels(px, v[lo : hi + 1], kp, rows)
        levels = np.array([px[poc], px[val], px[vah] + size])
        hvn_px, lvn_px = px[hvn], px[lvn]

    # the book's grid is its levels bucket by bucket, sorted, zeros where none: what vacuums need,
    # unless the cap left some out (then the levels themselves, which cost a sort)
    first, v, _, _, _, whole = book
    if whole:
        gap_px, gap_q = (first + np.arange(v.size)) * size, v
    else:
        gap_px, gap_q = np.concatenate((bpx, apx)), np.concatenate((bq, aq))
    gaps = vacuum_bands(gap_px, gap_q, size, known_low, known_high, kp.vacuum_alpha, min_run)
    zones = (np.ascontiguousarray(support[:, :_PEAK]), np.ascontiguousarray(resistance[:, :_PEAK]),
             np.ascontiguousarray(resonance[:, :_PEAK]))
    bad, value = _first_non_finite((levels.reshape(1, -1), *zones, hvn_px.reshape(1, -1),
                                    lvn_px.reshape(1, -1), gaps))
    return 0 if bad < 0 else 2 + bad, value, *zones, levels, hvn_px, lvn_px, gaps


_MAX_ROWS = 2**31  # a price width of more buckets than this is as good as infinite


def _buckets(fraction: float, price: float, size: float) -> int:
    """Whole buckets covering ``fraction`` of ``price``, at least one: a price width on the grid.

    Why rounded to 9 places before the ceiling: ``fraction * price / size`` of a price and size
    scaled by ``10^k`` differs in the last bits, and an exact whole number must not become the
    next one (the scaled book would then have other vacuums)."""
    n = round(fraction * price / size, 9)
    return int(min(max(math.ceil(n), 1), _MAX_ROWS)) if math.isfinite(n) else _MAX_ROWS


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
    """Analyse one bucketed book (ascending lower edges per side) and the optional trade profile.

    * POC, value area and volume nodes come from the trade profile when it has volume, else from
      the book (bids and asks on one grid).
    * Support: bid-side peaks below the mid, plus trade-profile peaks below it that overlap no book
      zone; resistance likewise from the asks. Best first (confidence, then volume share), at
      most ``params.max_zones``, none overlapping a better one (likewise the resonance zones).
    * Vacuums: from the book, inside ``[known_low, known_high]`` only, at least
      ``params.vacuum_min_width`` of the mid wide.
    * Resonance: a book peak and a trade peak within ``params.resonance_tolerance`` of the mid.

    Price widths are fractions of the mid (of the known range's middle when the mid is not a
    positive number), at least one bucket.

    Empty sides, one bucket, flat volumes, zeros, NaNs or a mid outside the data give no zones
    (and POC/value area at the mid when there is no volume at all). Fails closed on the rest:
    a result that would not be finite (volumes summing past the float range) raises
    ``ValueError`` naming it, never goes out; so do mismatched price/volume lengths.
    """
    p = params or DEFAULT
    size, mid = float(bucket_size), float(mid)
    bpx, bq = _pair(bid_px, bid_qty)
    apx, aq = _pair(ask_px, ask_qty)
    tpx, tq = _pair(trade_px, trade_vol)
    fallback = mid if math.isfinite(mid) else 0.0
    if not (math.isfinite(size) and size > 0):
        return Analysis(fallback, fallback, fallback)
    price = mid if math.isfinite(mid) and mid > 0 else 0.5 * (float(known_low) + float(known_high))
    price = price if math.isfinite(price) and price > 0 else size

    # peaks lie whole buckets apart: half a bucket more keeps "within n buckets" off float ties
    reach = (_buckets(p.resonance_tolerance, price, size) + 0.5) * size
    rows, min_run = _buckets(p.value_area_step, price, size), _buckets(p.vacuum_min_width, price, size)
    fault, value, support, resistance, resonance, levels, hvn, lvn, gaps = _analysis(
        bpx, bq, apx, aq, tpx, tq, size, mid, p.kernel_array, reach, rows, min_run,
        float(known_low), float(known_high))
    if fault == 1:
        raise ValueError("analyse: a profile's volumes sum past the float range in one bucket")
    if fault:
        raise ValueError(f"analyse: {_RESULT_PARTS[fault - 2]} is not finite ({value!r})")
    poc, val, vah = levels.tolist() if levels.size else (fallback,) * 3
    return Analysis(
        poc=poc,
        value_area_low=val,
        value_area_high=vah,
        support=support,
        resistance=resistance,
        high_volume_nodes=hvn.tolist(),
        low_volume_nodes=lvn.tolist(),
        vacuums=[(a, b) for a, b in gaps.tolist()],
        resonance=resonance,
    )


def _warm() -> None:
    """Compile (or load from the on-disk cache) every kernel with the types :func:`analyse` uses."""
    px = np.arange(90.0, 110.0)
    vol = np.ones(px.size)
    vol[5] = vol[15] = 9.0
    analyse(px[:10], vol[:10], px[10:], vol[10:], 1.0, 100.0, 90.0, 110.0, px, vol)
    analyse(px[:10], vol[:10], px[10:], vol[10:], 1.0, 100.0, 90.0, 110.0)


_warm()

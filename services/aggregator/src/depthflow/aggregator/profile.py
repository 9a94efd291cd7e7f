"""The rolling trade profile: buy and sell volume by price bucket over sliding windows of minutes.

Why minute buckets and running totals: the 48 h window (2880 minutes) slides by whole minutes, so
each window keeps a running total that gains a minute's volume when it arrives and loses it when
it falls out. An update costs time proportional to the trades added plus the minutes that leave
some window (normally one per window, once a minute), never to the minutes held, and a
1 h / 4 h / 24 h / 48 h query is a read of a total.

Totals are one dense float64 array ``[window, bucket, side]`` over bucket keys
(``pricing.bucket_keys(price, size)``) from a base key that grows, with slack, as prices move. Each held
minute keeps its volume sparsely: its keys (ascending) and a ``[key, side]`` array. Why sparse
rather than dense over the minute's key span: a minute then costs memory (and checkpoint bytes)
in proportion to its trades, not to its price range, which at a fine bucket (0.01 at BTC prices)
is ~100 times larger; the kernels make the sparse form as cheap to add, merge and expire.

Why numba kernels: on a batch of a few hundred trades each numpy call costs microseconds of
overhead, and a numpy version of this takes dozens of them. Here one kernel filters a batch (unseen, not
late) and sums it by (minute, key), one adds it to the totals, and one lists the non-empty
buckets. Kernels are compiled for explicit signatures at import (or loaded from numba's on-disk
cache), so no message pays the JIT; their arrays are typed read-only, which writable arrays
convert to for free, so one compiled version serves both the handlers' ``np.frombuffer`` views
and the tests' arrays, and an array of another type is refused rather than compiled on the spot.

Trades are counted once, whatever the order or repetition of batches: applied ids are kept as a
set of intervals (ids arrive nearly consecutive, so it stays a handful of intervals), and a
trade older than the longest window is dropped as late.

Fail closed, and all or nothing: :meth:`RollingProfile.add` checks the whole batch (prices finite
and > 0, quantities finite and >= 0, bucket indices below ``MAX_INDEX``, the widened totals within
``max_buckets``) before it records a single id, and raises ``ValueError`` naming the problem with
the state untouched. Why the order matters: ids recorded before a failure made the retry of the
batch look like a duplicate, so one NaN price silently dropped its five good neighbours. Why a
cap: the totals are dense over the held price range, so two trades at 10 and 3e6 once allocated
183 MB (and checkpointed it every 5 s); now the totals cover only what held minutes use (the range
is re-based when it must grow) and never more than ``max_buckets`` buckets.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import msgspec
import numpy as np
from numba import njit, types

from depthflow.common.checkpoint import IncompatibleState
from depthflow.common.messages import check_prices, check_quantities
from depthflow.common.pricing import MAX_INDEX, bucket_index

NS_PER_MIN = 60_000_000_000
WINDOWS_MIN = (60, 240, 1440, 2880)
MAX_BUCKETS = 250_000
"""Default cap on the totals' width: 64 bytes a bucket (4 windows x 2 sides x float64), so 16 MB."""

FORMAT_VERSION = 2
"""Version of the checkpoint format :meth:`RollingProfile.to_bytes` writes. Version 1 (which had
no ``version`` field) kept one ``[side, key]`` totals array per window."""

_RESIDUE_REL = 1e-12
"""Totals at or below this fraction of the volume ever added are float residue of subtraction,
not volume: ``arrays`` skips them. Why relative: a subtraction leaves a few units in the last
place of the totals it worked on, and those scale with the quantities: trades of 1e9 units (a
sub-cent coin) left 1.2e-7 in an emptied bucket, which an absolute 1e-12 listed as volume."""

_I64 = types.Array(types.int64, 1, "C", readonly=True)
_F64 = types.Array(types.float64, 1, "C", readonly=True)
_ROWS = types.Array(types.int64, 2, "C", readonly=True)  # a batch's minutes: [minute, field]
_VOL = types.Array(types.float64, 2, "C", readonly=True)  # [key, side]
_TOTALS = types.Array(types.float64, 3, "C")  # [window, bucket, side]
_COUNTS = types.Array(types.int64, 1, "C")  # trades per window

_keys = njit((_F64, types.float64), cache=True, nogil=True)(bucket_index)
"""``bucket_index`` itself, compiled: the numpy form makes ~8 array operations (~14 us on a
300-trade batch here) where this makes one pass. Why compile the shared rule's numpy function
rather than call its scalar ``scaled_index`` from ours: one source of the edge rule, and numba's cache,
keyed by the source file of each cached function, then sees any change to it (a cached kernel is
not recompiled when a function it calls from another file changes)."""


@njit(cache=True, nogil=True, inline="always")
def _has(starts: np.ndarray, ends: np.ndarray, x: int) -> bool:
    """Whether ``x`` lies in one of the sorted, disjoint, inclusive intervals.

    Why the test against the last end first: new trades have ids above every id seen, so most
    lookups end there, without the binary search.
    """
    if starts.size == 0 or x > ends[-1]:
        return False
    lo, hi = 0, starts.size  # find the first interval starting above x
    while lo < hi:
        mid = (lo + hi) >> 1
        if starts[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:  # an if, not ``lo > 0 and ...``: numba compiles that value into a ~4x slower loop
        return False
    return x <= ends[lo - 1]


@njit((_I64, _I64, _I64), cache=True, nogil=True)
def _contains(starts: np.ndarray, ends: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Mask of the ``ids`` inside the intervals."""
    out = np.empty(ids.size, np.bool_)
    for i in range(ids.size):
        out[i] = _has(starts, ends, ids[i])
    return out


@njit((_I64, _I64, _I64, types.int64), cache=True, nogil=True)
def _union(
    starts: np.ndarray, ends: np.ndarray, ids: np.ndarray, max_intervals: int
) -> tuple[np.ndarray, np.ndarray]:
    """The intervals plus ``ids`` (any order, repeats allowed), touching intervals merged, and
    only the newest ``max_intervals`` kept (the oldest are far older than any window).

    Why one merge pass: with the ids sorted, each id is an interval ``[id, id]`` and both lists
    are in start order, so one walk over both in that order, extending the last interval while
    the next one starts at most one past its end, gives the sorted, disjoint result. Ids nearly
    always come ascending, and numba's sort costs ~15 ns an element even then, so it runs only if
    needed.
    """
    u = ids.copy()
    for i in range(1, u.size):
        if u[i] < u[i - 1]:
            u.sort()
            break
    out_s = np.empty(starts.size + u.size, np.int64)
    out_e = np.empty(starts.size + u.size, np.int64)
    i = j = o = 0
    while i < starts.size or j < u.size:
        if j == u.size or (i < starts.size and starts[i] <= u[j]):
            s, e = starts[i], ends[i]
            i += 1
        else:
            s = e = u[j]
            j += 1
        if o and s <= out_e[o - 1] + 1:
            out_e[o - 1] = max(out_e[o - 1], e)
        else:
            out_s[o] = s
            out_e[o] = e
            o += 1
    first = max(0, o - max_intervals)
    return out_s[first:o].copy(), out_e[first:o].copy()


def _i64(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous int64 array, without a copy when it already is one."""
    return np.ascontiguousarray(a, dtype=np.int64)


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float64 array, without a copy when it already is one."""
    return np.ascontiguousarray(a, dtype=np.float64)


class IdIntervals:
    """A set of integer ids stored as sorted, disjoint, inclusive intervals."""

    def __init__(self, max_intervals: int = 4096) -> None:
        self.starts = np.empty(0, np.int64)
        self.ends = np.empty(0, np.int64)
        self.max_intervals = max_intervals

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Return a boolean mask of the ``ids`` already in the set."""
        return _contains(self.starts, self.ends, _i64(ids))

    def add(self, ids: np.ndarray) -> None:
        """Add ``ids`` (any order) and merge touching intervals."""
        if ids.size == 0:
            return
        self.starts, self.ends = _union(self.starts, self.ends, _i64(ids), self.max_intervals)

    @property
    def highest(self) -> int:
        return int(self.ends[-1]) if self.ends.size else -1


# ``_ingest``'s result: minutes [minute, first key, end key, trades], keys, volumes [key, side],
# the new seen intervals (starts, ends), then the number of trades applied, the newest minute,
# duplicates, late trades, and the lowest and highest key
_Ingested = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int, int, int, int]


@njit(cache=True, nogil=True, inline="always")
def _select(
    ids: np.ndarray, ts: np.ndarray, starts: np.ndarray, ends: np.ndarray, newest: int, window_min: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Positions of the trades to apply (unseen, not late), every trade's minute, the newest
    minute (held or among the unseen trades) and the number of duplicates.

    An id repeated within the batch counts both times: the batch is checked against the set as
    it was before the batch.
    """
    n = ids.size
    minutes = np.empty(n, np.int64)
    fresh = np.empty(n, np.bool_)
    for i in range(n):
        fresh[i] = not _has(starts, ends, ids[i])
        minutes[i] = ts[i] // NS_PER_MIN
        if fresh[i] and minutes[i] > newest:
            newest = minutes[i]
    keep = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        if fresh[i] and minutes[i] > newest - window_min:
            keep[k] = i
            k += 1
    return keep[:k], minutes, newest, n - fresh.sum()


@njit(cache=True, nogil=True)
def _order(keep: np.ndarray, minutes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The positions ``keep`` sorted by (minute, key), stably: ties stay in batch order.

    Why a counting sort when the batch's (minute, key) grid is small (a minute or two by a few
    hundred buckets, the usual batch): it is linear, and ~3x faster than two merge sorts on a
    few hundred trades. A batch spread over a wide grid (fine buckets, data after a gap) takes
    the sorts, whose cost does not depend on the spread.
    """
    n = keep.size
    if n == 0:
        return keep
    kmin = kmax = keys[keep[0]]
    mmin = mmax = minutes[keep[0]]
    for i in keep:
        kmin, kmax = min(kmin, keys[i]), max(kmax, keys[i])
        mmin, mmax = min(mmin, minutes[i]), max(mmax, minutes[i])
    limit = 4 * n + 1024
    cols, lines = kmax - kmin + 1, mmax - mmin + 1  # cols <= 0: the difference overflowed
    if not (0 < cols <= limit and lines <= limit // cols):
        order = keep[np.argsort(keys[keep], kind="mergesort")]
        return order[np.argsort(minutes[order], kind="mergesort")]
    at = np.zeros(lines * cols + 1, np.int64)
    for i in keep:
        at[(minutes[i] - mmin) * cols + keys[i] - kmin + 1] += 1
    at = np.cumsum(at)
    order = np.empty(n, np.int64)
    for i in keep:
        cell = (minutes[i] - mmin) * cols + keys[i] - kmin
        order[at[cell]] = i
        at[cell] += 1
    return order


@njit(
    (_I64, _F64, _F64, _I64, _F64, _I64, _I64, types.int64, types.int64, types.int64),
    cache=True,
    nogil=True,
)
def _ingest(
    ids: np.ndarray,
    keys: np.ndarray,
    qty: np.ndarray,
    ts: np.ndarray,
    buyer_maker: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    max_intervals: int,
    newest: int,
    window_min: int,
) -> _Ingested:
    """Filter a batch (see ``_select``), add the ids kept to the seen intervals (``starts``,
    ``ends``) and sum the trades kept by (minute, key) and side.

    ``keys`` are the trades' bucket indices (float, integral). Side 1 is a buyer-maker trade,
    i.e. a sell. Why one kernel for all three: each kernel call and each array it returns costs
    about a microsecond, as much as the work on a few hundred trades. A bucket's trades are
    summed in batch order (``_order`` is stable), so its total does not depend on the sort.
    """
    keep, minutes, newest, duplicates = _select(ids, ts, starts, ends, newest, window_min)
    n = keep.size
    late = ids.size - duplicates - n
    starts, ends = _union(starts, ends, ids[keep], max_intervals)
    int_keys = keys.astype(np.int64)
    rows = np.empty((n, 4), np.int64)
    ukeys = np.empty(n, np.int64)
    vol = np.zeros((n, 2))
    u = g = -1
    lo = hi = 0
    for i in _order(keep, minutes, int_keys):
        m, k = minutes[i], int_keys[i]
        if g < 0 or m != rows[g, 0]:
            g += 1
            rows[g, 0] = m
            rows[g, 1] = u + 1
            rows[g, 3] = 0
        if u < rows[g, 1] or k != ukeys[u]:
            u += 1
            ukeys[u] = k
            lo = k if u == 0 else min(lo, k)
            hi = k if u == 0 else max(hi, k)
        vol[u, 1 if buyer_maker[i] > 0 else 0] += qty[i]
        rows[g, 2] = u + 1
        rows[g, 3] += 1
    rows, ukeys, vol = rows[: g + 1].copy(), ukeys[: u + 1].copy(), vol[: u + 1].copy()
    return rows, ukeys, vol, starts, ends, n, newest, duplicates, late, lo, hi


@njit((_TOTALS, _COUNTS, _I64, types.int64, types.int64, _ROWS, _I64, _VOL), cache=True, nogil=True)
def _add_batch(
    totals: np.ndarray,
    counts: np.ndarray,
    windows: np.ndarray,
    base: int,
    newest: int,
    rows: np.ndarray,
    keys: np.ndarray,
    vol: np.ndarray,
) -> None:
    """Add each minute of a batch (``_ingest``'s output) to the windows that hold it now."""
    for g in range(rows.shape[0]):
        m, first, end, trades = rows[g, 0], rows[g, 1], rows[g, 2], rows[g, 3]
        for w in range(windows.size):
            if m > newest - windows[w]:
                counts[w] += trades
                for j in range(first, end):
                    b = keys[j] - base
                    totals[w, b, 0] += vol[j, 0]
                    totals[w, b, 1] += vol[j, 1]


@njit((_I64, _VOL, _I64, _VOL), cache=True, nogil=True)
def _merge(
    keys_a: np.ndarray, vol_a: np.ndarray, keys_b: np.ndarray, vol_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum two sparse volume lists (ascending keys, ``[key, side]``) into one."""
    na, nb = keys_a.size, keys_b.size
    keys = np.empty(na + nb, np.int64)
    vol = np.zeros((na + nb, 2))
    i = j = o = 0
    while i < na or j < nb:
        if j == nb:
            from_a, from_b = True, False
        elif i == na:
            from_a, from_b = False, True
        else:
            from_a, from_b = keys_a[i] <= keys_b[j], keys_b[j] <= keys_a[i]
        if from_a:
            keys[o] = keys_a[i]
            vol[o, 0] += vol_a[i, 0]
            vol[o, 1] += vol_a[i, 1]
            i += 1
        if from_b:
            keys[o] = keys_b[j]
            vol[o, 0] += vol_b[j, 0]
            vol[o, 1] += vol_b[j, 1]
            j += 1
        o += 1
    return keys[:o].copy(), vol[:o].copy()


@njit((_TOTALS, _COUNTS, types.int64, types.int64, _I64, _VOL, types.int64), cache=True, nogil=True)
def _expire(
    totals: np.ndarray, counts: np.ndarray, w: int, base: int, keys: np.ndarray, vol: np.ndarray, trades: int
) -> None:
    """Take a minute (its volumes, its number of trades) out of window ``w``, clamping the float
    residue of the subtraction at 0.

    Why clamping only the buckets touched is enough: volumes are non-negative, so only a
    subtraction takes a total below 0, and a total once below 0 stays there through further
    subtractions; clamping at each one equals clamping the whole array once after all of them.
    """
    counts[w] -= trades
    for j in range(keys.size):
        b = keys[j] - base
        for s in range(2):
            t = totals[w, b, s] - vol[j, s]
            totals[w, b, s] = 0.0 if t < 0.0 else t


@njit((_VOL, types.int64, types.float64, types.float64), cache=True, nogil=True)
def _nonempty(t: np.ndarray, base: int, size: float, floor: float) -> np.ndarray:
    """Rows of lower edges, buy and sell volume of the buckets of ``t`` (``[bucket, side]``)
    with volume (above ``floor``), as views of one ``[3, width]`` array.

    Why one branch-free pass into a full-width scratch, and views rather than exact copies: the
    profile is mostly non-empty buckets, so a counting pass and the copies cost more than the
    slack they save (the caller serializes the rows at once).
    """
    width = t.shape[0]
    out = np.empty((3, width))
    o = 0
    for b in range(width):
        buy, sell = t[b, 0], t[b, 1]
        out[0, o] = np.float64(b + base) * size
        out[1, o] = buy
        out[2, o] = sell
        o += (buy > floor) | (sell > floor)
    return out[:, :o]


class _Minute(msgspec.Struct, frozen=True, array_like=True):
    keys: bytes  # int64, ascending
    vol: bytes  # float64 [key, side]
    count: int


class _Version(msgspec.Struct):
    version: int = 1  # version 1 had no such field


class _State(msgspec.Struct, frozen=True):
    version: int
    bucket_size: float
    window_min: int
    base: int
    width: int
    totals: bytes  # float64 [window, bucket, side], windows ascending
    counts: list[int]  # trades per window, windows ascending
    minutes: dict[int, _Minute]
    newest: int
    seen_starts: bytes
    seen_ends: bytes
    late: int
    duplicates: int


# a held minute: its keys (ascending), volumes [key, side] and number of trades
_Held = tuple[np.ndarray, np.ndarray, int]


class RollingProfile:
    """Buy and sell volume per price bucket over the last 60/240/1440/2880 minutes."""

    def __init__(self, bucket_size: float, window_min: int = 2880, max_buckets: int = MAX_BUCKETS) -> None:
        self.bucket_size = bucket_size
        self.window_min = window_min
        self.max_buckets = max_buckets
        self.windows = (*(w for w in WINDOWS_MIN if w < window_min), window_min)
        self._windows = np.array(self.windows, np.int64)  # the same, for the kernels
        self.base = 0  # bucket key of index 0 in the totals
        self.totals = np.zeros((len(self.windows), 0, 2))  # [window, bucket, buy/sell]
        self.counts = np.zeros(len(self.windows), np.int64)  # trades per window
        self.minutes: dict[int, _Held] = {}
        self.newest = -1  # newest minute seen
        self.seen = IdIntervals()
        self.late = 0
        self.duplicates = 0
        self.ceiling = 0.0  # >= every total: the volume ever added (see add)

    @property
    def last_trade_id(self) -> int:
        return self.seen.highest

    @property
    def trades_in_window(self) -> int:
        return int(self.counts[-1])

    def add(
        self,
        ids: np.ndarray,
        px: np.ndarray,
        qty: np.ndarray,
        ts: np.ndarray,
        buyer_maker: np.ndarray,
    ) -> int:
        """Apply a batch of trades; return how many were new (not seen, not too late).

        Raises ``ValueError`` (state untouched, no id recorded) if any trade is invalid or the
        batch would widen the totals beyond ``max_buckets``: see the module docstring.
        """
        px, qty = _f64(px), _f64(qty)
        check_prices("trade price", px)
        check_quantities("trade quantity", qty)
        # Why a ceiling: finite quantities can still sum to inf (two of 1e308), and one inf total
        # would make every later profile invalid; no total exceeds the volume ever added.
        ceiling = self.ceiling + float(qty.sum())
        if not ceiling < math.inf:
            raise ValueError(f"trade quantities would overflow the profile totals (batch sum {qty.sum()!r})")
        keys = _keys(px, float(self.bucket_size))
        if keys.size and not keys.max() < MAX_INDEX:
            raise ValueError(f"trade price {float(px.max())!r} is too high for bucket size "
                             f"{self.bucket_size!r} (bucket index >= {MAX_INDEX:g})")
        batch = _i64(ids), keys, qty, _i64(ts), _f64(buyer_maker)
        seen = self.seen
        rows, ukeys, vol, starts, ends, applied, newest, duplicates, late, lo, hi = _ingest(
            *batch, seen.starts, seen.ends, seen.max_intervals, self.newest, self.window_min
        )
        if applied and (lo < self.base or hi >= self.base + self.totals.shape[1]):
            self._grow(lo, hi)  # may refuse the batch: nothing is recorded before this
        self.duplicates += duplicates
        self.late += late
        if applied == 0:
            return 0
        seen.starts, seen.ends = starts, ends
        self.ceiling = ceiling
        # expire first, then add: every part of a held minute is then in exactly the windows that
        # contain the minute now, so expiring it later subtracts exactly what was added
        self._advance(newest)
        _add_batch(self.totals, self.counts, self._windows, self.base, newest, rows, ukeys, vol)
        for m, first, end, count in rows.tolist():
            self._hold(m, ukeys[first:end], vol[first:end], count)
        return applied

    def _grow(self, lo: int, hi: int) -> None:
        """Re-base the totals to cover keys ``lo..hi`` and every held minute's keys, with slack so
        a drifting price rarely re-bases; raise ``ValueError`` (nothing changed) if that span is
        wider than ``max_buckets``.

        Why slack (a quarter of the span, at least 64 buckets, on the side that grows, as far as
        the cap allows): a price making new highs would otherwise copy all the totals each time
        it moved one bucket. Why the held minutes' span and not the old width: every volume in
        the totals belongs to a held minute, so buckets outside their keys hold only float
        residue, and prices that left the window stop costing memory.
        """
        width = self.totals.shape[1]
        need_lo, need_hi = lo, hi
        for keys, _, _ in self.minutes.values():  # keys ascending; only on this rare path
            if keys.size:
                need_lo, need_hi = min(need_lo, int(keys[0])), max(need_hi, int(keys[-1]))
        span = need_hi - need_lo + 1
        if span > self.max_buckets:
            size = self.bucket_size
            raise ValueError(
                f"trades at {lo * size:g}..{(hi + 1) * size:g} would widen the profile to {span} buckets "
                f"({need_lo * size:g}..{(need_hi + 1) * size:g}), over max_buckets {self.max_buckets}"
            )
        slack = max(64, span // 4)
        new_lo = need_lo - (slack if width == 0 or lo < self.base else 0)
        new_hi = need_hi + (slack if width == 0 or hi >= self.base + width else 0)
        extra = new_hi - new_lo + 1 - self.max_buckets
        if extra > 0:  # less slack, never less than the span
            cut = min(extra, need_lo - new_lo)
            new_lo += cut
            new_hi -= extra - cut
        grown = np.zeros((len(self.windows), new_hi - new_lo + 1, 2))
        a, b = max(self.base, new_lo), min(self.base + width - 1, new_hi)
        if a <= b:
            grown[:, a - new_lo : b - new_lo + 1] = self.totals[:, a - self.base : b - self.base + 1]
        self.totals = grown
        self.base = new_lo

    def _hold(self, m: int, keys: np.ndarray, vol: np.ndarray, count: int) -> None:
        """Keep minute ``m``'s volumes for its expiry, merged into what is held of it already."""
        held = self.minutes.get(m)
        if held is None:
            self.minutes[m] = (keys, vol, count)
        else:  # a late batch for a minute already held
            self.minutes[m] = (*_merge(held[0], held[1], keys, vol), held[2] + count)

    def _advance(self, newest: int) -> None:
        """Move the newest minute to ``newest``: subtract from each window the minutes leaving it.

        Minute ``m`` leaves window ``w`` when ``old - w < m <= newest - w``, so only those minutes
        are visited. Minutes leaving the longest window (the last) are dropped.
        """
        old = self.newest
        self.newest = newest
        if old < 0 or newest == old:
            return
        for i, w in enumerate(self.windows):
            for m in self._held_in(old - w, newest - w):
                keys, vol, count = self.minutes[m]
                _expire(self.totals, self.counts, i, self.base, keys, vol, count)
        for m in self._held_in(old - self.window_min, newest - self.window_min):
            del self.minutes[m]

    def _held_in(self, lo: int, hi: int) -> list[int]:
        """The held minutes ``m`` with ``lo < m <= hi``, at a cost of ``min(hi - lo, held)``.

        Why both ways: the range is normally one minute, but after a gap in the data it can be
        far longer than the list of held minutes.
        """
        if hi - lo <= len(self.minutes):
            return [m for m in range(lo + 1, hi + 1) if m in self.minutes]
        return [m for m in self.minutes if lo < m <= hi]

    def arrays(self, window_min: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return bucket lower edges (ascending), buy and sell volume over a window (default: all)."""
        w = window_min or self.window_min
        if w not in self.windows:
            raise ValueError(f"window {w} min is not kept; windows are {self.windows}")
        i = bisect_right(self.windows, w) - 1
        floor = _RESIDUE_REL * self.ceiling  # the ceiling bounds every total the sums touched
        px, buy, sell = _nonempty(self.totals[i], self.base, float(self.bucket_size), floor)
        return px, buy, sell

    def to_bytes(self) -> bytes:
        """Serialize the whole state (for checkpoints), in format :data:`FORMAT_VERSION`."""
        state = _State(
            version=FORMAT_VERSION,
            bucket_size=self.bucket_size,
            window_min=self.window_min,
            base=self.base,
            width=self.totals.shape[1],
            totals=self.totals.tobytes(),
            counts=self.counts.tolist(),
            minutes={m: _Minute(k.tobytes(), v.tobytes(), c) for m, (k, v, c) in self.minutes.items()},
            newest=self.newest,
            seen_starts=self.seen.starts.tobytes(),
            seen_ends=self.seen.ends.tobytes(),
            late=self.late,
            duplicates=self.duplicates,
        )
        return msgspec.msgpack.encode(state)

    @classmethod
    def from_bytes(cls, blob: bytes, max_buckets: int = MAX_BUCKETS) -> RollingProfile:
        """Rebuild a profile saved by :meth:`to_bytes`; a blob of another format version is refused.

        Why refuse rather than guess: a checkpoint read in the wrong layout would give wrong
        totals silently; a refused one (``IncompatibleState``) is skipped by the runtime, which
        rebuilds the state from the stream. Totals that are not finite and >= 0 (a state poisoned
        before inputs were validated) are refused the same way.
        """
        version = msgspec.msgpack.decode(blob, type=_Version).version
        if version != FORMAT_VERSION:
            raise IncompatibleState(
                f"profile checkpoint is format version {version}, this build reads version {FORMAT_VERSION}"
            )
        st = msgspec.msgpack.decode(blob, type=_State)
        p = cls(st.bucket_size, st.window_min, max_buckets)
        p.base = st.base
        p.totals = np.frombuffer(st.totals).reshape(len(p.windows), st.width, 2).copy()
        p.counts = np.array(st.counts, np.int64)
        p.minutes = {
            m: (np.frombuffer(x.keys, np.int64).copy(), np.frombuffer(x.vol).reshape(-1, 2).copy(), x.count)
            for m, x in st.minutes.items()
        }
        p.newest = st.newest
        p.seen.starts = np.frombuffer(st.seen_starts, np.int64).copy()
        p.seen.ends = np.frombuffer(st.seen_ends, np.int64).copy()
        p.late, p.duplicates = st.late, st.duplicates
        p.ceiling = float(p.totals.sum())
        if not (p.ceiling < math.inf and p.totals.min(initial=0.0) >= 0.0):  # NaN fails too
            raise IncompatibleState("profile checkpoint holds non-finite or negative totals")
        return p

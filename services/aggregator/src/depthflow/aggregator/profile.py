"""The rolling trade profile: buy and sell volume by price bucket over sliding windows of minutes.

Why minute buckets and running totals: the 48 h window (2880 minutes) slides by whole minutes, so
each window keeps a running total that gains a minute's volume when it arrives and loses it when
it falls out. An update costs time proportional to the trades added plus the minutes that
expire, never to the window length, and a 1 h / 4 h / 24 h / 48 h query is a read of a total.

Totals are dense arrays over bucket keys (``floor(price / size)``) from a base key that grows
as prices move, so no Python object is made per trade or per bucket on the way in.

Trades are counted once, whatever the order or repetition of batches: applied ids are kept as a
set of intervals (ids arrive nearly consecutive, so it stays a handful of intervals), and a
trade older than the longest window is dropped as late.
"""

from __future__ import annotations

import msgspec
import numpy as np

from depthflow.aggregator.bucketing import bucket_keys

NS_PER_MIN = 60_000_000_000
WINDOWS_MIN = (60, 240, 1440, 2880)


class IdIntervals:
    """A set of integer ids stored as sorted, disjoint, inclusive intervals."""

    def __init__(self, max_intervals: int = 4096) -> None:
        self.starts = np.empty(0, np.int64)
        self.ends = np.empty(0, np.int64)
        self.max_intervals = max_intervals

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Return a boolean mask of the ``ids`` already in the set."""
        if self.starts.size == 0:
            return np.zeros(ids.size, bool)
        i = np.searchsorted(self.starts, ids, side="right") - 1
        ok = i >= 0
        out = np.zeros(ids.size, bool)
        out[ok] = ids[ok] <= self.ends[i[ok]]
        return out

    def add(self, ids: np.ndarray) -> None:
        """Add ``ids`` (any order) and merge touching intervals."""
        if ids.size == 0:
            return
        u = np.unique(ids)
        breaks = np.flatnonzero(np.diff(u) != 1)
        starts = np.concatenate((u[:1], u[breaks + 1], self.starts))
        ends = np.concatenate((u[breaks], u[-1:], self.ends))
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        run_end = np.maximum.accumulate(ends)
        first = np.ones(starts.size, bool)
        first[1:] = starts[1:] > run_end[:-1] + 1  # a gap before this interval: a new run
        heads = np.flatnonzero(first)
        self.starts = starts[heads]
        self.ends = np.maximum.reduceat(ends, heads)
        if self.starts.size > self.max_intervals:  # forget the oldest: far older than any window
            self.starts = self.starts[-self.max_intervals :]
            self.ends = self.ends[-self.max_intervals :]

    @property
    def highest(self) -> int:
        return int(self.ends[-1]) if self.ends.size else -1


class _Minute(msgspec.Struct, frozen=True):
    keys: bytes
    vol: bytes
    count: int


class _State(msgspec.Struct, frozen=True):
    bucket_size: float
    window_min: int
    base: int
    width: int
    totals: dict[int, bytes]
    counts: dict[int, int]
    minutes: dict[int, _Minute]
    newest: int
    seen_starts: bytes
    seen_ends: bytes
    late: int
    duplicates: int


class RollingProfile:
    """Buy and sell volume per price bucket over the last 60/240/1440/2880 minutes."""

    def __init__(self, bucket_size: float, window_min: int = 2880) -> None:
        self.bucket_size = bucket_size
        self.window_min = window_min
        self.windows = (*(w for w in WINDOWS_MIN if w < window_min), window_min)
        self.base = 0  # bucket key of index 0 in the totals
        self.totals = {w: np.zeros((2, 0)) for w in self.windows}  # [buy, sell] x buckets
        self.counts = dict.fromkeys(self.windows, 0)
        self.minutes: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}  # minute -> keys, [2,n], count
        self.newest = -1  # newest minute seen
        self.seen = IdIntervals()
        self.late = 0
        self.duplicates = 0

    @property
    def last_trade_id(self) -> int:
        return self.seen.highest

    @property
    def trades_in_window(self) -> int:
        return self.counts[self.window_min]

    def add(
        self,
        ids: np.ndarray,
        px: np.ndarray,
        qty: np.ndarray,
        ts: np.ndarray,
        buyer_maker: np.ndarray,
    ) -> int:
        """Apply a batch of trades; return how many were new (not seen, not too late)."""
        fresh = ~self.seen.contains(ids)
        self.duplicates += int(ids.size - fresh.sum())
        ids, px, qty, ts, buyer_maker = ids[fresh], px[fresh], qty[fresh], ts[fresh], buyer_maker[fresh]
        minutes = ts // NS_PER_MIN
        newest = max(self.newest, int(minutes.max())) if minutes.size else self.newest
        in_window = minutes > newest - self.window_min
        self.late += int((~in_window).sum())
        ids, px, qty, minutes = ids[in_window], px[in_window], qty[in_window], minutes[in_window]
        sell = buyer_maker[in_window] > 0
        self.seen.add(ids)
        if ids.size == 0:
            return 0
        keys = bucket_keys(px, self.bucket_size)
        self._grow(int(keys.min()), int(keys.max()))
        # expire first, then add: every part of a held minute is then in exactly the windows that
        # contain the minute now, so expiring it later subtracts exactly what was added
        self._advance(newest)
        for m in np.unique(minutes).tolist():
            sel = minutes == m
            self._add_minute(m, keys[sel], qty[sel], sell[sel], newest)
        return int(ids.size)

    def _grow(self, lo: int, hi: int) -> None:
        width = self.totals[self.window_min].shape[1]
        if width == 0:
            self.base = lo
            for w in self.windows:
                self.totals[w] = np.zeros((2, hi - lo + 1))
            return
        left = max(0, self.base - lo)
        right = max(0, hi - (self.base + width - 1))
        if left or right:
            for w in self.windows:
                self.totals[w] = np.pad(self.totals[w], ((0, 0), (left, right)))
            self.base -= left

    def _add_minute(self, m: int, keys: np.ndarray, qty: np.ndarray, sell: np.ndarray, newest: int) -> None:
        ukeys, inv = np.unique(keys, return_inverse=True)
        vol = np.zeros((2, ukeys.size))
        np.add.at(vol[0], inv[~sell], qty[~sell])
        np.add.at(vol[1], inv[sell], qty[sell])
        prev = self.minutes.get(m)
        if prev is None:
            self.minutes[m] = (ukeys, vol, keys.size)
        else:  # a late batch for a minute already held: merge
            pk, pv, pc = prev
            allk = np.union1d(pk, ukeys)
            merged = np.zeros((2, allk.size))
            merged[:, np.searchsorted(allk, pk)] += pv
            merged[:, np.searchsorted(allk, ukeys)] += vol
            self.minutes[m] = (allk, merged, pc + keys.size)
        idx = ukeys - self.base
        for w in self.windows:
            if m > newest - w:
                self.totals[w][:, idx] += vol
                self.counts[w] += keys.size

    def _advance(self, newest: int) -> None:
        old = self.newest
        self.newest = newest
        if old < 0 or newest == old:
            return
        for m, (keys, vol, count) in list(self.minutes.items()):
            for w in self.windows:
                # the minute was inside window w before the advance and is outside now
                if old - w < m <= newest - w:
                    self.totals[w][:, keys - self.base] -= vol
                    self.counts[w] -= count
            if m <= newest - self.window_min:
                del self.minutes[m]
        for w in self.windows:
            np.maximum(self.totals[w], 0.0, out=self.totals[w])  # float residue of subtraction

    def arrays(self, window_min: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return bucket lower edges (ascending), buy and sell volume over a window (default: all)."""
        w = window_min or self.window_min
        if w not in self.totals:
            raise ValueError(f"window {w} min is not kept; windows are {self.windows}")
        t = self.totals[w]
        nz = np.flatnonzero((t[0] > 1e-12) | (t[1] > 1e-12))
        px = (nz + self.base).astype(np.float64) * self.bucket_size
        return px, t[0, nz].copy(), t[1, nz].copy()

    def to_bytes(self) -> bytes:
        """Serialize the whole state (for checkpoints)."""
        state = _State(
            bucket_size=self.bucket_size,
            window_min=self.window_min,
            base=self.base,
            width=self.totals[self.window_min].shape[1],
            totals={w: t.tobytes() for w, t in self.totals.items()},
            counts=dict(self.counts),
            minutes={m: _Minute(k.tobytes(), v.tobytes(), c) for m, (k, v, c) in self.minutes.items()},
            newest=self.newest,
            seen_starts=self.seen.starts.tobytes(),
            seen_ends=self.seen.ends.tobytes(),
            late=self.late,
            duplicates=self.duplicates,
        )
        return msgspec.msgpack.encode(state)

    @classmethod
    def from_bytes(cls, blob: bytes) -> RollingProfile:
        """Rebuild a profile saved by :meth:`to_bytes`."""
        st = msgspec.msgpack.decode(blob, type=_State)
        p = cls(st.bucket_size, st.window_min)
        p.base = st.base
        p.totals = {w: np.frombuffer(t).reshape(2, st.width).copy() for w, t in st.totals.items()}
        p.counts = dict(st.counts)
        p.minutes = {
            m: (np.frombuffer(x.keys, np.int64).copy(), np.frombuffer(x.vol).reshape(2, -1).copy(), x.count)
            for m, x in st.minutes.items()
        }
        p.newest = st.newest
        p.seen.starts = np.frombuffer(st.seen_starts, np.int64).copy()
        p.seen.ends = np.frombuffer(st.seen_ends, np.int64).copy()
        p.late, p.duplicates = st.late, st.duplicates
        return p

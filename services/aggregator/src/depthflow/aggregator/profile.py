"""The rolling trade profile: traded volume by price bucket over a sliding window of minutes.

Why minute buckets: the window slides by dropping whole minutes, so the cost of an update is
proportional to the trades added, never to the window length (48 h = 2880 minutes).
Duplicate and out-of-order batches are handled by trade id: a trade id already seen is skipped,
so replays and redeliveries never double the volume.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict

import numpy as np

from depthflow.aggregator.bucketing import bucket_keys

NS_PER_MIN = 60_000_000_000


class RollingProfile:
    """Buy and sell volume per price bucket over the last ``window_min`` minutes."""

    def __init__(self, bucket_size: float, window_min: int = 2880) -> None:
        self.bucket_size = bucket_size
        self.window_min = window_min
        self._minutes: OrderedDict[int, dict[int, list[float]]] = OrderedDict()
        self._totals: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._seen_upto = -1  # trade ids at or below this were applied
        self.trades_in_window = 0
        self._counts: dict[int, int] = {}

    @property
    def last_trade_id(self) -> int:
        return self._seen_upto

    def add(
        self,
        ids: np.ndarray,
        px: np.ndarray,
        qty: np.ndarray,
        ts: np.ndarray,
        buyer_maker: np.ndarray,
    ) -> int:
        """Apply a batch of trades (ids ascending); return how many were new.

        Trade ids only grow on an exchange, so "at or below the highest id applied" means seen.
        """
        fresh = ids > self._seen_upto
        if not fresh.any():
            return 0
        px, qty, ts, buyer_maker = px[fresh], qty[fresh], ts[fresh], buyer_maker[fresh]
        self._seen_upto = int(ids[fresh][-1])
        keys = bucket_keys(px, self.bucket_size)
        minutes = ts // NS_PER_MIN
        rows = zip(minutes.tolist(), keys.tolist(), qty.tolist(), buyer_maker.tolist(), strict=True)
        for minute, key, q, sell in rows:
            side = 1 if sell else 0
            slot = self._minutes.get(minute)
            if slot is None:
                slot = self._minutes[minute] = {}
                self._minutes = OrderedDict(sorted(self._minutes.items()))
            slot.setdefault(key, [0.0, 0.0])[side] += q
            self._totals[key][side] += q
            self._counts[minute] = self._counts.get(minute, 0) + 1
            self.trades_in_window += 1
        self._expire(int(minutes.max()))
        return int(px.size)

    def _expire(self, newest_minute: int) -> None:
        oldest_kept = newest_minute - self.window_min + 1
        while self._minutes and next(iter(self._minutes)) < oldest_kept:
            minute, slot = self._minutes.popitem(last=False)
            self.trades_in_window -= self._counts.pop(minute, 0)
            for key, (buy, sell) in slot.items():
                tot = self._totals[key]
                tot[0] -= buy
                tot[1] -= sell
                if tot[0] <= 1e-12 and tot[1] <= 1e-12:
                    del self._totals[key]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return bucket lower edges (ascending), buy volume and sell volume."""
        if not self._totals:
            return np.empty(0), np.empty(0), np.empty(0)
        keys = np.fromiter(sorted(self._totals), dtype=np.int64)
        vols = np.array([self._totals[k] for k in keys.tolist()], dtype=np.float64)
        return keys.astype(np.float64) * self.bucket_size, vols[:, 0], vols[:, 1]

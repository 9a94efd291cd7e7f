"""A local order book kept exactly as Binance's, from a REST snapshot and the diff stream.

The official procedure (Binance spot ``web-socket-streams.md``, "How to manage a local order
book correctly", corrected 2025-11-12):

1. buffer diff events; 2. fetch a snapshot; if its ``lastUpdateId`` is below the first buffered
``U``, fetch again; 3. drop buffered events with ``u <= lastUpdateId``; the first one left must
have ``U <= lastUpdateId + 1 <= u``; 4. apply, then apply every live event: ignore ``u`` at or
below the local id, and if ``U > local id + 1`` an event was missed: start again from 1.

Quantities are absolute; zero removes a level. After every event the book must not be crossed
(best bid < best ask), or it is out of sync. Levels outside the snapshot's price range are
*unknown*, not empty: the book remembers that range and publishes only inside it.

Why sorted dicts: every diff touches a handful of levels among thousands, and the best price
is needed after each event; ``SortedDict`` gives both in O(log n) without a per-event sort.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from itertools import islice

import numpy as np
from sortedcontainers import SortedDict

from depthflow.collector.binance.payloads import DepthDiff, RestDepth
from depthflow.collector.publishing import BookView


class BookState(Enum):
    SYNCING = "syncing"  # buffering diffs, waiting for a usable snapshot
    LIVE = "live"


class Outcome(Enum):
    BUFFERED = "buffered"
    APPLIED = "applied"
    STALE = "stale"  # an event already covered by the book; ignored
    GAP = "gap"  # an event was missed: the book was discarded, resync needed
    CROSSED = "crossed"  # best bid >= best ask after an event: discarded, resync needed
    SNAPSHOT_TOO_OLD = "snapshot_too_old"  # fetch another snapshot
    SYNCED = "synced"


class LocalBook:
    """One symbol's book; feed it diffs and snapshots, read :meth:`view`."""

    def __init__(self, symbol: str, max_buffer: int = 10_000) -> None:
        self.symbol = symbol
        self.state = BookState.SYNCING
        self.update_id = 0
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.known_low = 0.0
        self.known_high = 0.0
        self._buffer: deque[DepthDiff] = deque(maxlen=max_buffer)
        self.gaps = 0
        self.crossings = 0
        self.applied = 0

    @property
    def first_buffered_id(self) -> int | None:
        return self._buffer[0].first_id if self._buffer else None

    def reset(self) -> None:
        """Discard the book and start buffering again (step 1)."""
        self.state = BookState.SYNCING
        self.bids.clear()
        self.asks.clear()
        self._buffer.clear()
        self.update_id = 0

    def on_diff(self, diff: DepthDiff) -> Outcome:
        if self.state is BookState.SYNCING:
            self._buffer.append(diff)
            return Outcome.BUFFERED
        return self._apply_live(diff)

    def on_snapshot(self, snap: RestDepth) -> Outcome:
        """Install a snapshot and replay the buffer; SYNCED, or why not."""
        first = self.first_buffered_id
        if first is not None and snap.last_update_id < first - 1:
            return Outcome.SNAPSHOT_TOO_OLD
        self.bids = SortedDict(zip(snap.bid_px.tolist(), snap.bid_qty.tolist(), strict=True))
        self.asks = SortedDict(zip(snap.ask_px.tolist(), snap.ask_qty.tolist(), strict=True))
        self._drop_zeros()
        self.known_low = float(snap.bid_px.min()) if snap.bid_px.size else 0.0
        self.known_high = float(snap.ask_px.max()) if snap.ask_px.size else 0.0
        self.update_id = snap.last_update_id
        self.state = BookState.LIVE
        buffered = list(self._buffer)
        self._buffer.clear()
        first_applied = True
        for diff in buffered:
            if diff.final_id <= self.update_id:
                continue
            if first_applied and not diff.first_id <= self.update_id + 1 <= diff.final_id:
                self._discard(gap=True)
                return Outcome.GAP
            first_applied = False
            outcome = self._apply_live(diff)
            if outcome in (Outcome.GAP, Outcome.CROSSED):
                return outcome
        if self._crossed():
            self._discard(gap=False)
            return Outcome.CROSSED
        return Outcome.SYNCED

    def _drop_zeros(self) -> None:
        for side in (self.bids, self.asks):
            for p in [p for p, q in side.items() if q == 0.0]:
                del side[p]

    def _apply_live(self, diff: DepthDiff) -> Outcome:
        if diff.final_id <= self.update_id:
            return Outcome.STALE
        if diff.first_id > self.update_id + 1:
            self._discard(gap=True)
            self._buffer.append(diff)  # the first event of the next sync
            return Outcome.GAP
        _apply_levels(self.bids, diff.bid_px, diff.bid_qty)
        _apply_levels(self.asks, diff.ask_px, diff.ask_qty)
        self.update_id = diff.final_id
        self.applied += 1
        if self._crossed():
            self._discard(gap=False)
            return Outcome.CROSSED
        return Outcome.APPLIED

    def _crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids.peekitem(-1)[0] >= self.asks.peekitem(0)[0])

    def _discard(self, gap: bool) -> None:
        if gap:
            self.gaps += 1
        else:
            self.crossings += 1
        self.reset()

    def view(self, depth: int) -> BookView:
        """Return up to ``depth`` levels per side inside the known range.

        When ``depth`` cuts a side short, the known range narrows to what is published, so a
        consumer never mistakes an unpublished level for an empty one.
        """
        bid_keys = [p for p in islice(reversed(self.bids.keys()), depth) if p >= self.known_low]
        ask_keys = [p for p in islice(self.asks.keys(), depth) if p <= self.known_high]
        low, high = self.known_low, self.known_high
        if len(bid_keys) == depth and len(self.bids) > depth:
            low = bid_keys[-1]
        if len(ask_keys) == depth and len(self.asks) > depth:
            high = ask_keys[-1]
        return BookView(
            update_id=self.update_id,
            bid_px=np.array(bid_keys, dtype=np.float64),
            bid_qty=np.array([self.bids[p] for p in bid_keys], dtype=np.float64),
            ask_px=np.array(ask_keys, dtype=np.float64),
            ask_qty=np.array([self.asks[p] for p in ask_keys], dtype=np.float64),
            known_low=low,
            known_high=high,
        )


def _apply_levels(side: SortedDict, px: np.ndarray, qty: np.ndarray) -> None:
    for p, q in zip(px.tolist(), qty.tolist(), strict=True):
        if q == 0.0:
            side.pop(p, None)  # removing an absent level is normal
        else:
            side[p] = q

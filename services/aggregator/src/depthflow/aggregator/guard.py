"""Per-symbol price plausibility: the aggregator's bound on what one message may do to its state.

Messages validate their own values (finite, positive, sorted: ``depthflow.common.messages``), but
a well-formed trade at 10 or 3e6 while the market is at 60,000 would still become a permanent
bucket of the 48 h profile (and, before the profile's cap, a dense array sized by the outlier).
So each symbol keeps a *reference price*: the mid of its latest accepted book, else the median of
its latest accepted trade batch, with the market time it was seen.

- A book is refused when a level lies more than ``book_ratio`` times away from the book's own mid
  (either way: ``mid / ratio .. mid * ratio``), or its mid is more than ``trade_ratio`` away from
  a fresh reference. Why a wide ``book_ratio`` (1000 by default): resting orders legitimately sit
  far from the touch. Binance spot accepts bids down to 0.2x and asks up to 5x the average price,
  but thin books elsewhere reach much further: the recorded Binance.US snapshots in tests/data
  hold MANAUSD bids 51x and HNTUSD bids 116x below the mid (a default of 10 refused both books
  whole). The ratio only has to stop an absurd level; the analysis downstream is sparse and
  capped, so a far level costs nothing there.
- A trade batch is refused when a trade lies more than ``trade_ratio`` away from the reference
  (trades happen at the touch, so 1.5x by default is already a crash no market has in seconds).
- A reference older than ``max_age_ns`` of market time is not used: the batch or book is then
  checked against its own median or mid. Why: after a gap in the data (or a restart, the
  reference is not checkpointed) the market may really have moved, and a stale reference must not
  refuse every later message. The same expiry bounds the harm of a bogus reference (a first
  message that was itself an outlier): its refusals stop once it is older than ``max_age_ns``.

Pure: no I/O; the handler calls :meth:`PriceGuard.check_book`/:meth:`check_trades`, and only after
the message is fully handled :meth:`PriceGuard.accept`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Verdict = tuple[str | None, float]
"""Why a message is refused (None: it is not), and the price it would make the reference."""


@dataclass
class PriceGuard:
    """Reference prices per symbol and the ratios a message must stay within."""

    trade_ratio: float
    book_ratio: float
    max_age_ns: int
    refs: dict[str, tuple[float, int]] = field(default_factory=dict)  # symbol -> (price, ts)

    def reference(self, symbol: str, ts: int) -> float | None:
        """The symbol's reference price if it is fresh at market time ``ts``."""
        ref = self.refs.get(symbol)
        if ref is None or ts - ref[1] > self.max_age_ns:
            return None
        return ref[0]

    def check_book(self, symbol: str, ts: int, bid_px: np.ndarray, ask_px: np.ndarray) -> Verdict:
        """(why the book is refused or None, its mid). Prices are valid and sorted (bids
        descending, asks ascending), so the extremes are the arrays' ends."""
        if not (bid_px.size or ask_px.size):
            return None, 0.0
        best = [float(bid_px[0])] if bid_px.size else []
        best += [float(ask_px[0])] if ask_px.size else []
        mid = sum(best) / len(best)
        low = float(bid_px[-1]) if bid_px.size else float(ask_px[0])
        high = float(ask_px[-1]) if ask_px.size else float(bid_px[0])
        why = _outside("book level", low, high, mid, self.book_ratio, "the book's mid")
        ref = self.reference(symbol, ts)
        if why is None and ref is not None:
            why = _outside("book mid", mid, mid, ref, self.trade_ratio, "the reference price")
        return why, mid

    def check_trades(self, symbol: str, ts: int, px: np.ndarray) -> Verdict:
        """(why the batch is refused or None, its median price)."""
        if not px.size:
            return None, 0.0
        median = _median(px)
        ref = self.reference(symbol, ts)
        centre, what = (median, "the batch's median") if ref is None else (ref, "the reference price")
        why = _outside("trade price", float(px.min()), float(px.max()), centre, self.trade_ratio, what)
        return why, median

    def accept(self, symbol: str, ts: int, price: float) -> None:
        """Make ``price`` (seen at market time ``ts``) the symbol's reference."""
        if price > 0.0:
            self.refs[symbol] = (price, ts)


def _median(px: np.ndarray) -> float:
    """``np.median`` of a non-empty array of finite prices, from a partial sort. Why not
    ``np.median``: its generic machinery cost ~20 us on a batch of twenty trades, ten times the
    partition (the same value: the middle one, or the mean of the middle two)."""
    k = px.size // 2
    if px.size % 2:
        return float(np.partition(px, k)[k])
    part = np.partition(px, (k - 1, k))
    return (float(part[k - 1]) + float(part[k])) / 2


def _outside(what: str, low: float, high: float, centre: float, ratio: float, name: str) -> str | None:
    if low * ratio < centre:
        return f"{what} {low!r} is more than {ratio:g}x below {name} {centre!r}"
    if high > centre * ratio:
        return f"{what} {high!r} is more than {ratio:g}x above {name} {centre!r}"
    return None

"""``md.depth.*`` → ``agg.book.*`` and ``md.trade.*`` → ``agg.profile.*``.

What is a dead letter here, at once and never retried (``InvalidMessage``): anything the message
types refuse on decode (non-finite, negative, unsorted, before 2017), anything the runtime refuses
(another venue, an unconfigured symbol, a header stamped ahead of the clock), a trade stamped more
than ``runtime.max_future_s`` ahead of the clock (one such trade once emptied a symbol's window and
made every later real trade "late"), a price outside the symbol's plausible band (``guard.py``),
a batch that would widen the profile past ``max_profile_buckets``, and any output that fails its
own validation (sums overflowing to inf).

Why a batch with one bad trade is dead-lettered whole rather than split: the dead letter then
holds the exact input, replayable as it was published, and the profile never holds half of a
batch whose source is known to be broken; a split would need a new, partial message that no
producer sent. The batch is checked completely before any of its ids is recorded, so the good
trades, sent again in a corrected batch, are still applied.
"""

from __future__ import annotations

import time

from depthflow.aggregator.bucketing import Buckets, bucket_side
from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.guard import PriceGuard
from depthflow.aggregator.profile import RollingProfile
from depthflow.common.codec import InvalidMessage, invalid_values
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    TradeBatch,
    TradeProfile,
    f64,
    f64_bytes,
    header_from,
    i64,
)
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects


class AggregatorHandlers:
    """Bucket books and keep one rolling trade profile per symbol."""

    def __init__(self, cfg: AggregatorConfig, subjects: Subjects) -> None:
        self.cfg = cfg
        self.subjects = subjects
        self.profiles: dict[str, RollingProfile] = {}
        self.guard = PriceGuard(
            cfg.max_trade_ratio, cfg.max_book_ratio, int(cfg.reference_max_age_s * 1e9)
        )

    async def on_depth_snapshot(self, msg: DepthSnapshot, _: Delivery) -> list[Output]:
        size = self.cfg.bucket_size
        bid_px, bid_qty = f64(msg.bid_px), f64(msg.bid_qty)
        ask_px, ask_qty = f64(msg.ask_px), f64(msg.ask_qty)
        why, mid = self.guard.check_book(msg.symbol, msg.ts_event, bid_px, ask_px)
        if why is not None:
            raise InvalidMessage(why)
        with invalid_values("book"):
            out = self._book(msg, bucket_side(bid_px, bid_qty, size), bucket_side(ask_px, ask_qty, size))
        self.guard.accept(msg.symbol, msg.ts_event, mid)
        return [Output(self.subjects.agg_book(msg.venue, msg.symbol), out)]

    def _book(self, msg: DepthSnapshot, bids: Buckets, asks: Buckets) -> BookBuckets:
        return BookBuckets(
            **header_from(msg),
            bucket_size=self.cfg.bucket_size,
            bid_px=f64_bytes(bids.px),
            bid_qty=f64_bytes(bids.qty),
            ask_px=f64_bytes(asks.px),
            ask_qty=f64_bytes(asks.qty),
            bid_volume_in=bids.volume_in,
            bid_volume_out=bids.volume_out,
            ask_volume_in=asks.volume_in,
            ask_volume_out=asks.volume_out,
            levels_in=bids.levels_in + asks.levels_in,
            levels_out=bids.levels_out + asks.levels_out,
            best_bid=bids.price_high,  # from the kernel's pass: no second scan of the book
            best_ask=asks.price_low,
            known_low=msg.known_low,
            known_high=msg.known_high,
        )

    # --- checkpoints (see depthflow.common.checkpoint) ------------------------------------------

    def checkpoint_symbols(self) -> list[str]:
        return list(self.profiles)

    def dump_state(self, symbol: str) -> bytes:
        return self.profiles[symbol].to_bytes()

    def load_state(self, symbol: str, blob: bytes) -> None:
        self.profiles[symbol] = RollingProfile.from_bytes(blob, self.cfg.max_profile_buckets)

    async def on_trade_batch(self, msg: TradeBatch, _: Delivery) -> list[Output]:
        px, ts = f64(msg.px), i64(msg.ts)
        ahead = self.cfg.runtime.max_future_s
        if ts.size and int(ts.max()) > time.time_ns() + int(ahead * 1e9):
            i = int(ts.argmax())
            raise InvalidMessage(
                f"TradeBatch.ts[{i}] is {(int(ts[i]) - time.time_ns()) / 1e9:.1f}s in the future "
                f"(bound {ahead:g}s)"
            )
        why, median = self.guard.check_trades(msg.symbol, msg.ts_event, px)
        if why is not None:
            raise InvalidMessage(why)
        profile = self.profiles.get(msg.symbol)
        if profile is None:
            profile = self.profiles[msg.symbol] = RollingProfile(
                self.cfg.bucket_size, self.cfg.profile_window_min, self.cfg.max_profile_buckets
            )
        with invalid_values("trade batch"):  # checked whole before any id is recorded
            profile.add(i64(msg.ids), px, f64(msg.qty), ts, f64(msg.buyer_maker))
            out = self._profile(msg, profile)
        self.guard.accept(msg.symbol, msg.ts_event, median)
        return [Output(self.subjects.agg_profile(msg.venue, msg.symbol), out)]

    def _profile(self, msg: TradeBatch, profile: RollingProfile) -> TradeProfile:
        px, buy, sell = profile.arrays()
        return TradeProfile(
            **header_from(msg),
            bucket_size=self.cfg.bucket_size,
            window_s=self.cfg.profile_window_min * 60,
            px=f64_bytes(px),
            buy_qty=f64_bytes(buy),
            sell_qty=f64_bytes(sell),
            last_trade_id=profile.last_trade_id,
            trades_in_window=profile.trades_in_window,
        )

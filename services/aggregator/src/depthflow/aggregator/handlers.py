"""``md.depth.*`` → ``agg.book.*`` and ``md.trade.*`` → ``agg.profile.*``."""

from __future__ import annotations

from depthflow.aggregator.bucketing import bucket_side
from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.profile import RollingProfile
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

    async def on_depth_snapshot(self, msg: DepthSnapshot, _: Delivery) -> list[Output]:
        size = self.cfg.bucket_size
        bid_px, bid_qty = f64(msg.bid_px), f64(msg.bid_qty)
        ask_px, ask_qty = f64(msg.ask_px), f64(msg.ask_qty)
        bids = bucket_side(bid_px, bid_qty, size)
        asks = bucket_side(ask_px, ask_qty, size)
        out = BookBuckets(
            **header_from(msg),
            bucket_size=size,
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
        return [Output(self.subjects.agg_book(msg.venue, msg.symbol), out)]

    # --- checkpoints (see depthflow.common.checkpoint) ------------------------------------------

    def checkpoint_symbols(self) -> list[str]:
        return list(self.profiles)

    def dump_state(self, symbol: str) -> bytes:
        return self.profiles[symbol].to_bytes()

    def load_state(self, symbol: str, blob: bytes) -> None:
        self.profiles[symbol] = RollingProfile.from_bytes(blob)

    async def on_trade_batch(self, msg: TradeBatch, _: Delivery) -> list[Output]:
        profile = self.profiles.get(msg.symbol)
        if profile is None:
            profile = self.profiles[msg.symbol] = RollingProfile(
                self.cfg.bucket_size, self.cfg.profile_window_min
            )
        profile.add(
            i64(msg.ids), f64(msg.px), f64(msg.qty), i64(msg.ts), f64(msg.buyer_maker)
        )
        px, buy, sell = profile.arrays()
        out = TradeProfile(
            **header_from(msg),
            bucket_size=self.cfg.bucket_size,
            window_s=self.cfg.profile_window_min * 60,
            px=f64_bytes(px),
            buy_qty=f64_bytes(buy),
            sell_qty=f64_bytes(sell),
            last_trade_id=profile.last_trade_id,
            trades_in_window=profile.trades_in_window,
        )
        return [Output(self.subjects.agg_profile(msg.venue, msg.symbol), out)]

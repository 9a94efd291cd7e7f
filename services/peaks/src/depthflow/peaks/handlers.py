"""``agg.book.*`` (+ latest ``agg.profile.*``) → ``peaks.zones.*``."""

from __future__ import annotations

import numpy as np

from depthflow.common.codec import Decoder, encode
from depthflow.common.messages import BookBuckets, TradeProfile, Zone, ZonesDetected, f64, header_from
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.detection import point_of_control, value_area, zscore_peaks


def _zones(px: np.ndarray, vol: np.ndarray, size: float, cfg: PeaksConfig) -> list[Zone]:
    peaks = zscore_peaks(vol, cfg.z_min, cfg.min_volume)
    total = float(vol.sum()) or 1.0
    zones = [
        Zone(
            low=float(px[p.low_index]),
            high=float(px[p.high_index] + size),
            price=float(px[p.index]),
            volume=float(vol[p.low_index : p.high_index + 1].sum()),
            strength=float(vol[p.index] / total),
            confidence=float(min(1.0, p.z / (2 * cfg.z_min))),
        )
        for p in peaks
    ]
    zones.sort(key=lambda z: z.volume, reverse=True)
    return zones[: cfg.max_zones]


_profile_decoder: Decoder[TradeProfile] = Decoder(TradeProfile)


class PeaksHandlers:
    """Detect zones on each bucketed book, using the latest trade profile of the symbol."""

    def __init__(self, cfg: PeaksConfig, subjects: Subjects) -> None:
        self.cfg = cfg
        self.subjects = subjects
        self.profiles: dict[str, TradeProfile] = {}

    # --- checkpoints (see depthflow.common.checkpoint) ------------------------------------------

    def checkpoint_symbols(self) -> list[str]:
        return list(self.profiles)

    def dump_state(self, symbol: str) -> bytes:
        return encode(self.profiles[symbol])

    def load_state(self, symbol: str, blob: bytes) -> None:
        self.profiles[symbol] = _profile_decoder.decode(blob)

    async def on_trade_profile(self, msg: TradeProfile, _: Delivery) -> list[Output]:
        self.profiles[msg.symbol] = msg
        return []

    async def on_book_buckets(self, msg: BookBuckets, _: Delivery) -> list[Output]:
        cfg = self.cfg
        bid_px, bid_qty = f64(msg.bid_px), f64(msg.bid_qty)
        ask_px, ask_qty = f64(msg.ask_px), f64(msg.ask_qty)
        mid = (msg.best_bid + msg.best_ask) / 2 if bid_px.size and ask_px.size else 0.0
        near = max(cfg.near_fraction * mid, cfg.near_buckets * msg.bucket_size)
        profile = self.profiles.get(msg.symbol)
        buy_total = sell_total = 0.0
        if profile is not None and len(profile.px):
            ppx, buy, sell = f64(profile.px), f64(profile.buy_qty), f64(profile.sell_qty)
            vol = buy + sell
            buy_total, sell_total = float(buy.sum()), float(sell.sum())
        else:  # no trades yet: the resting book is the volume profile
            ppx = np.concatenate((bid_px, ask_px))
            vol = np.concatenate((bid_qty, ask_qty))
            order = np.argsort(ppx, kind="stable")
            ppx, vol = ppx[order], vol[order]
        if vol.size:
            poc = point_of_control(ppx, vol)
            lo, hi = value_area(vol, poc, cfg.value_area_fraction)
            poc_px, val, vah = float(ppx[poc]), float(ppx[lo]), float(ppx[hi] + msg.bucket_size)
        else:
            poc_px = val = vah = mid
        out = ZonesDetected(
            **header_from(msg),
            mid=mid,
            best_bid=msg.best_bid,
            best_ask=msg.best_ask,
            poc=poc_px,
            value_area_low=val,
            value_area_high=vah,
            support=_zones(bid_px, bid_qty, msg.bucket_size, cfg),
            resistance=_zones(ask_px, ask_qty, msg.bucket_size, cfg),
            bid_depth_near=float(bid_qty[bid_px >= mid - near].sum()),
            ask_depth_near=float(ask_qty[ask_px <= mid + near].sum()),
            trade_buy_volume=buy_total,
            trade_sell_volume=sell_total,
        )
        return [Output(self.subjects.peaks_zones(msg.venue, msg.symbol), out)]

"""``agg.book.*`` (+ latest ``agg.profile.*``) → ``peaks.zones.*``.

Dead letters, at once: whatever ``BookBuckets``/``TradeProfile`` refuse on decode (NaN, inf,
negative quantities, unsorted or duplicate buckets ...), what the runtime refuses (venue, symbol,
future), and a book whose analysis fails closed or whose ``ZonesDetected`` would not pass its own
validation (sums past the float range). A refused profile is never stored, so it cannot taint
the analysis of later books.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from depthflow.common.checkpoint import IncompatibleState
from depthflow.common.codec import Decoder, InvalidMessage, encode, invalid_values
from depthflow.common.messages import (
    BookBuckets,
    PriceBand,
    TradeProfile,
    Zone,
    ZoneKind,
    ZonesDetected,
    f64,
    header_from,
)
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.zones import ZONE_KINDS, analyse

_KINDS = cast(tuple[ZoneKind, ...], ZONE_KINDS)  # the core's kinds are the wire's (messages.ZoneKind)


def _wire_zones(rows: np.ndarray) -> list[Zone]:
    """Zone rows of the core (columns ``ZONE_FIELDS``, the kind as its index in ``ZONE_KINDS``)
    as the wire's zones. Unpacked in ``ZONE_FIELDS``' order (a test holds the two together):
    a dict per row, zipped from the names, cost more than the ``Zone`` itself."""
    kinds = _KINDS
    return [Zone(low=low, high=high, price=price, volume=volume, strength=strength, confidence=conf,
                 kind=kinds[int(kind)])
            for low, high, price, volume, strength, conf, kind in rows.tolist()]


def _depth_between(px: np.ndarray, qty: np.ndarray, low: float, high: float) -> float:
    """The quantity of the buckets priced from ``low`` to ``high`` (both included) of a side
    whose prices ascend (as ``BookBuckets`` checks): two binary searches and the sum of a slice,
    instead of a mask over the side (a comparison pass and a copy, twice a book)."""
    a = np.searchsorted(px, low, side="left")
    b = np.searchsorted(px, high, side="right")
    return float(qty[a:b].sum())


def _bands(bands: list[tuple[float, float]]) -> list[PriceBand]:
    return [PriceBand(low=lo, high=hi) for lo, hi in bands]


_profile_decoder: Decoder[TradeProfile] = Decoder(TradeProfile)


class PeaksHandlers:
    """Detect zones on each bucketed book, using the latest trade profile of the symbol."""

    def __init__(self, cfg: PeaksConfig, subjects: Subjects) -> None:
        self.cfg = cfg
        self.subjects = subjects
        self.profiles: dict[str, TradeProfile] = {}
        self.params = cfg.params()

    # --- checkpoints (see depthflow.common.checkpoint) ------------------------------------------

    def checkpoint_symbols(self) -> list[str]:
        return list(self.profiles)

    def dump_state(self, symbol: str) -> bytes:
        return encode(self.profiles[symbol])

    def load_state(self, symbol: str, blob: bytes) -> None:
        try:
            self.profiles[symbol] = _profile_decoder.decode(blob)
        except InvalidMessage as exc:  # e.g. saved before values were validated: rebuild instead
            raise IncompatibleState(f"stored profile is not valid now: {exc.reason}") from exc

    async def on_trade_profile(self, msg: TradeProfile, _: Delivery) -> list[Output]:
        self.profiles[msg.symbol] = msg
        return []

    async def on_book_buckets(self, msg: BookBuckets, _: Delivery) -> list[Output]:
        with invalid_values("book"):
            return [Output(self.subjects.peaks_zones(msg.venue, msg.symbol), self._zones(msg))]

    def _zones(self, msg: BookBuckets) -> ZonesDetected:
        cfg = self.cfg
        bid_px, bid_qty = f64(msg.bid_px), f64(msg.bid_qty)
        ask_px, ask_qty = f64(msg.ask_px), f64(msg.ask_qty)
        mid = (msg.best_bid + msg.best_ask) / 2 if bid_px.size and ask_px.size else 0.0
        near = cfg.near_fraction * mid
        profile = self.profiles.get(msg.symbol)
        trade_px = trade_vol = None
        buy_total = sell_total = 0.0
        if profile is not None and len(profile.px):
            buy, sell = f64(profile.buy_qty), f64(profile.sell_qty)
            trade_px, trade_vol = f64(profile.px), buy + sell
            buy_total, sell_total = float(buy.sum()), float(sell.sum())
        a = analyse(
            bid_px, bid_qty, ask_px, ask_qty, msg.bucket_size, mid, msg.known_low, msg.known_high,
            trade_px, trade_vol, self.params,
        )
        return ZonesDetected(
            **header_from(msg),
            mid=mid,
            best_bid=msg.best_bid,
            best_ask=msg.best_ask,
            poc=a.poc,
            value_area_low=a.value_area_low,
            value_area_high=a.value_area_high,
            support=_wire_zones(a.support),
            resistance=_wire_zones(a.resistance),
            bid_depth_near=_depth_between(bid_px, bid_qty, mid - near, np.inf),
            ask_depth_near=_depth_between(ask_px, ask_qty, -np.inf, mid + near),
            trade_buy_volume=buy_total,
            trade_sell_volume=sell_total,
            high_volume_nodes=a.high_volume_nodes,
            low_volume_nodes=a.low_volume_nodes,
            vacuums=_bands(a.vacuums),
            resonance=_wire_zones(a.resonance),
            bucket_size=msg.bucket_size,
            tick_size=msg.tick_size,
        )

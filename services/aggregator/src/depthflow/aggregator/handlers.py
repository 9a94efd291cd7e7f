"""``md.depth.*`` → ``agg.profile.*`` (when changed) then ``agg.book.*``; ``md.trade.*`` → state.

**What a book publishes.** Trade batches only update the symbol's rolling profile. Each book
publishes its ``BookBuckets``, preceded by the ``TradeProfile`` as of that book if the profile
changed since the profile last published (outputs ``[profile, book]``, or ``[book]``). Why the
profile first: peaks keeps the latest profile per symbol and analyses on each book, so the
profile a book is analysed with must be on the stream before it. Why with books and not per
batch: consumers only use a profile when a book comes, and a batch arrives many times a second.

Why the decision is checkpointed (``changed`` and the sequence it was last published at): output
``n`` has ``Nats-Msg-Id`` ``aggregator:MD:<seq>:<n>``, so a redelivered book must produce the
same outputs as the first time, or its book would take the id of the profile published before
(and be dropped as a duplicate). With the flag restored and the acked messages after the
checkpoint re-applied, each book decides as it did before the restart; a book handled again
(``published_at`` is its sequence) publishes again what it published first. An older checkpoint
(a bare profile, from the build that published a profile per batch) starts with ``changed``
false: that build had published every change. What this cannot cover: a book that failed after
publishing only its book (no profile owed), redelivered after a newer batch changed the profile,
would now owe one and shift its book's id; the runtime's publishes wait out outages rather than
fail, so a book fails between its outputs only on a bug.

**Bucket size per symbol.** Chosen once, at the symbol's first book or batch with a price: the
``bucket_sizes`` override, else ``choose_bucket_size(tick, price, bucket_target_rel)`` (price:
the book's mid or the batch's median), then kept with the profile and its checkpoint for the
symbol's lifetime, because the rolling profile's buckets are built with it. A later tick that
differs is logged once and changes nothing. A checkpoint from before per-symbol sizes keeps the
size its profile was built with. An empty book before any price fixes nothing and goes out with
the override, else the tick, else 1.0 as its size: it has no level for a size to be wrong about.

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

import logging
import time
from dataclasses import dataclass

import msgspec

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
from depthflow.common.pricing import choose_bucket_size
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects

log = logging.getLogger("depthflow.aggregator")


@dataclass
class SymbolState:
    """What the aggregator keeps per symbol: the rolling profile (whose ``bucket_size`` is the
    symbol's), the tick that size was chosen with (0.0 = unknown), and whether the profile changed
    since it was last published, and with which book (stream sequence; 0 = none)."""

    profile: RollingProfile
    tick_size: float
    changed: bool = False
    published_at: int = 0

    @property
    def bucket_size(self) -> float:
        return self.profile.bucket_size


class _Checkpoint(msgspec.Struct, frozen=True):
    """A symbol's checkpoint: :class:`SymbolState` with the profile in its own format."""

    profile: bytes
    tick_size: float
    changed: bool
    published_at: int


class _Probe(msgspec.Struct):
    profile: bytes | None = None  # absent: an older checkpoint, the profile's bytes alone


class AggregatorHandlers:
    """Bucket books and keep one rolling trade profile per symbol."""

    def __init__(self, cfg: AggregatorConfig, subjects: Subjects) -> None:
        self.cfg = cfg
        self.subjects = subjects
        self.symbols: dict[str, SymbolState] = {}
        self.tick_noted: set[str] = set()  # symbols whose tick change was logged
        self.guard = PriceGuard(
            cfg.max_trade_ratio, cfg.max_book_ratio, int(cfg.reference_max_age_s * 1e9)
        )

    def state_for(self, msg: DepthSnapshot | TradeBatch, price: float) -> SymbolState:
        """The symbol's state, created with its bucket size at its first message with a price."""
        st = self.symbols.get(msg.symbol)
        if st is None:
            size = self.cfg.bucket_sizes.get(msg.symbol) or choose_bucket_size(
                msg.tick_size, price, self.cfg.bucket_target_rel
            )
            profile = RollingProfile(size, self.cfg.profile_window_min, self.cfg.max_profile_buckets)
            st = self.symbols[msg.symbol] = SymbolState(profile, msg.tick_size)
            log.info("bucket size chosen", extra={"symbol": msg.symbol, "bucket_size": size,
                                                  "tick_size": msg.tick_size, "price": price})
        elif msg.tick_size != st.tick_size and msg.symbol not in self.tick_noted:
            self.tick_noted.add(msg.symbol)
            log.warning("tick size differs from the one the bucket size was chosen with; size kept",
                        extra={"symbol": msg.symbol, "tick_size": msg.tick_size,
                               "chosen_with": st.tick_size, "bucket_size": st.bucket_size})
        return st

    async def on_depth_snapshot(self, msg: DepthSnapshot, d: Delivery) -> list[Output]:
        bid_px, bid_qty = f64(msg.bid_px), f64(msg.bid_qty)
        ask_px, ask_qty = f64(msg.ask_px), f64(msg.ask_qty)
        why, mid = self.guard.check_book(msg.symbol, msg.ts_event, bid_px, ask_px)
        if why is not None:
            raise InvalidMessage(why)
        st = self.symbols.get(msg.symbol) if mid <= 0.0 else self.state_for(msg, mid)
        if st is None:  # an empty book before any price: no size chosen yet, and none matters
            size, tick = self.cfg.bucket_sizes.get(msg.symbol) or msg.tick_size or 1.0, msg.tick_size
        else:
            size, tick = st.bucket_size, st.tick_size
        outputs: list[Output] = []
        with invalid_values("book"):
            if st is not None and (st.changed or st.published_at == d.seq):
                profile = self._profile(msg, st.profile)
                outputs.append(Output(self.subjects.agg_profile(msg.venue, msg.symbol), profile))
            bids, asks = bucket_side(bid_px, bid_qty, size), bucket_side(ask_px, ask_qty, size)
            book = self._book(msg, size, tick, bids, asks)
        outputs.append(Output(self.subjects.agg_book(msg.venue, msg.symbol), book))
        if st is not None and len(outputs) == 2:  # only once the book is sure to go out with it
            st.changed, st.published_at = False, d.seq
        self.guard.accept(msg.symbol, msg.ts_event, mid)
        return outputs

    def _book(
        self, msg: DepthSnapshot, size: float, tick: float, bids: Buckets, asks: Buckets
    ) -> BookBuckets:
        return BookBuckets(
            **header_from(msg),
            bucket_size=size,
            tick_size=tick,
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
        return list(self.symbols)

    def dump_state(self, symbol: str) -> bytes:
        st = self.symbols[symbol]
        ck = _Checkpoint(st.profile.to_bytes(), st.tick_size, st.changed, st.published_at)
        return msgspec.msgpack.encode(ck)

    def load_state(self, symbol: str, blob: bytes) -> None:
        cap = self.cfg.max_profile_buckets
        if msgspec.msgpack.decode(blob, type=_Probe).profile is None:  # before per-symbol sizes
            self.symbols[symbol] = SymbolState(RollingProfile.from_bytes(blob, cap), 0.0)
            return
        ck = msgspec.msgpack.decode(blob, type=_Checkpoint)
        self.symbols[symbol] = SymbolState(
            RollingProfile.from_bytes(ck.profile, cap), ck.tick_size, ck.changed, ck.published_at
        )

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
        if not px.size:
            return []
        st = self.state_for(msg, median)
        with invalid_values("trade batch"):  # checked whole before any id is recorded
            applied = st.profile.add(i64(msg.ids), px, f64(msg.qty), ts, f64(msg.buyer_maker))
        st.changed |= applied > 0
        self.guard.accept(msg.symbol, msg.ts_event, median)
        return []

    def _profile(self, msg: DepthSnapshot, profile: RollingProfile) -> TradeProfile:
        px, buy, sell = profile.arrays()
        return TradeProfile(
            **header_from(msg),
            bucket_size=profile.bucket_size,
            window_s=self.cfg.profile_window_min * 60,
            px=f64_bytes(px),
            buy_qty=f64_bytes(buy),
            sell_qty=f64_bytes(sell),
            last_trade_id=profile.last_trade_id,
            trades_in_window=profile.trades_in_window,
        )

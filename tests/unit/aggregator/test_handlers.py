"""Per-symbol bucket sizes, and the trade profile published with the book it belongs to.

Expected sizes are worked out here by their own route (the 1-2-5 series listed out and compared
in log10, on exact decimals), never by calling ``choose_bucket_size``.
"""

from __future__ import annotations

import logging
import math
import time
from decimal import Decimal

import msgspec
import numpy as np
import pytest

from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.aggregator.profile import RollingProfile
from depthflow.common.codec import InvalidMessage
from depthflow.common.config import ConfigError, RuntimeConfig, load_config
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    TradeBatch,
    TradeProfile,
    f64,
    f64_bytes,
    i64_bytes,
)
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects

BTC, ALT = "BTCFDUSD", "ALTBTC"
NOW = time.time_ns() - 3_600_000_000_000  # an hour ago: nothing is "in the future"
SERIES = [Decimal(m).scaleb(k) for k in range(-12, 12) for m in (1, 2, 5)]


def expected_size(tick: str, price: str, rel: str = "0.000016") -> float:
    """The bucket size by the rule's definition, by search: the 1-2-5 x 10^k multiple of the tick
    nearest in log10 to rel x price / tick, at least one tick."""
    ratio = Decimal(rel) * Decimal(price) / Decimal(tick)
    multiple = min(SERIES, key=lambda s: abs(math.log10(s) - math.log10(ratio)))
    return float(Decimal(tick) * max(multiple, Decimal(1)))


def handlers(**cfg: object) -> AggregatorHandlers:
    runtime = RuntimeConfig(symbols=[BTC, ALT])
    return AggregatorHandlers(AggregatorConfig(runtime=runtime, **cfg), Subjects())  # type: ignore[arg-type]


def book(symbol: str, mid: float, tick: float, levels: int = 200, at: int = 0) -> DepthSnapshot:
    """A book of ``levels`` per side on the tick grid, one tick apart from the mid outwards."""
    steps = np.arange(1, levels + 1)
    bids = np.round(mid / tick - steps) * tick
    asks = np.round(mid / tick + steps) * tick
    return DepthSnapshot(
        symbol=symbol, venue="binance", ts_event=NOW + at, ts_init=NOW + at, origin_ts=NOW + at,
        last_update_id=at, bid_px=f64_bytes(bids), bid_qty=f64_bytes(np.ones(levels)),
        ask_px=f64_bytes(asks), ask_qty=f64_bytes(np.ones(levels)),
        known_low=float(bids[-1]), known_high=float(asks[-1]), tick_size=tick,
    )


def trades(symbol: str, prices: list[float], first_id: int, tick: float, at: int = 0) -> TradeBatch:
    n = len(prices)
    ts = np.full(n, NOW + at, np.int64)
    return TradeBatch(
        symbol=symbol, venue="binance", ts_event=NOW + at, ts_init=NOW + at, origin_ts=NOW + at,
        first_trade_id=first_id, last_trade_id=first_id + n - 1,
        ids=i64_bytes(np.arange(first_id, first_id + n)), px=f64_bytes(np.array(prices)),
        qty=f64_bytes(np.ones(n)), ts=i64_bytes(ts), buyer_maker=f64_bytes(np.zeros(n)), tick_size=tick,
    )


def at(seq: int) -> Delivery:
    return Delivery("md", "MD", seq, 1)


def kinds(outs: list[Output]) -> list[str]:
    return [type(o.message).__name__ for o in outs]


# --- bucket size per symbol -----------------------------------------------------------------


async def test_symbols_far_apart_in_price_get_their_own_bucket_sizes():
    h = handlers()
    (btc,) = [o.message for o in await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(1))]
    (alt,) = [o.message for o in await h.on_depth_snapshot(book(ALT, 0.006, 1e-8), at(2))]
    assert isinstance(btc, BookBuckets)
    assert isinstance(alt, BookBuckets)
    assert btc.bucket_size == expected_size("0.01", "60000") == 1.0
    assert alt.bucket_size == expected_size("0.00000001", "0.006") == 1e-7
    assert (btc.tick_size, alt.tick_size) == (0.01, 1e-8)
    # the same relative width: 200 ticks a side are 2 buckets of BTC and 20 of ALT, not 1 (bucket 0)
    assert (f64(btc.bid_px).size, f64(alt.bid_px).size) == (2, 20)
    # a tick coarser than the target: one tick
    h2 = handlers()
    (alt2,) = [o.message for o in await h2.on_depth_snapshot(book(ALT, 0.006, 1e-6, levels=50), at(1))]
    assert alt2.bucket_size == expected_size("0.000001", "0.006") == 1e-6
    assert f64(alt2.bid_px).size == 50


async def test_a_trade_batch_can_choose_the_size_and_books_then_use_it():
    h = handlers()
    assert await h.on_trade_batch(trades(ALT, [0.006, 0.00601, 0.00599], 1, 1e-8), at(1)) == []
    outs = await h.on_depth_snapshot(book(ALT, 0.00605, 1e-8), at(2))
    assert [o.message.bucket_size for o in outs] == [expected_size("0.00000001", "0.006")] * 2


async def test_the_size_is_fixed_for_the_symbol_whatever_later_ticks_and_prices_say(caplog):
    h = handlers()
    await h.on_depth_snapshot(book(ALT, 0.006, 1e-8), at(1))
    caplog.set_level(logging.WARNING, "depthflow.aggregator")
    for seq, tick in enumerate((1e-7, 1e-6, 1e-7), start=2):
        (out,) = await h.on_depth_snapshot(book(ALT, 0.0062, tick, levels=20), at(seq))
        assert (out.message.bucket_size, out.message.tick_size) == (1e-7, 1e-8)
    noted = [r for r in caplog.records if "tick size differs" in r.getMessage()]
    assert len(noted) == 1


async def test_an_override_wins_over_the_chosen_size():
    h = handlers(bucket_sizes={ALT: 5e-8})
    outs = await h.on_depth_snapshot(book(ALT, 0.006, 1e-8), at(1))
    assert outs[0].message.bucket_size == 5e-8


async def test_the_target_width_is_configurable():
    h = handlers(bucket_target_rel=1e-4)
    (out,) = await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(1))
    assert out.message.bucket_size == expected_size("0.01", "60000", "0.0001") == 5.0


def test_bucket_sizes_are_validated_at_start_up():
    env = {"DEPTHFLOW_NATS_URL": "nats://127.0.0.1:1", "DEPTHFLOW_SYMBOLS": f"{BTC},{ALT}"}
    sizes, target = "DEPTHFLOW_AGGREGATOR_BUCKET_SIZES", "DEPTHFLOW_AGGREGATOR_BUCKET_TARGET_REL"
    ok = load_config(AggregatorConfig, "aggregator", {**env, sizes: '{"ALTBTC": 1e-7}'})
    assert ok.bucket_sizes == {ALT: 1e-7}
    for bad, named in [
        ('{"ALTBTC": 0}', r"aggregator.*> 0.0 - at `\$.bucket_sizes"),
        ('{"ALTBTC": -1e-7}', r"aggregator.*> 0.0 - at `\$.bucket_sizes"),
        ('{"XRPBTC": 1e-7}', "not in runtime.symbols"),
    ]:
        with pytest.raises(ConfigError, match=named):
            load_config(AggregatorConfig, "aggregator", {**env, sizes: bad})
    for bad in ("0", "0.5", "nan"):
        with pytest.raises(ConfigError, match=r"aggregator\.bucket_target_rel"):
            load_config(AggregatorConfig, "aggregator", {**env, target: bad})
    with pytest.raises(ConfigError, match="DEPTHFLOW_AGGREGATOR_BUCKET_SIZE"):  # the global size is gone
        load_config(AggregatorConfig, "aggregator", {**env, "DEPTHFLOW_AGGREGATOR_BUCKET_SIZE": "1.0"})


async def test_size_tick_and_publishing_state_survive_a_checkpoint():
    h = handlers()
    await h.on_depth_snapshot(book(ALT, 0.006, 1e-8), at(1))
    await h.on_trade_batch(trades(ALT, [0.006], 1, 1e-8), at(2))
    blob = h.dump_state(ALT)
    restored = handlers()
    restored.load_state(ALT, blob)
    # a different tick and price now: the restored size stays, and the change is still unpublished
    outs = await restored.on_depth_snapshot(book(ALT, 0.0063, 1e-6, levels=20), at(3))
    assert kinds(outs) == ["TradeProfile", "BookBuckets"]
    assert [o.message.bucket_size for o in outs] == [1e-7, 1e-7]
    assert outs[1].message.tick_size == 1e-8
    assert outs[0].message.trades_in_window == 1


async def test_an_older_checkpoint_keeps_the_size_its_profile_was_built_with():
    profile = RollingProfile(0.5)
    profile.add(np.array([1]), np.array([60000.2]), np.array([1.0]), np.array([NOW]), np.array([0.0]))
    h = handlers()
    h.load_state(BTC, profile.to_bytes())  # what the build with one global size saved
    outs = await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(5))
    # that build published every change at once: nothing is owed, so the book goes alone
    assert kinds(outs) == ["BookBuckets"]
    assert outs[0].message.bucket_size == 0.5


# --- the profile travels with the book --------------------------------------------------------


async def test_trades_publish_nothing_and_the_next_book_carries_the_profile_before_it():
    h = handlers()
    assert await h.on_trade_batch(trades(BTC, [60000.5, 60001.5], 1, 0.01), at(1)) == []
    assert await h.on_trade_batch(trades(BTC, [60002.5], 3, 0.01), at(2)) == []
    outs = await h.on_depth_snapshot(book(BTC, 60001.0, 0.01), at(3))
    assert kinds(outs) == ["TradeProfile", "BookBuckets"]
    profile = outs[0].message
    assert isinstance(profile, TradeProfile)
    assert profile.trades_in_window == 3  # as of this book
    assert profile.origin_ts == outs[1].message.origin_ts  # the book's market event
    assert outs[0].subject == Subjects().agg_profile("binance", BTC)


async def test_a_book_publishes_the_profile_only_when_it_changed():
    h = handlers()
    both = ["TradeProfile", "BookBuckets"]
    await h.on_trade_batch(trades(BTC, [60000.5], 1, 0.01), at(1))
    assert kinds(await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(2))) == both
    assert kinds(await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(3))) == ["BookBuckets"]
    await h.on_trade_batch(trades(BTC, [60000.5], 1, 0.01), at(4))  # a duplicate: no change
    assert kinds(await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(5))) == ["BookBuckets"]
    await h.on_trade_batch(trades(BTC, [60000.5], 2, 0.01), at(6))
    assert kinds(await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(7))) == both


async def test_a_book_handled_again_publishes_the_same_outputs_so_message_ids_match():
    """Output n's Nats-Msg-Id is <seq>:<n>: a retried book that dropped its profile would give
    its book the id the profile already took, and the server would drop the book."""
    h = handlers()
    await h.on_trade_batch(trades(BTC, [60000.5], 1, 0.01), at(1))
    first = await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(2))
    again = await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(2))
    assert kinds(first) == kinds(again) == ["TradeProfile", "BookBuckets"]
    assert kinds(await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(3))) == ["BookBuckets"]
    assert kinds(await h.on_depth_snapshot(book(BTC, 60000.0, 0.01), at(3))) == ["BookBuckets"]


async def test_a_refused_book_does_not_count_the_profile_as_published():
    h = handlers(bucket_sizes={BTC: 1e-9})  # fine enough for 60000, too fine for 599000
    await h.on_trade_batch(trades(BTC, [60000.5], 1, 0.01), at(1))
    b = book(BTC, 60000.0, 0.01, levels=3)
    far = msgspec.structs.replace(b, ask_px=f64_bytes(np.append(f64(b.ask_px), 599000.0)),
                                  ask_qty=f64_bytes(np.ones(4)), known_high=599000.0)
    with pytest.raises(InvalidMessage, match="too fine"):
        await h.on_depth_snapshot(far, at(2))
    assert h.symbols[BTC].changed
    assert kinds(await h.on_depth_snapshot(b, at(3))) == ["TradeProfile", "BookBuckets"]


async def test_an_empty_book_before_any_price_is_published_alone():
    h = handlers()
    empty = DepthSnapshot(
        symbol=ALT, venue="binance", ts_event=NOW, ts_init=NOW, origin_ts=NOW, last_update_id=1,
        bid_px=b"", bid_qty=b"", ask_px=b"", ask_qty=b"", known_low=0.0, known_high=0.0, tick_size=1e-8,
    )
    (out,) = await h.on_depth_snapshot(empty, at(1))
    assert out.message.levels_out == 0
    assert ALT not in h.symbols  # no price yet: the size is chosen later


# --- what a book message carries beyond its buckets -------------------------------------------------


async def test_a_book_carries_its_best_prices_volumes_and_level_counts():
    """Against sums written out here: per-bucket totals by the Decimal floor of each price (BTC
    at a 1.0 bucket), the touch from the levels themselves, volumes and counts in and out."""
    rng = np.random.default_rng(5)
    snap = book(BTC, 60000.0, 0.01, levels=300)
    bid_px, ask_px = f64(snap.bid_px), f64(snap.ask_px)
    bid_qty, ask_qty = rng.uniform(0.001, 3.0, bid_px.size), rng.uniform(0.001, 3.0, ask_px.size)
    snap = msgspec.structs.replace(snap, bid_qty=f64_bytes(bid_qty), ask_qty=f64_bytes(ask_qty))
    (out,) = [o.message for o in await handlers().on_depth_snapshot(snap, at(1))]
    assert out.bucket_size == 1.0

    def per_bucket(px: np.ndarray, qty: np.ndarray) -> dict[float, float]:
        sums: dict[float, list[float]] = {}
        for p, q in zip(px.tolist(), qty.tolist(), strict=True):
            sums.setdefault(float(Decimal(repr(p)) // 1), []).append(q)
        return {k: math.fsum(v) for k, v in sorted(sums.items())}

    for side_px, side_qty, got_px, got_qty in ((bid_px, bid_qty, out.bid_px, out.bid_qty),
                                               (ask_px, ask_qty, out.ask_px, out.ask_qty)):
        want = per_bucket(side_px, side_qty)
        assert f64(got_px).tolist() == list(want)
        assert np.allclose(f64(got_qty), list(want.values()), rtol=1e-12, atol=0)
    assert (out.best_bid, out.best_ask) == (bid_px.max(), ask_px.min())
    assert out.bid_volume_in == pytest.approx(math.fsum(bid_qty), rel=1e-12)
    assert out.ask_volume_in == pytest.approx(math.fsum(ask_qty), rel=1e-12)
    assert out.bid_volume_out == pytest.approx(math.fsum(f64(out.bid_qty)), rel=1e-12)
    assert out.ask_volume_out == pytest.approx(math.fsum(f64(out.ask_qty)), rel=1e-12)
    assert out.levels_in == bid_px.size + ask_px.size == 600
    assert out.levels_out == f64(out.bid_px).size + f64(out.ask_px).size
    assert (out.known_low, out.known_high) == (snap.known_low, snap.known_high)

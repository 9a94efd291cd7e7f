"""The handlers of aggregator → peaks → ai-fusion, in process, fed well-formed messages carrying
adversarial values (NaN, ±inf, 0, negative, 1e300, 1e-300, huge ranges, future and past
timestamps, foreign venues and symbols), through the bus's own path: MessagePack bytes, decoded by
``codec.Decoder``, admitted by the runtime's ``Service.admission_error``, then the handler.

Asserted for every input: the only failure is ``InvalidMessage`` (a dead letter, never a crash or
a retry); every output is finite in every number and decodes through its consumer's validation;
outputs feed the next stage, so every ``SignalFused`` that comes out is finite and valid.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.ai_fusion.config import FusionConfig
from depthflow.ai_fusion.handlers import FusionHandlers
from depthflow.common.codec import Decoder, InvalidMessage
from depthflow.common.messages import (
    TS_FLOOR_NS,
    BookBuckets,
    DepthSnapshot,
    SignalFused,
    TradeBatch,
    TradeProfile,
    ZonesDetected,
    f64,
)
from depthflow.common.runtime import Delivery, Output, Service
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers

NOW = time.time_ns()
S = 1_000_000_000
EXTREME = [math.nan, math.inf, -math.inf, 0.0, -1.0, 1e300, -1e300, 1e-300, 5e-324, 1e15]
FLOAT_ARRAYS = {"bid_px", "bid_qty", "ask_px", "ask_qty", "px", "qty", "buy_qty", "sell_qty", "buyer_maker"}
DECODERS = {t: Decoder(t) for t in (DepthSnapshot, TradeBatch, BookBuckets, TradeProfile, ZonesDetected,
                                     SignalFused)}

bad_float = st.one_of(st.sampled_from(EXTREME), st.floats(allow_nan=True, allow_infinity=True))
bad_stamp = st.sampled_from([0, -1, TS_FLOOR_NS - 1, NOW + 60 * S, NOW + 365 * 24 * 3600 * S, 2**63 - 1])
base_price = st.floats(90.0, 110.0)


@st.composite
def poisoned(draw: st.DrawFn, type_name: str, fields: dict) -> bytes:
    """``fields`` (good values) as a wire message, half the time with one value made adversarial:
    a header field (foreign venue or symbol, a stamp before 2017 or in the future), a float, or
    one element of an array. One bad value at a time, so that each is what a refusal is about."""
    fields = {"symbol": draw(st.sampled_from(["BTCFDUSD", "ETHFDUSD"])), "venue": "binance",
              "ts_event": NOW, "ts_init": NOW, "origin_ts": NOW, **fields}
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(k for k, v in fields.items() if not isinstance(v, list))))
        value = fields[name]
        if name == "symbol":
            value = "PROBEX"
        elif name == "venue":
            value = "evil"
        elif isinstance(value, int):
            value = draw(bad_stamp)
        elif isinstance(value, float):
            value = draw(bad_float)
        elif isinstance(value, np.ndarray) and value.size:
            value = value.copy()
            i = draw(st.integers(0, value.size - 1))
            value[i] = draw(bad_stamp) if value.dtype.kind == "i" else draw(bad_float)
        fields[name] = value
    wire = {k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in fields.items()}
    return msgspec.msgpack.encode({"type": type_name, **wire})


def floats(draw: st.DrawFn, n: int, lo: float, hi: float) -> np.ndarray:
    return np.array(draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n)), dtype="<f8")


@st.composite
def depth(draw: st.DrawFn) -> bytes:
    b, n, m = draw(base_price), draw(st.integers(0, 10)), draw(st.integers(0, 10))
    bids = b - np.cumsum(floats(draw, n, 0.01, 2.0))
    asks = b + 0.01 + np.cumsum(floats(draw, m, 0.01, 2.0))
    every = np.concatenate([bids, asks])
    return draw(poisoned("DepthSnapshot", {
        "last_update_id": 1, "bid_px": bids, "bid_qty": floats(draw, n, 0.0, 10.0), "ask_px": asks,
        "ask_qty": floats(draw, m, 0.0, 10.0), "known_low": float(every.min()) if every.size else 0.0,
        "known_high": float(every.max()) if every.size else 0.0,
    }))


@st.composite
def trades(draw: st.DrawFn) -> bytes:
    n, first = draw(st.integers(1, 8)), draw(st.integers(1, 40))
    ts = NOW - np.array(draw(st.lists(st.integers(0, 7200 * S), min_size=n, max_size=n)), dtype="<i8")
    return draw(poisoned("TradeBatch", {
        "first_trade_id": first, "last_trade_id": first + n - 1,
        "ids": np.arange(first, first + n, dtype="<i8"),
        "px": draw(base_price) + floats(draw, n, -1.0, 1.0), "qty": floats(draw, n, 0.001, 5.0), "ts": ts,
        "buyer_maker": np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))),
    }))


@st.composite
def edges(draw: st.DrawFn) -> np.ndarray:
    return np.unique(np.floor(draw(base_price) + floats(draw, draw(st.integers(0, 10)), -10.0, 10.0)))


@st.composite
def book(draw: st.DrawFn) -> bytes:
    bid_px, ask_px = draw(edges()), draw(edges())
    bid_qty, ask_qty = floats(draw, bid_px.size, 0.0, 10.0), floats(draw, ask_px.size, 0.0, 10.0)
    vb, va = float(bid_qty.sum()), float(ask_qty.sum())
    return draw(poisoned("BookBuckets", {
        "bucket_size": 1.0, "bid_px": bid_px, "bid_qty": bid_qty, "ask_px": ask_px, "ask_qty": ask_qty,
        "bid_volume_in": vb, "bid_volume_out": vb, "ask_volume_in": va, "ask_volume_out": va,
        "levels_in": bid_px.size + ask_px.size, "levels_out": bid_px.size + ask_px.size,
        "best_bid": float(bid_px.max(initial=0.0)), "best_ask": float(ask_px.min(initial=0.0)),
        "known_low": float(np.concatenate([bid_px, ask_px]).min(initial=0.0)),
        "known_high": float(np.concatenate([bid_px, ask_px]).max(initial=0.0)),
    }))


@st.composite
def profile(draw: st.DrawFn) -> bytes:
    px = draw(edges())
    return draw(poisoned("TradeProfile", {
        "bucket_size": 1.0, "window_s": 60, "px": px, "buy_qty": floats(draw, px.size, 0.0, 10.0),
        "sell_qty": floats(draw, px.size, 0.0, 10.0), "last_trade_id": 1, "trades_in_window": 2,
    }))


@st.composite
def zones(draw: st.DrawFn) -> bytes:
    mid = draw(base_price)

    def zone(below: bool) -> dict:
        low = mid - draw(st.floats(1.0, 5.0)) if below else mid + draw(st.floats(0.1, 5.0))
        return {"low": low, "high": low + 1.0, "price": low + 0.5, "volume": draw(st.floats(0.0, 50.0)),
                "strength": draw(st.floats(0.0, 1.0)), "confidence": draw(st.floats(0.0, 1.0))}

    vol = {k: draw(st.floats(0.0, 100.0)) for k in ("bid_depth_near", "ask_depth_near", "trade_buy_volume",
                                                    "trade_sell_volume")}
    return draw(poisoned("ZonesDetected", {
        "mid": mid, "best_bid": mid - 0.5, "best_ask": mid + 0.5, "poc": mid + draw(st.floats(-5.0, 5.0)),
        "value_area_low": mid - 5.0, "value_area_high": mid + draw(st.floats(-5.0, 5.0)), **vol,
        "support": [zone(True)], "resistance": [zone(False)],
    }))


STAGES = {"depth": DepthSnapshot, "trades": TradeBatch, "book": BookBuckets, "profile": TradeProfile,
          "zones": ZonesDetected}
events = st.lists(st.one_of(*(st.tuples(st.just(k), s()) for k, s in
                              [("depth", depth), ("trades", trades), ("book", book), ("profile", profile),
                               ("zones", zones)])), min_size=1, max_size=8)


def numbers(msg: object) -> Iterator[float]:
    """Every float a message carries, its float64 arrays included."""
    if isinstance(msg, msgspec.Struct):
        for name in msg.__struct_fields__:
            value = getattr(msg, name)
            if name in FLOAT_ARRAYS:
                yield from f64(value).tolist()
            else:
                yield from numbers(value)
    elif isinstance(msg, list):
        for item in msg:
            yield from numbers(item)
    elif isinstance(msg, dict):
        yield from numbers(list(msg.values()))
    elif isinstance(msg, float):
        yield msg


@pytest.fixture(scope="module")
def admission() -> Service:
    """A service object for its admission check only (never run); its logging set-up undone."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    service = Service("adversarial", AggregatorConfig().runtime)
    root.handlers[:], root.level = handlers, level
    return service


class Pipeline:
    """Fresh handlers of the three services, wired as the bus wires them."""

    def __init__(self, admission: Service) -> None:
        subjects = Subjects("")
        self.admission = admission
        self.aggregator = AggregatorHandlers(AggregatorConfig(), subjects)
        self.peaks = PeaksHandlers(PeaksConfig(), subjects)
        self.fusion = FusionHandlers(FusionConfig(), subjects)
        self.loop = asyncio.new_event_loop()
        self.signals: list[SignalFused] = []
        self.dead_letters: list[str] = []
        self.seq = 0

    def route(self, msg: object):  # type: ignore[no-untyped-def]
        return {
            DepthSnapshot: self.aggregator.on_depth_snapshot, TradeBatch: self.aggregator.on_trade_batch,
            BookBuckets: self.peaks.on_book_buckets, TradeProfile: self.peaks.on_trade_profile,
            ZonesDetected: self.fusion.on_zones_detected,
        }.get(type(msg))

    def deliver(self, payload: bytes, type_: type) -> None:
        """One input as the runtime handles it; its outputs go on to their consumers."""
        try:
            msg = DECODERS[type_].decode(payload)
            if (why := self.admission.admission_error(msg)) is not None:
                raise InvalidMessage(why)
            self.seq += 1
            outputs: list[Output] = self.loop.run_until_complete(
                self.route(msg)(msg, Delivery("s", "X", self.seq, 1))
            )
        except InvalidMessage as exc:  # a dead letter with its reason: the one allowed failure
            self.dead_letters.append(exc.reason)
            return
        for out in outputs:
            produced = out.message
            bad = [x for x in numbers(produced) if not math.isfinite(x)]
            assert not bad, f"{type(produced).__name__} carries {bad}"
            again = DECODERS[type(produced)].decode(msgspec.msgpack.encode(produced))  # its own validation
            assert again == produced
            if isinstance(produced, SignalFused):
                assert -1.0 <= produced.score <= 1.0
                assert 0.0 <= produced.confidence <= 1.0
                self.signals.append(produced)
            else:
                self.deliver(msgspec.msgpack.encode(produced), type(produced))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(events)
def test_adversarial_values_are_dead_letters_or_finite_valid_outputs(admission, evs):
    p = Pipeline(admission)
    try:
        for kind, payload in evs:
            p.deliver(payload, STAGES[kind])
    finally:
        p.loop.close()
    assert all(p.dead_letters), "every dead letter says why"
    event(f"signals: {min(len(p.signals), 2)}")


def test_a_good_book_goes_all_the_way_to_a_finite_signal(admission):
    """The harness itself lets good data through: without this the property could pass vacuously."""
    p = Pipeline(admission)
    # a few buckets apart at the aggregator's relative width (1.6e-5 of the price: 0.002 here)
    bids, asks = np.array([100.501, 100.497]), np.array([100.503, 100.507])
    good = DepthSnapshot(
        symbol="BTCFDUSD", venue="binance", ts_event=NOW, ts_init=NOW, origin_ts=NOW, last_update_id=1,
        bid_px=bids.tobytes(), bid_qty=np.ones(2).tobytes(), ask_px=asks.tobytes(),
        ask_qty=np.full(2, 3.0).tobytes(), known_low=100.497, known_high=100.507,
    )
    p.deliver(msgspec.msgpack.encode(good), DepthSnapshot)
    p.loop.close()
    [signal] = p.signals
    assert signal.components["book_imbalance"] < 0

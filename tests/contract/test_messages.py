"""Every message round-trips through MessagePack, and corrupt ones are refused with a reason."""

import msgspec
import numpy as np
import pytest

from depthflow.common.codec import Decoder, InvalidMessage, encode
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    SignalFused,
    TradeBatch,
    TradeProfile,
    Zone,
    ZonesDetected,
    f64,
    f64_bytes,
    i64_bytes,
)

TS = 1_700_000_000_000_000_000
BASE = {"symbol": "BTCFDUSD", "venue": "binance", "ts_event": TS, "ts_init": TS + 1, "origin_ts": TS}


def depth(**over):
    fields = dict(
        BASE, last_update_id=9, bid_px=f64_bytes([2.0, 1.0]), bid_qty=f64_bytes([1.0, 1.0]),
        ask_px=f64_bytes([3.0]), ask_qty=f64_bytes([0.5]), known_low=1.0, known_high=3.0,
    )
    fields.update(over)
    return DepthSnapshot(**fields)


SAMPLES = [
    depth(),
    TradeBatch(**BASE, first_trade_id=5, last_trade_id=6, ids=i64_bytes([5, 6]), px=f64_bytes([1, 2]),
               qty=f64_bytes([1, 1]), ts=i64_bytes([TS, TS + 1]), buyer_maker=f64_bytes([0, 1])),
    BookBuckets(**BASE, bucket_size=1.0, bid_px=f64_bytes([1]), bid_qty=f64_bytes([2]),
                ask_px=f64_bytes([3]), ask_qty=f64_bytes([0.5]), bid_volume_in=2, bid_volume_out=2,
                ask_volume_in=0.5, ask_volume_out=0.5, levels_in=3, levels_out=2, best_bid=2,
                best_ask=3, known_low=1, known_high=3),
    TradeProfile(**BASE, bucket_size=1.0, window_s=60, px=f64_bytes([1]), buy_qty=f64_bytes([1]),
                 sell_qty=f64_bytes([0]), last_trade_id=6, trades_in_window=2),
    ZonesDetected(**BASE, mid=2.5, best_bid=2, best_ask=3, poc=2, value_area_low=1,
                  value_area_high=3, support=[Zone(low=1, high=2, price=1, volume=2, strength=0.5,
                  confidence=0.7)], resistance=[], bid_depth_near=2, ask_depth_near=0.5,
                  trade_buy_volume=1, trade_sell_volume=0),
    SignalFused(**BASE, signal_id="PEAKS-1", score=0.4, confidence=0.4, side="BUY",
                mode="TRADING", components={"book_imbalance": 0.6}, mid=2.5, best_bid=2,
                best_ask=3),
    OrderApproved(**BASE, client_order_id="df-1", signal_id="PEAKS-1", side="BUY", qty=1,
                  price=3, notional=3, execution="paper"),
    OrderRejected(**BASE, signal_id="PEAKS-2", reason="signal_flat", detail="x"),
    OrderFilled(**BASE, client_order_id="df-1", side="BUY", qty=1, price=3, fee=0.003,
                position_after=1, cash_after=96.997, equity_after=99.5, execution="paper"),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_message_round_trips_through_msgpack(msg):
    assert Decoder(type(msg)).decode(encode(msg)) == msg


def test_arrays_decode_zero_copy_as_float64():
    arr = f64(depth().bid_px)
    assert arr.dtype == np.float64
    assert arr.tolist() == [2.0, 1.0]


def test_tagged_union_dispatches_on_type():
    dec = Decoder(OrderApproved | OrderRejected)
    assert isinstance(dec.decode(encode(SAMPLES[7])), OrderRejected)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1garbage", "malformed payload"),
        (encode(SAMPLES[1]), "Invalid value 'TradeBatch'"),
        (b"\x80", "invalid message"),
    ],
)
def test_bad_payload_raises_with_reason(payload, reason):
    with pytest.raises(InvalidMessage, match=reason):
        Decoder(DepthSnapshot).decode(payload)


def corrupt_depth(**over) -> bytes:
    # Built as a plain mapping: the Struct itself refuses to be constructed this way.
    return msgspec.msgpack.encode({"type": "DepthSnapshot", **msgspec.structs.asdict(depth()), **over})


def test_ragged_arrays_are_refused():
    bad = corrupt_depth(bid_qty=f64_bytes([1.0]))
    with pytest.raises(InvalidMessage, match="differ in length"):
        Decoder(DepthSnapshot).decode(bad)


def test_newer_schema_version_is_refused():
    bad = corrupt_depth(v=99)
    with pytest.raises(InvalidMessage, match="schema version 99"):
        Decoder(DepthSnapshot).decode(bad)


def test_symbol_with_dot_is_refused():
    bad = corrupt_depth(symbol="BTC.USDT")
    with pytest.raises(InvalidMessage, match="symbol"):
        Decoder(DepthSnapshot).decode(bad)


def raw(msg: msgspec.Struct, **over) -> bytes:
    """``msg`` encoded with fields replaced, bypassing its validation (as a hostile producer would)."""
    return msgspec.msgpack.encode({"type": type(msg).__name__, **msgspec.structs.asdict(msg), **over})


NAN, INF = float("nan"), float("inf")
BAD_VALUES = [
    # (sample index, field overrides, words the reason must contain)
    (0, {"bid_qty": f64_bytes([1.0, NAN])}, "DepthSnapshot.bid_qty[1] is nan"),
    (0, {"ask_qty": f64_bytes([-0.5])}, "DepthSnapshot.ask_qty[0] is -0.5"),
    (0, {"bid_px": f64_bytes([INF, 1.0])}, "DepthSnapshot.bid_px[0] is inf"),
    (0, {"bid_px": f64_bytes([1.0, 2.0])}, "must be strictly descending"),
    (0, {"bid_px": f64_bytes([2.0, 2.0])}, "DepthSnapshot.bid_px[1] is 2.0 after 2.0"),
    (0, {"ask_px": f64_bytes([-3.0])}, "finite and > 0"),
    (0, {"known_low": NAN}, "known_low is nan"),
    (0, {"known_low": 5.0}, "known_low 5.0 is above known_high"),
    (0, {"ts_event": 0}, "ts_event is 0: before the floor"),
    (0, {"venue": "bin.ance"}, "venue"),
    (1, {"px": f64_bytes([NAN, 2])}, "TradeBatch.px[0] is nan"),
    (1, {"px": f64_bytes([-5, 2])}, "TradeBatch.px[0] is -5.0"),
    (1, {"qty": f64_bytes([1, -1e6])}, "TradeBatch.qty[1] is -1000000.0"),
    (1, {"ts": i64_bytes([TS, 0])}, "TradeBatch.ts[1] is 0"),
    (1, {"buyer_maker": f64_bytes([0, 0.5])}, "TradeBatch.buyer_maker[1] is 0.5: must be 0 or 1"),
    (2, {"bid_qty": f64_bytes([NAN])}, "BookBuckets.bid_qty[0] is nan"),
    (2, {"ask_px": f64_bytes([3, 3]), "ask_qty": f64_bytes([1, 1])}, "strictly ascending"),
    (2, {"bucket_size": 0.0}, "bucket_size is 0.0"),
    (2, {"best_bid": -1.0}, "best_bid is -1.0"),
    (2, {"bid_volume_in": INF}, "bid_volume_in is inf"),
    (3, {"buy_qty": f64_bytes([INF])}, "TradeProfile.buy_qty[0] is inf"),
    (3, {"px": f64_bytes([NAN])}, "TradeProfile.px[0] is nan"),
    (4, {"trade_buy_volume": NAN}, "trade_buy_volume is nan"),
    (4, {"bid_depth_near": INF}, "bid_depth_near is inf"),
    (4, {"value_area_low": 5.0}, "value_area_low 5.0 is above value_area_high"),
    (4, {"support": [{"low": 1, "high": 2, "price": 1, "volume": NAN, "strength": 0.5, "confidence": 0.7}]},
     "Zone.volume is nan"),
    (4, {"support": [{"low": 3, "high": 2, "price": 1, "volume": 1, "strength": 0.5, "confidence": 0.7}]},
     "Zone.low 3.0 is above high 2.0"),
    (4, {"resistance": [{"low": 1, "high": 2, "price": 1, "volume": 1, "strength": 0.5, "confidence": 1.5}]},
     "Zone.confidence is 1.5: must be in [0, 1]"),
    (4, {"high_volume_nodes": [NAN]}, "high_volume_nodes[0] is nan"),
    (5, {"confidence": NAN}, "SignalFused.confidence is nan"),
    (5, {"score": 1.5}, "SignalFused.score is 1.5"),
    (5, {"components": {"book_imbalance": NAN}}, "components['book_imbalance'] is nan"),
    (5, {"best_ask": INF}, "best_ask is inf"),
    (6, {"qty": 0.0}, "OrderApproved.qty is 0.0"),
    (8, {"equity_after": NAN}, "equity_after is nan"),
]


@pytest.mark.parametrize(("index", "over", "reason"), BAD_VALUES, ids=lambda v: str(v)[:40])
def test_bad_values_are_refused_on_decode_with_the_field_and_rule(index, over, reason):
    msg = SAMPLES[index]
    with pytest.raises(InvalidMessage) as info:
        Decoder(type(msg)).decode(raw(msg, **over))
    assert reason in info.value.reason


def test_a_producer_cannot_build_a_bad_message():
    with pytest.raises(ValueError, match=r"TradeBatch\.qty\[1\] is nan"):
        msgspec.structs.replace(SAMPLES[1], qty=f64_bytes([1, NAN]))


def test_edge_values_that_real_data_has_are_accepted():
    """An empty book side (best price 0, known bound 0), zero quantities, bucket edge 0."""
    empty_asks = depth(ask_px=b"", ask_qty=b"", known_high=0.0, bid_qty=f64_bytes([0.0, 1.0]))
    assert Decoder(DepthSnapshot).decode(encode(empty_asks)) == empty_asks
    edge0 = msgspec.structs.replace(
        SAMPLES[2], bid_px=f64_bytes([0.0]), best_ask=0.0, ask_px=b"", ask_qty=b"", known_high=0.0
    )
    assert Decoder(BookBuckets).decode(encode(edge0)) == edge0

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

BASE = {"symbol": "BTCFDUSD", "venue": "binance", "ts_event": 1, "ts_init": 2, "origin_ts": 1}


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
               qty=f64_bytes([1, 1]), ts=i64_bytes([1, 2]), buyer_maker=f64_bytes([0, 1])),
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

"""Peaks' stored trade profile goes through the same validation as one read off the bus."""

import msgspec
import pytest

from depthflow.common.checkpoint import IncompatibleState
from depthflow.common.messages import TS_FLOOR_NS, TradeProfile, f64_bytes
from depthflow.common.subjects import Subjects
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers


def test_a_stored_profile_that_is_not_valid_now_is_rebuilt_not_loaded():
    h = PeaksHandlers(PeaksConfig(), Subjects(""))
    good = TradeProfile(
        symbol="BTCFDUSD", venue="binance", ts_event=TS_FLOOR_NS, ts_init=TS_FLOOR_NS, origin_ts=TS_FLOOR_NS,
        bucket_size=1.0, window_s=60, px=f64_bytes([1.0]), buy_qty=f64_bytes([2.0]),
        sell_qty=f64_bytes([0.0]),
        last_trade_id=1, trades_in_window=1,
    )
    h.profiles["BTCFDUSD"] = good
    saved = h.dump_state("BTCFDUSD")
    h.load_state("BTCFDUSD", saved)
    assert h.profiles["BTCFDUSD"] == good
    poisoned = {"type": "TradeProfile", **msgspec.structs.asdict(good), "buy_qty": f64_bytes([float("nan")])}
    with pytest.raises(IncompatibleState, match=r"TradeProfile\.buy_qty\[0\] is nan"):
        h.load_state("ETHFDUSD", msgspec.msgpack.encode(poisoned))
    assert "ETHFDUSD" not in h.profiles

"""ai-fusion's handler on a sub-dollar symbol, through the bus's own path (MessagePack bytes,
``codec.Decoder``, the handler, the output's own validation), as in
tests/unit/common/test_handlers_adversarial.py.

The case it pins: an altcoin quoted at 0.006 whose whole book fell into one bucket had no zones,
yet ai-fusion sent actionable SELLs from its depth. With zones the same symbol trades both ways."""

from __future__ import annotations

import time

import msgspec
import pytest

from depthflow.ai_fusion.config import FusionConfig
from depthflow.ai_fusion.fusion import NO_ZONES
from depthflow.ai_fusion.handlers import FusionHandlers
from depthflow.common.codec import Decoder
from depthflow.common.messages import SignalFused, Zone, ZonesDetected
from depthflow.common.runtime import Delivery
from depthflow.common.subjects import Subjects

NOW = time.time_ns()
MID, BUCKET = 0.006, 1e-7
SUPPORT = Zone(low=0.0059950, high=0.0059990, price=0.0059970, volume=500.0, strength=0.4, confidence=0.8)
RESISTANCE = Zone(low=0.0060010, high=0.0060050, price=0.0060030, volume=500.0, strength=0.4, confidence=0.8)


def altcoin(lean: float, support: list[Zone], resistance: list[Zone]) -> bytes:
    """A zones message of a symbol at 0.006 on the wire; ``lean`` +1 is bid-heavy with buying and
    near support, -1 ask-heavy with selling and near resistance."""
    heavy, light = 900.0, 100.0
    bids, asks = (heavy, light) if lean > 0 else (light, heavy)
    mid = MID - lean * 8 * BUCKET  # toward the support when bullish, the resistance when bearish
    return msgspec.msgpack.encode(ZonesDetected(
        symbol="ALTBTC", venue="binance", ts_event=NOW, ts_init=NOW, origin_ts=NOW, mid=mid,
        best_bid=mid - BUCKET / 2, best_ask=mid + BUCKET / 2, poc=MID, value_area_low=MID - 50 * BUCKET,
        value_area_high=MID + 50 * BUCKET, support=support, resistance=resistance,
        bid_depth_near=bids, ask_depth_near=asks, trade_buy_volume=bids, trade_sell_volume=asks,
        bucket_size=BUCKET, tick_size=1e-8,
    ))


async def deliver(handlers: FusionHandlers, payload: bytes, seq: int) -> SignalFused:
    """One input as the runtime hands it over; the one output, checked by its own decoder."""
    msg: ZonesDetected = Decoder(ZonesDetected).decode(payload)
    [out] = await handlers.on_zones_detected(msg, Delivery("s", "PEAKS", seq, 1))
    signal: SignalFused = Decoder(SignalFused).decode(msgspec.msgpack.encode(out.message))
    assert signal == out.message
    return signal


@pytest.mark.parametrize("lean", [1.0, -1.0])
async def test_a_sub_dollar_book_without_zones_is_flat_and_with_zones_trades(lean):
    handlers = FusionHandlers(FusionConfig(), Subjects(""))
    without = await deliver(handlers, altcoin(lean, [], []), 1)
    assert (without.side, without.mode, without.confidence) == ("FLAT", "LEARNING", 0.0)
    assert without.components[NO_ZONES] == 1.0
    assert without.components["book_imbalance"] == pytest.approx(0.8 * lean)  # what used to trade

    with_zones = await deliver(handlers, altcoin(lean, [SUPPORT], [RESISTANCE]), 2)
    assert (with_zones.side, with_zones.mode) == ("BUY" if lean > 0 else "SELL", "TRADING")
    assert NO_ZONES not in with_zones.components
    assert with_zones.components["zone_position"] * lean > 0  # nearer the zone it leans to
    assert with_zones.components["value_area"] * lean > 0  # below the POC pulls up, above down

    again = await deliver(handlers, altcoin(lean, [], []), 3)
    assert (again.side, again.mode) == ("FLAT", "LEARNING")  # losing the zones leaves TRADING


async def test_a_signal_names_its_input_keeps_its_prices_and_obeys_the_configured_threshold():
    """The signal id is the input's stream and sequence, so a redelivery gets the same id (risk
    decides each id once); header and prices are the zones message's; the side waits for
    ``action_threshold`` as configured, not a default."""
    payload = altcoin(1.0, [SUPPORT], [RESISTANCE])
    msg = Decoder(ZonesDetected).decode(payload)
    first = FusionHandlers(FusionConfig(), Subjects("t1"))
    [out] = await first.on_zones_detected(msg, Delivery("s", "PEAKS", 41, 1))
    [again] = await first.on_zones_detected(msg, Delivery("s", "PEAKS", 41, 2))
    signal = out.message
    assert out.subject == Subjects("t1").signal_fused("binance", "ALTBTC")
    assert signal.signal_id == again.message.signal_id == "PEAKS-41"
    assert (signal.symbol, signal.venue, signal.ts_event, signal.origin_ts) == (
        msg.symbol, msg.venue, msg.ts_event, msg.origin_ts)
    assert (signal.mid, signal.best_bid, signal.best_ask) == (msg.mid, msg.best_bid, msg.best_ask)
    assert (signal.side, signal.mode) == ("BUY", "TRADING")

    for threshold, side in ((abs(signal.score), "BUY"), (min(1.0, abs(signal.score) * 1.001), "FLAT")):
        strict = FusionHandlers(FusionConfig(action_threshold=threshold), Subjects(""))
        held = await deliver(strict, payload, 1)
        assert (held.score, held.mode, held.side) == (signal.score, "TRADING", side)

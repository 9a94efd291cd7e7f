"""The live summary: counts per stage and symbol read through ``Subjects.parse`` (never token
positions), and zones printed at the symbol's precision."""

from __future__ import annotations

import time

from depthflow.common.messages import Zone, ZonesDetected
from depthflow.common.subjects import ParsedSubject, Subjects
from depthflow.ctl.summary import Snapshot, count_subjects, render


def test_counts_by_stage_and_symbol_in_a_namespace() -> None:
    s = Subjects("t7")
    snap = Snapshot()
    shown = count_subjects(snap, s, {
        s.md_depth("binance", "BTCFDUSD"): 5,
        s.peaks_zones("binance", "BTCFDUSD"): 4,
        s.dlq("peaks"): 2,
        s.dlq("risk"): 1,
        s.risk_state("binance"): 3,  # no symbol: nothing to count per symbol
        "t7.md.depth.binance": 9,  # no builder makes it: not the pipeline's
    })
    assert snap.counts == {"md.depth": {"BTCFDUSD": 5}, "peaks.zones": {"BTCFDUSD": 4}}
    assert snap.dead_letters == 3
    assert shown == [(s.peaks_zones("binance", "BTCFDUSD"),
                      ParsedSubject("peaks", "zones", "binance", "BTCFDUSD"))]


def _zones(**prices: float) -> ZonesDetected:
    now = time.time_ns()
    zone = Zone(low=0.8290, high=0.8293, price=0.8291, volume=1.0, strength=0.1, confidence=0.5)
    return ZonesDetected(symbol="DOGEFDUSD", venue="binance", ts_event=now, ts_init=now, origin_ts=now,
                         mid=0.82925, best_bid=0.8292, best_ask=0.8293, poc=0.8292,
                         value_area_low=0.8251, value_area_high=0.8334, support=[zone], resistance=[],
                         bid_depth_near=1.0, ask_depth_near=1.0, trade_buy_volume=1.0,
                         trade_sell_volume=1.0, bucket_size=0.0005, **prices)


def test_a_sub_dollar_symbol_shows_its_prices() -> None:
    text = render(Snapshot(zones={"DOGEFDUSD": _zones(tick_size=0.0001)}), ["DOGEFDUSD"], 1.0)
    assert "POC 0.8292  VA 0.8251-0.8334  support 0.8290-0.8293  resistance -" in text


def test_without_a_tick_the_bucket_size_sets_the_decimals() -> None:
    text = render(Snapshot(zones={"DOGEFDUSD": _zones()}), ["DOGEFDUSD"], 1.0)
    assert "POC 0.8292  VA 0.8251-0.8334" in text

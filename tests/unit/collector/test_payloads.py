"""Binance payload decoding: real recorded files, exact values, malformed frames and fuzzing.

The recorded files are third-party Binance data described in ``tests/data/binance/SOURCES.md``;
the counts asserted here are the ones that file states. The files are part of the repository: a
missing one fails these tests. The rest use frames copied verbatim from them.
"""

from __future__ import annotations

import gzip
import json
import pickle
import string
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthflow.collector.binance.payloads import (
    REASONS,
    DepthDiff,
    ExchangeInfo,
    FrameError,
    Ignored,
    RestDepth,
    ServerShutdown,
    Trade,
    decode_exchange_info,
    decode_rest_depth,
    decode_stream_frame,
)
from tests.data import CRYPTOFEED, HFT_0808, HFT_0809

# First frames of each kind, verbatim from the files (0808 for @depth/@trade/@bookTicker,
# cryptofeed for @aggTrade/@kline and a BTCUSDT diff with an empty side elsewhere).
DIFF_0808 = (
    '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT",'
    '"U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000",'
    '"0.00000000"],["56854.58000000","0.00000000"]],"a":[["61837.64000000","1.54698000"],'
    '["61839.85000000","0.00000000"],["61839.86000000","0.00000000"],["61845.11000000","0.32329000"],'
    '["61848.49000000","0.00000000"],["61855.45000000","0.32323000"],["61862.51000000","0.05041000"],'
    '["61862.52000000","0.00000000"],["61937.64000000","0.02000000"]]}}'
)
TRADE_0808 = (
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,'
    '"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}'
)
BOOK_TICKER_0808 = (
    '{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000",'
    '"B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}'
)
AGG_TRADE_CF = (
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1617566591315,"s":"BTCUSDT",'
    '"a":665076760,"p":"58001.03000000","q":"0.08620500","f":745522877,"l":745522877,'
    '"T":1617566591314,"m":true,"M":true}}'
)
KLINE_CF = (
    '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1617566592358,"s":"BTCUSDT","k":'
    '{"t":1617566580000,"T":1617566639999,"s":"BTCUSDT","i":"1m","f":745522651,"L":745522892,'
    '"o":"57994.60000000","c":"58001.03000000","h":"58008.75000000","l":"57994.59000000",'
    '"v":"6.45389500","n":242,"x":false,"q":"374344.56589795","V":"1.89113100",'
    '"Q":"109689.77187181","B":"0"}}}'
)
DIFF_DOT_CF = (
    '{"stream":"dotusdt@depth@100ms","data":{"e":"depthUpdate","E":1617566591307,"s":"DOTUSDT",'
    '"U":1513939202,"u":1513939205,"b":[["43.50830000","7.00000000"],["43.50500000","0.00000000"],'
    '["43.49780000","0.00000000"],["43.49090000","180.00000000"]],"a":[]}}'
)
SNAPSHOT_SMALL = (
    '{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"],["61837.62000000",'
    '"0.61700000"],["61837.24000000","0.10610000"]],"asks":[["61837.64000000","1.54698000"],'
    '["61837.65000000","0.00100000"]]}'
)
SAMPLES = [DIFF_0808, TRADE_0808, BOOK_TICKER_0808, AGG_TRADE_CF, KLINE_CF, DIFF_DOT_CF]

DecodeResult: TypeAlias = DepthDiff | Trade | ServerShutdown | Ignored | RestDepth | ExchangeInfo


# ---------------------------------------------------------------------------------------------
# Reading the recorded files


@cache
def hft_lines(path: Path) -> tuple[str, ...]:
    """``<receive ns> <json>`` lines → the JSON texts."""
    with gzip.open(path, "rt") as f:
        return tuple(line.rstrip("\n").split(" ", 1)[1] for line in f)


@cache
def cryptofeed_lines() -> tuple[tuple[str, str], ...]:
    """(``"ws"`` or the REST URL, JSON) per record; the ``wss://... <-> t`` header is dropped."""
    out = []
    with CRYPTOFEED.open() as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("wss://"):
                continue
            head, text = line.split(": ", 1)
            out.append((head.split(" -> ")[0] if " -> " in head else "ws", text))
    return tuple(out)


def _kind(r: object) -> str:
    if isinstance(r, Trade):
        return r.kind
    if isinstance(r, Ignored):
        return r.stream.split("@", 1)[1] if "@" in r.stream else r.stream
    return type(r).__name__


def _floats(levels: list[list[str]]) -> tuple[list[float], list[float]]:
    return [float(p) for p, _ in levels], [float(q) for _, q in levels]


def _assert_diff_matches_json(d: DepthDiff, text: str) -> None:
    data = json.loads(text)
    data = data.get("data", data)
    assert (d.symbol, d.event_ms, d.first_id, d.final_id) == (data["s"], data["E"], data["U"], data["u"])
    assert (d.bid_px.tolist(), d.bid_qty.tolist()) == _floats(data["b"])
    assert (d.ask_px.tolist(), d.ask_qty.tolist()) == _floats(data["a"])


def _assert_snapshot_matches_json(d: RestDepth, text: str) -> None:
    data = json.loads(text)
    assert d.last_update_id == data["lastUpdateId"]
    assert (d.bid_px.tolist(), d.bid_qty.tolist()) == _floats(data["bids"])
    assert (d.ask_px.tolist(), d.ask_qty.tolist()) == _floats(data["asks"])


# ---------------------------------------------------------------------------------------------
# Every line of the recorded files


@pytest.mark.parametrize(
    ("path", "diffs", "book_tickers", "trades", "snapshots"),
    [(HFT_0808, 3451, 28040, 9757, 1), (HFT_0809, 3044, 45134, 10147, 0)],
    ids=["0808", "0809"],
)
def test_hftbacktest_file_decodes_completely(
    path: Path, diffs: int, book_tickers: int, trades: int, snapshots: int
) -> None:
    """Counts per kind as in SOURCES.md; every diff equals json + float; ids run unbroken."""
    kinds: Counter[str] = Counter()
    prev_u = prev_t = None
    for text in hft_lines(path):
        if text.startswith('{"lastUpdateId"'):
            snap = decode_rest_depth(text)
            kinds["snapshot"] += 1
            _assert_snapshot_matches_json(snap, text)
            continue
        r = decode_stream_frame(text)
        kinds[_kind(r)] += 1
        if isinstance(r, DepthDiff):
            _assert_diff_matches_json(r, text)
            assert prev_u is None or r.first_id == prev_u + 1, "gap in U/u"
            prev_u = r.final_id
        elif isinstance(r, Trade):
            assert prev_t is None or r.id == prev_t + 1, "gap in trade ids"
            assert r.id == r.first_trade_id == r.last_trade_id
            prev_t = r.id
    expected = {"DepthDiff": diffs, "bookTicker": book_tickers, "trade": trades}
    if snapshots:
        expected["snapshot"] = snapshots
    assert dict(kinds) == expected
    assert sum(kinds.values()) == len(hft_lines(path))


def test_hftbacktest_snapshot_is_as_documented() -> None:
    (text,) = [t for t in hft_lines(HFT_0808) if t.startswith('{"lastUpdateId"')]
    snap = decode_rest_depth(text.encode())
    assert snap.last_update_id == 50093239218
    assert (snap.bid_px.size, snap.ask_px.size) == (1000, 1000)
    assert (snap.bid_px[0], snap.ask_px[0]) == (61837.63, 61837.64)
    assert (np.diff(snap.bid_px) < 0).all()
    assert (np.diff(snap.ask_px) > 0).all()


def test_cryptofeed_file_decodes_completely() -> None:
    """Per-symbol diffs, aggTrades, klines and snapshots as in SOURCES.md; aggTrade ids run on."""
    kinds: Counter[tuple[str, str]] = Counter()
    last_update: dict[str, int] = {}
    agg_ids: dict[str, list[int]] = {}
    lines = cryptofeed_lines()
    for source, text in lines:
        if source != "ws":
            symbol = source.split("symbol=")[1].split("&")[0]
            snap = decode_rest_depth(text)
            _assert_snapshot_matches_json(snap, text)
            last_update[symbol] = snap.last_update_id
            kinds[symbol, "snapshot"] += 1
            continue
        r = decode_stream_frame(text)
        if isinstance(r, Ignored):
            kinds[r.stream.split("@")[0].upper(), _kind(r)] += 1
            continue
        assert isinstance(r, DepthDiff | Trade)
        kinds[r.symbol, _kind(r)] += 1
        if isinstance(r, DepthDiff):
            _assert_diff_matches_json(r, text)
        else:
            agg_ids.setdefault(r.symbol, []).append(r.id)
            assert r.first_trade_id <= r.last_trade_id
    expected = {
        ("BTCUSDT", "DepthDiff"): 899,
        ("BTCUSDT", "aggTrade"): 1227,
        ("BTCUSDT", "kline_1m"): 44,
        ("ETHUSDT", "DepthDiff"): 909,
        ("ETHUSDT", "aggTrade"): 506,
        ("ETHUSDT", "kline_1m"): 40,
        ("DOTUSDT", "DepthDiff"): 880,
        ("DOTUSDT", "aggTrade"): 177,
        ("DOTUSDT", "kline_1m"): 34,
        ("BTCUSDT", "snapshot"): 1,
        ("ETHUSDT", "snapshot"): 1,
        ("DOTUSDT", "snapshot"): 1,
    }
    assert dict(kinds) == expected
    assert len(lines) == 4720 - 1  # the header line is not a record
    assert last_update == {"BTCUSDT": 9893033066, "ETHUSDT": 6591598839, "DOTUSDT": 1513939277}
    for ids in agg_ids.values():
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_samples_are_the_first_frames_of_their_files() -> None:
    first: dict[str, str] = {}
    for text in hft_lines(HFT_0808):
        first.setdefault(text.split('"', 4)[3] if text.startswith('{"stream"') else "rest", text)
    assert first["btcusdt@depth@100ms"] == DIFF_0808
    assert first["btcusdt@trade"] == TRADE_0808
    assert first["btcusdt@bookTicker"] == BOOK_TICKER_0808
    texts = [t for _, t in cryptofeed_lines()]
    assert next(t for t in texts if '"btcusdt@aggTrade"' in t) == AGG_TRADE_CF
    assert next(t for t in texts if '"btcusdt@kline_1m"' in t) == KLINE_CF
    assert texts[0] == DIFF_DOT_CF


# ---------------------------------------------------------------------------------------------
# Exact values


def test_first_diff_exact_values() -> None:
    d = decode_stream_frame(DIFF_0808.encode())
    assert isinstance(d, DepthDiff)
    assert (d.symbol, d.event_ms, d.first_id, d.final_id) == (
        "BTCUSDT",
        1723161255208,
        50093239189,
        50093239202,
    )
    assert d.bid_px.tolist() == [61737.63, 61730.17, 56854.58]
    assert d.bid_qty.tolist() == [0.0, 0.0, 0.0]
    assert (d.ask_px[0], d.ask_qty[0], d.ask_px.size) == (61837.64, 1.54698, 9)
    _assert_diff_matches_json(d, DIFF_0808)


def test_diff_arrays_are_readonly_contiguous_float64() -> None:
    d = decode_stream_frame(DIFF_0808)
    assert isinstance(d, DepthDiff)
    for a in (d.bid_px, d.bid_qty, d.ask_px, d.ask_qty):
        assert (a.dtype, a.flags.c_contiguous, a.flags.writeable) == (np.float64, True, False)
    with pytest.raises(ValueError, match="read-only"):
        d.bid_px[0] = 1.0


def test_diff_with_an_empty_side() -> None:
    d = decode_stream_frame(DIFF_DOT_CF)
    assert isinstance(d, DepthDiff)
    assert d.ask_px.size == d.ask_qty.size == 0
    assert d.bid_qty.tolist() == [7.0, 0.0, 0.0, 180.0]


def test_first_trade_exact_values() -> None:
    t = decode_stream_frame(TRADE_0808)
    assert t == Trade(
        symbol="BTCUSDT",
        event_ms=1723161255343,
        trade_ms=1723161255342,
        id=3735683259,
        first_trade_id=3735683259,
        last_trade_id=3735683259,
        px=float("61837.63000000"),
        qty=float("0.02000000"),
        buyer_maker=True,
        kind="trade",
    )


def test_first_agg_trade_exact_values() -> None:
    t = decode_stream_frame(AGG_TRADE_CF)
    assert t == Trade(
        symbol="BTCUSDT",
        event_ms=1617566591315,
        trade_ms=1617566591314,
        id=665076760,
        first_trade_id=745522877,
        last_trade_id=745522877,
        px=float("58001.03000000"),
        qty=float("0.08620500"),
        buyer_maker=True,
        kind="aggTrade",
    )


def test_snapshot_exact_values() -> None:
    snap = decode_rest_depth(SNAPSHOT_SMALL.encode())
    _assert_snapshot_matches_json(snap, SNAPSHOT_SMALL)
    assert snap.bid_px.tolist() == [61837.63, 61837.62, 61837.24]
    assert snap.ask_qty.tolist() == [1.54698, 0.001]
    assert not snap.bid_px.flags.writeable


def test_first_snapshot_of_each_file_exact_values() -> None:
    for source, text in cryptofeed_lines():
        if source != "ws":
            _assert_snapshot_matches_json(decode_rest_depth(text), text)


# ---------------------------------------------------------------------------------------------
# Frame shapes


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (BOOK_TICKER_0808, Ignored("btcusdt@bookTicker")),
        (KLINE_CF, Ignored("btcusdt@kline_1m")),
        (json.dumps(json.loads(KLINE_CF)["data"]), Ignored("kline")),
        (json.dumps(json.loads(BOOK_TICKER_0808)["data"]), Ignored("bookTicker")),
        ('{"result":null,"id":1}', Ignored("result")),
        ('{"result":["btcusdt@depth@100ms"],"id":3}', Ignored("result")),
        (
            '{"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}',
            Ignored("btcusdt@depth20@100ms"),
        ),
        (
            '{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1,"s":"BTCUSDT"}}',
            Ignored("btcusdt@ticker"),
        ),
        ('{"e":"serverShutdown","E":1770123456789}', ServerShutdown(1770123456789)),
        ('{"stream":"btcusdt@trade","data":{"e":"serverShutdown","E":5}}', ServerShutdown(5)),
        ('{"event":{"e":"serverShutdown","E":1770123456789}}', ServerShutdown(1770123456789)),
    ],
)
def test_frame_shapes(frame: str, expected: object) -> None:
    assert decode_stream_frame(frame) == expected
    assert decode_stream_frame(frame.encode()) == expected


def test_raw_payload_without_envelope() -> None:
    data = json.dumps(json.loads(DIFF_0808)["data"]).encode()
    d = decode_stream_frame(data)
    assert isinstance(d, DepthDiff)
    _assert_diff_matches_json(d, DIFF_0808)
    t = decode_stream_frame(json.dumps(json.loads(AGG_TRADE_CF)["data"]))
    assert isinstance(t, Trade)
    assert (t.kind, t.id) == ("aggTrade", 665076760)


def test_levels_as_json_numbers_are_accepted() -> None:
    frame = '{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[[1.5,2]],"a":[["2.5","0"]]}'
    d = decode_stream_frame(frame)
    assert isinstance(d, DepthDiff)
    assert (d.bid_px.tolist(), d.bid_qty.tolist(), d.ask_px.tolist()) == ([1.5], [2.0], [2.5])


def test_frame_error_is_picklable_and_readable() -> None:
    err = FrameError("u < U", "U=5 u=4")
    assert str(err) == "u < U: U=5 u=4"
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.detail) == ("u < U", "U=5 u=4")
    assert str(FrameError("invalid JSON")) == "invalid JSON"


# ---------------------------------------------------------------------------------------------
# Malformed frames, each with its reason


def _diff(**data: Any) -> str:
    base: dict[str, Any] = {
        "e": "depthUpdate",
        "E": 1,
        "s": "BTCUSDT",
        "U": 10,
        "u": 12,
        "b": [["100.0", "1.0"]],
        "a": [["101.0", "2.0"]],
    }
    base.update(data)
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": base})


def _trade(**data: Any) -> str:
    base: dict[str, Any] = {
        "e": "trade",
        "E": 1,
        "s": "BTCUSDT",
        "t": 7,
        "p": "100.0",
        "q": "1.0",
        "T": 1,
        "m": False,
        "M": True,
    }
    base.update(data)
    return json.dumps({"stream": "btcusdt@trade", "data": base})


def _agg(**data: Any) -> str:
    base: dict[str, Any] = {
        "e": "aggTrade",
        "E": 1,
        "s": "BTCUSDT",
        "a": 7,
        "p": "100.0",
        "q": "1.0",
        "f": 3,
        "l": 4,
        "T": 1,
        "m": False,
        "M": True,
    }
    base.update(data)
    return json.dumps(base)


STREAM_MALFORMED = [
    (b"", "invalid JSON"),
    (b"not json", "invalid JSON"),
    (b'{"stream":"x","data":{"e":"trade"', "invalid JSON"),
    (b'{"e":"trade"} trailing', "invalid JSON"),
    (b'{"e":"trade\xff"}', "invalid JSON"),
    (b'{"x":' * 5000 + b"1" + b"}" * 5000, "invalid JSON"),
    (b"[" * 5000 + b"]" * 5000, "wrong type"),
    (b'{"stream":"x","data":' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid JSON"),
    (b"[1, 2]", "wrong type"),
    (b'"depthUpdate"', "wrong type"),
    (b'{"stream":5,"data":{}}', "wrong type"),
    (b'{"stream":"btcusdt@trade","data":null}', "wrong type"),
    (b'{"data":{"e":"trade"}}', "missing field"),
    (b"{}", "missing event type"),
    (b'{"stream":"btcusdt@depth@100ms","data":{"E":1}}', "missing event type"),
    (b'{"e":"outboundAccountPosition","E":1}', "unknown event"),
    (b'{"stream":"btcusdt@foo","data":{"e":"foo","E":1}}', "unknown event"),
    (b'{"e":5}', "wrong type"),
    (b'{"error":{"code":2,"msg":"Invalid request"},"id":1}', "request error"),
    (_diff(E="1723161255208"), "wrong type"),
    (_diff(U=1.5), "wrong type"),
    (_diff(u=-1), "out of range"),
    (_diff(E=2**64), "out of range"),
    (_diff(s=""), "out of range"),
    (_diff(s=None), "wrong type"),
    (_diff(U=13, u=12), "u < U"),
    (_diff(b=None), "wrong type"),
    (_diff(b={"100": "1"}), "wrong type"),
    (_diff(b=[["100.0"]]), "level not a pair"),
    (_diff(a=[["100.0", "1.0", "2.0"]]), "level not a pair"),
    (_diff(a=["100.0"]), "level not a pair"),
    (_diff(b=[["abc", "1.0"]]), "bad number"),
    (_diff(b=[["1,5", "1.0"]]), "bad number"),
    (_diff(b=[[" 100.0", "1.0"]]), "bad number"),
    (_diff(b=[[None, "1.0"]]), "bad number"),
    (_diff(b=[["1e400", "1.0"]]), "bad number"),
    (_diff(b=[["100.0", "-1.0"]]), "negative qty"),
    (_diff(a=[["-101.0", "1.0"]]), "non-positive price"),
    (_diff(a=[["0", "1.0"]]), "non-positive price"),
    (_diff(a=[["NaN", "1.0"]]), "non-finite price"),
    (_diff(b=[["100.0", "nan"]]), "non-finite qty"),
    (_diff(b=[["100.0", "inf"]]), "non-finite qty"),
    (_diff(a=[["-Infinity", "1.0"]]), "non-finite price"),
    (_diff(a=[["Infinity", "1.0"]]), "non-finite price"),
    (_diff(b=[["-1.0", "1.0"], ["x"]]), "non-positive price"),  # a bound, then a bad level
    (_diff(b=[["100.0", "inf"], ["x"]]), "non-finite qty"),
    (_diff(U=None), "wrong type"),
    (json.dumps({"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1}}), "missing field"),
    (_trade(p="abc"), "bad number"),
    (_trade(p="-1.0"), "non-positive price"),
    (_trade(p="0.00000000"), "non-positive price"),
    (_trade(q="0.00000000"), "non-positive qty"),
    (_trade(q="inf"), "non-finite qty"),
    (_trade(p="nan"), "non-finite price"),
    (_trade(p=True), "bad number"),
    (_trade(m="true"), "wrong type"),
    (_trade(m=1), "wrong type"),
    (_trade(t="7"), "wrong type"),
    (_agg(l=2), "l < f"),
    (_agg(a=None), "wrong type"),
    (json.dumps({"e": "serverShutdown"}), "missing field"),
]


@pytest.mark.parametrize(("frame", "reason"), STREAM_MALFORMED)
def test_malformed_stream_frame(frame: bytes | str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_stream_frame(frame)
    assert info.value.reason == reason, str(info.value)
    assert reason in REASONS


def _snapshot(**data: Any) -> str:
    base: dict[str, Any] = {
        "lastUpdateId": 5,
        "bids": [["100.0", "1.0"], ["99.0", "2.0"]],
        "asks": [["101.0", "1.0"], ["102.0", "2.0"]],
    }
    base.update(data)
    return json.dumps(base)


REST_MALFORMED = [
    (b"", "invalid JSON"),
    (b'{"lastUpdateId":5,"bids":[["1","2"]]', "invalid JSON"),
    (b"[]", "wrong type"),
    (b'{"bids":[],"asks":[]}', "missing field"),
    (_snapshot(lastUpdateId="5"), "wrong type"),
    (_snapshot(lastUpdateId=5.0), "wrong type"),
    (_snapshot(lastUpdateId=-5), "out of range"),
    (_snapshot(bids=[["100.0"]]), "level not a pair"),
    (_snapshot(asks=[["101.0", "1", "x"]]), "level not a pair"),
    (_snapshot(asks=[["x", "1"]]), "bad number"),
    (_snapshot(asks=[["101.0", "-1"]]), "negative qty"),
    (_snapshot(bids=[["nan", "1"]]), "non-finite price"),
    (_snapshot(bids=[["99.0", "1"], ["100.0", "1"]]), "book not sorted"),
    (_snapshot(bids=[["100.0", "1"], ["100.0", "1"]]), "book not sorted"),
    (_snapshot(asks=[["102.0", "1"], ["101.0", "1"]]), "book not sorted"),
    (_snapshot(asks=[["100.0", "1"]]), "crossed book"),
    (_snapshot(asks=[["99.5", "1"]]), "crossed book"),
]


@pytest.mark.parametrize(("body", "reason"), REST_MALFORMED)
def test_malformed_rest_depth(body: bytes | str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_rest_depth(body)
    assert info.value.reason == reason, str(info.value)


def test_bad_level_error_names_side_and_level() -> None:
    with pytest.raises(FrameError, match=r"asks\[1\]") as info:
        decode_stream_frame(_diff(a=[["101.0", "1.0"], ["102.0", "-3"]]))
    assert info.value.reason == "negative qty"


def test_thin_snapshot_with_an_empty_side() -> None:
    snap = decode_rest_depth(_snapshot(asks=[]))
    assert snap.ask_px.size == 0
    assert snap.bid_px.tolist() == [100.0, 99.0]


# ---------------------------------------------------------------------------------------------
# exchangeInfo


def _filters(tick: Any = "0.01000000", *, notional: str | None = "NOTIONAL") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": tick,
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "83.2", "stepSize": "0.00000000"},
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ]
    if notional == "NOTIONAL":
        out.append(
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            }
        )
    elif notional == "MIN_NOTIONAL":
        out.append(
            {
                "filterType": "MIN_NOTIONAL",
                "minNotional": "10.00000000",
                "applyToMarket": True,
                "avgPriceMins": 5,
            }
        )
    return out


def _exchange_info(symbols: list[Any] | None = None, limits: list[dict[str, Any]] | None = None) -> str:
    if limits is None:
        limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ]
    if symbols is None:
        symbols = [
            {
                "symbol": "BTCFDUSD",
                "status": "TRADING",
                "baseAsset": "BTC",
                "quoteAsset": "FDUSD",
                "orderTypes": ["LIMIT", "MARKET"],
                "permissions": [],
                "filters": _filters(),
            },
            {
                "symbol": "BNBUSDT",
                "status": "BREAK",
                "baseAsset": "BNB",
                "quoteAsset": "USDT",
                "filters": _filters("0.10000000", notional="MIN_NOTIONAL"),
            },
            {"symbol": "XYZUSDT", "status": "TRADING", "filters": _filters(notional=None)},
        ]
    return json.dumps(
        {
            "timezone": "UTC",
            "serverTime": 1723161255000,
            "rateLimits": limits,
            "exchangeFilters": [],
            "symbols": symbols,
        }
    )


def test_exchange_info() -> None:
    info = decode_exchange_info(_exchange_info().encode())
    assert info.request_weight_per_minute == 6000
    assert info.server_time_ms == 1723161255000
    assert [(r.limit, r.window_s) for r in info.raw_requests] == [(61000, 300)]
    assert len(info.rate_limits) == 4
    btc = info.symbols["BTCFDUSD"]
    assert (btc.status, btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
        "TRADING",
        0.01,
        0.00001,
        0.00001,
        5.0,
    )
    assert info.symbols["BNBUSDT"].min_notional == 10.0
    assert info.symbols["BNBUSDT"].tick_size == 0.1
    assert info.symbols["XYZUSDT"].min_notional == 0.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "invalid JSON"),
        (b"[]", "wrong type"),
        (_exchange_info(limits=[]), "missing rate limit"),
        (
            _exchange_info(
                limits=[{"rateLimitType": "REQUEST_WEIGHT", "interval": "WEEK", "intervalNum": 1, "limit": 1}]
            ),
            "out of range",
        ),
        (
            _exchange_info(
                limits=[
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": "1", "limit": 1}
                ]
            ),
            "wrong type",
        ),
        (_exchange_info([{"symbol": "A", "status": "TRADING", "filters": _filters()[1:]}]), "missing filter"),
        (_exchange_info([{"symbol": "A", "status": "TRADING", "filters": _filters("1e-2")}]), "bad number"),
        (_exchange_info([{"symbol": "A", "status": "TRADING", "filters": _filters("-0.01")}]), "bad number"),
        (_exchange_info([{"symbol": "A", "status": "TRADING", "filters": _filters(0.01)}]), "wrong type"),
        (
            _exchange_info(
                [
                    {
                        "symbol": "A",
                        "status": "TRADING",
                        "filters": [{"filterType": "PRICE_FILTER"}, *_filters()[1:]],
                    }
                ]
            ),
            "missing field",
        ),
        (_exchange_info([{"status": "TRADING", "filters": []}]), "missing field"),
        (_exchange_info([[1, 2]]), "wrong type"),  # `$.symbols[0]` is not a book level
        (_exchange_info([{"symbol": "A", "status": "TRADING", "filters": [[0.01, 1]]}]), "wrong type"),
    ],
)
def test_malformed_exchange_info(body: bytes | str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_exchange_info(body)
    assert info.value.reason == reason, str(info.value)


# ---------------------------------------------------------------------------------------------
# Fuzzing: decode or FrameError, never anything else


def _outcome(fn: Callable[[Any], DecodeResult], raw: bytes | str) -> DecodeResult | FrameError:
    """Call ``fn``; anything but a result or a FrameError with a known reason fails the test."""
    try:
        out = fn(raw)
    except FrameError as err:
        error = err
    else:
        _check_invariants(out)
        return out
    assert error.reason in REASONS, error.reason
    return error


def _check_invariants(out: DecodeResult) -> None:
    if isinstance(out, DepthDiff | RestDepth):
        px = np.concatenate([out.bid_px, out.ask_px])
        qty = np.concatenate([out.bid_qty, out.ask_qty])
        assert px.dtype == qty.dtype == np.float64
        assert px.shape == qty.shape
        assert np.isfinite(px).all()
        assert np.isfinite(qty).all()
        assert (px > 0).all()
        assert (qty >= 0).all()
    if isinstance(out, DepthDiff):
        assert out.final_id >= out.first_id >= 0
    if isinstance(out, Trade):
        assert 0 < out.px < np.inf
        assert 0 < out.qty < np.inf
        assert out.first_trade_id <= out.last_trade_id
        assert isinstance(out.buyer_maker, bool)
    if isinstance(out, RestDepth) and out.bid_px.size and out.ask_px.size:
        assert out.bid_px[0] < out.ask_px[0]


DECODERS: list[Callable[[Any], DecodeResult]] = [decode_stream_frame, decode_rest_depth, decode_exchange_info]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["61837.63000000", "0.00000000", "nan", "inf", "-1", "1e400", "", "depthUpdate"])
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=5),
    max_leaves=20,
)
event_keys = st.sampled_from(
    [
        "e",
        "E",
        "s",
        "U",
        "u",
        "b",
        "a",
        "t",
        "p",
        "q",
        "T",
        "m",
        "f",
        "l",
        "lastUpdateId",
        "bids",
        "asks",
        "stream",
        "data",
        "result",
        "id",
        "event",
        "error",
    ]
)
event_types = st.sampled_from(
    ["depthUpdate", "trade", "aggTrade", "serverShutdown", "kline", "24hrTicker", "x"]
)
binance_like = st.builds(
    lambda e, fields: {"e": e, **fields},
    event_types,
    st.dictionaries(
        event_keys, json_values | st.lists(st.lists(json_scalars, max_size=3), max_size=4), max_size=9
    ),
)
streams = st.sampled_from(
    [
        "btcusdt@depth@100ms",
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@bookTicker",
        "btcusdt@depth20",
        "btcusdt@kline_1m",
        "",
    ]
)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_random_bytes(raw: bytes) -> None:
    for fn in DECODERS:
        _outcome(fn, raw)


@FUZZ
@given(value=json_values | binance_like, stream=streams, wrap=st.booleans())
def test_fuzz_random_json(value: Any, stream: str, wrap: bool) -> None:
    doc = {"stream": stream, "data": value} if wrap else value
    raw = json.dumps(doc)
    for fn in DECODERS:
        _outcome(fn, raw)
        _outcome(fn, raw.encode())


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    else:
        yield path, doc


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(doc)]


@cache
def _real_frames() -> tuple[str, ...]:
    """The sample frames, plus (when the files are there) a spread of real frames of each kind."""
    frames = [*SAMPLES, SNAPSHOT_SMALL]
    if HFT_0808.exists():
        lines = hft_lines(HFT_0808)
        frames += [t for t in lines[:400:7] if not t.startswith('{"lastUpdateId"')]
        snap = json.loads(next(t for t in lines if t.startswith('{"lastUpdateId"')))
        snap["bids"], snap["asks"] = snap["bids"][:25], snap["asks"][:25]
        frames.append(json.dumps(snap, separators=(",", ":")))
    if CRYPTOFEED.exists():
        frames += [t for source, t in cryptofeed_lines()[:600:11] if source == "ws"]
    return tuple(frames)


garbage = st.text(alphabet=string.printable + "é€\x00", max_size=10)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_real_frames(data: st.DataObject) -> None:
    """Truncate, flip bytes, or swap a leaf: a number for its string, a string for garbage."""
    frames = _real_frames()
    frame = data.draw(st.sampled_from(frames), label="frame")
    raw = frame.encode()
    how = data.draw(st.sampled_from(["truncate", "flip", "number→string", "string→garbage", "leaf→any"]))
    if how == "truncate":
        mutated: bytes | str = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] ^= data.draw(st.integers(1, 255))
        mutated = bytes(buf)
    else:
        doc = json.loads(frame)
        leaves = list(_leaves(doc))
        if how == "number→string":
            leaves = [
                (p, v) for p, v in leaves if isinstance(v, int | float) and not isinstance(v, bool)
            ] or leaves
        elif how == "string→garbage":
            leaves = [(p, v) for p, v in leaves if isinstance(v, str)] or leaves
        path, value = data.draw(st.sampled_from(leaves), label="leaf")
        if how == "number→string":
            new: Any = str(value)
        elif how == "string→garbage":
            new = data.draw(garbage)
        else:
            new = data.draw(json_values)
        mutated = json.dumps(_replace(doc, path, new))
    for fn in DECODERS:
        _outcome(fn, mutated)


def test_number_as_string_is_refused_for_ids_but_price_strings_are_the_norm() -> None:
    """Strict scalars, lax prices: the one mutation that lax decoding would have let through."""
    doc = json.loads(TRADE_0808)
    doc["data"]["t"] = str(doc["data"]["t"])
    with pytest.raises(FrameError, match="wrong type"):
        decode_stream_frame(json.dumps(doc))
    doc = json.loads(TRADE_0808)
    doc["data"]["p"] = 61837.63  # a JSON number where Binance sends a string: same value
    t = decode_stream_frame(json.dumps(doc))
    assert isinstance(t, Trade)
    assert t.px == 61837.63

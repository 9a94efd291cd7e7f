"""Self-tests of the Binance stand-in, over real sockets with aiohttp's client.

Why: collector tests will trust this stand-in as "the exchange", so its protocol (shapes, weights,
update-id sequencing, snapshot/diff consistency) and its scripted faults must themselves be proven.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import wait_for
from tests.standins.binance import BinanceStandIn

pytestmark = pytest.mark.timeout(30)

BTC = "BTCFDUSD"
ETH = "ETHFDUSD"
BTC_DEPTH = "btcfdusd@depth@100ms"
ETH_DEPTH = "ethfdusd@depth@100ms"
DECIMAL8 = re.compile(r"^\d+\.\d{8}$")


class Clock:
    """The stand-in's REST wall clock, set by the test: weight minutes and bans are stepped
    through, never slept through, and no assertion straddles a real minute boundary."""

    def __init__(self, t: float = 60.0 * 28_333_333 + 10.0) -> None:
        self.t = t  # 10 s into a minute (of November 2023)

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


Messages = list[dict[str, Any]]


async def collect(
    ws: aiohttp.ClientWebSocketResponse, until: Callable[[Messages], bool], within_s: float = 15.0
) -> Messages:
    """JSON text messages received until ``until(messages)`` holds (or the socket closes); a
    generous ``within_s`` only guards against a hang, it is not a window the test relies on."""
    out: Messages = []
    deadline = time.monotonic() + within_s
    while not until(out):
        left = deadline - time.monotonic()
        assert left > 0, f"condition not met within {within_s}s ({len(out)} messages)"
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(json.loads(msg.data))
    return out


def on(stream: str, n: int) -> Callable[[Messages], bool]:
    """Until ``n`` messages of ``stream`` have come."""
    return lambda msgs: sum(m.get("stream") == stream for m in msgs) >= n


@contextlib.asynccontextmanager
async def open_stream(
    ex: BinanceStandIn, *streams: str, **kwargs: Any
) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]]:
    """A client session plus one combined-stream connection to ``ex``."""
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{ex.ws_url}/stream?streams={'/'.join(streams)}", **kwargs) as ws,
    ):
        yield s, ws


def apply(side: dict[float, float], levels: list[list[str]]) -> None:
    """Apply diff levels the documented way: absolute quantities, zero removes."""
    for price, qty in levels:
        if float(qty) == 0.0:
            side.pop(float(price), None)
        else:
            side[float(price)] = float(qty)


def top(side: dict[float, float], n: int, descending: bool) -> list[tuple[float, float]]:
    return sorted(side.items(), reverse=descending)[:n]


def assert_consecutive(diffs: list[dict[str, Any]]) -> None:
    for prev, cur in itertools.pairwise(diffs):
        assert cur["U"] == prev["u"] + 1, (prev["U"], prev["u"], cur["U"], cur["u"])
        assert cur["u"] >= cur["U"]


async def test_depth_snapshot_shape_weights_and_errors() -> None:
    async with BinanceStandIn(symbols=[BTC, ETH], clock=Clock()) as ex, aiohttp.ClientSession() as s:
        async with s.get(f"{ex.rest_url}/api/v3/depth", params={"symbol": BTC, "limit": "5000"}) as r:
            assert r.status == 200
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "250"
            body = await r.json()
        assert set(body) == {"lastUpdateId", "bids", "asks"}
        assert len(body["bids"]) == len(body["asks"]) == 5000
        assert all(DECIMAL8.match(x) for lvl in body["bids"] + body["asks"] for x in lvl)
        bid_prices = [float(p) for p, _ in body["bids"]]
        ask_prices = [float(p) for p, _ in body["asks"]]
        assert bid_prices == sorted(bid_prices, reverse=True)
        assert len(set(bid_prices)) == 5000
        assert ask_prices == sorted(ask_prices)
        assert len(set(ask_prices)) == 5000
        assert bid_prices[0] < ask_prices[0]
        assert 59000 < bid_prices[0] < 61000
        bids, asks = ex.book_at(BTC, body["lastUpdateId"])
        assert [(float(p), float(q)) for p, q in body["bids"]] == top(bids, 5000, descending=True)
        assert [(float(p), float(q)) for p, q in body["asks"]] == top(asks, 5000, descending=False)

        async with s.get(f"{ex.rest_url}/api/v3/depth", params={"symbol": ETH}) as r:  # default limit 100
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "255"
            eth = await r.json()
        assert len(eth["bids"]) == 100
        assert 2900 < float(eth["bids"][0][0]) < 3100

        params = {"symbols": json.dumps([BTC, ETH])}
        async with s.get(f"{ex.rest_url}/api/v3/exchangeInfo", params=params) as r:
            assert r.status == 200
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "275"
            info = await r.json()
        assert info["timezone"] == "UTC"
        assert isinstance(info["serverTime"], int)
        assert info["rateLimits"][0] == {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
        }
        assert [(x["symbol"], x["baseAsset"], x["quoteAsset"]) for x in info["symbols"]] == [
            (BTC, "BTC", "FDUSD"),
            (ETH, "ETH", "FDUSD"),
        ]
        filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        assert filters["NOTIONAL"]["minNotional"] == "5.00000000"

        async with s.get(f"{ex.rest_url}/api/v3/exchangeInfo", params={"symbol": ETH}) as r:
            assert [x["symbol"] for x in (await r.json())["symbols"]] == [ETH]
        async with s.get(f"{ex.rest_url}/api/v3/depth", params={"symbol": "NOPE"}) as r:
            assert r.status == 400
            assert (await r.json())["code"] == -1121
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
        async with s.get(f"{ex.rest_url}/api/v3/nothing") as r:
            assert r.status == 404
            assert (await r.json())["code"] == -1100

        assert [(q.path, q.status, q.weight) for q in ex.requests] == [
            ("/api/v3/depth", 200, 250),
            ("/api/v3/depth", 200, 5),
            ("/api/v3/exchangeInfo", 200, 20),
            ("/api/v3/exchangeInfo", 200, 20),
            ("/api/v3/depth", 400, 5),
            ("/api/v3/nothing", 404, 0),
        ]
        assert ex.requests[0].query == {"symbol": BTC, "limit": "5000"}


async def test_buffered_diffs_apply_to_snapshot_and_equal_truth() -> None:
    """The documented local-book procedure, run against the stand-in, must reproduce its truth exactly."""
    async with BinanceStandIn(symbols=[BTC, ETH]) as ex, open_stream(ex, BTC_DEPTH, ETH_DEPTH) as (s, ws):
        messages = await collect(ws, on(BTC_DEPTH, 5))  # diffs buffered before the snapshot
        async with s.get(f"{ex.rest_url}/api/v3/depth", params={"symbol": BTC, "limit": "5000"}) as r:
            snap = await r.json()
        last = snap["lastUpdateId"]

        def past_snapshot(msgs: Messages) -> bool:
            after = [m for m in msgs if m["stream"] == BTC_DEPTH and m["data"]["u"] > last]
            return len(after) >= 5 and on(ETH_DEPTH, 10)(messages + msgs)

        messages += await collect(ws, past_snapshot)

    assert {m["stream"] for m in messages} == {BTC_DEPTH, ETH_DEPTH}
    for stream, symbol in ((BTC_DEPTH, BTC), (ETH_DEPTH, ETH)):
        diffs = [m["data"] for m in messages if m["stream"] == stream]
        assert len(diffs) >= 10
        assert all(d["e"] == "depthUpdate" and d["s"] == symbol for d in diffs)
        assert_consecutive(diffs)

    diffs = [m["data"] for m in messages if m["stream"] == BTC_DEPTH]
    assert diffs[0]["u"] <= last, "some diffs must have been buffered before the snapshot"
    pending = [d for d in diffs if d["u"] > last]
    assert pending, "some diffs must arrive after the snapshot"
    assert pending[0]["U"] <= last + 1 <= pending[0]["u"]
    bids = {float(p): float(q) for p, q in snap["bids"]}
    asks = {float(p): float(q) for p, q in snap["asks"]}
    for d in pending:
        apply(bids, d["b"])
        apply(asks, d["a"])
        assert max(bids) < min(asks), "never crossed"
    true_bids, true_asks = ex.book_at(BTC, pending[-1]["u"])
    assert top(bids, 1000, descending=True) == top(true_bids, 1000, descending=True)
    assert top(asks, 1000, descending=False) == top(true_asks, 1000, descending=False)


async def test_drop_next_diff_makes_exactly_one_gap() -> None:
    async with BinanceStandIn() as ex, open_stream(ex, BTC_DEPTH) as (_s, ws):
        before = await collect(ws, on(BTC_DEPTH, 3))
        ex.drop_next_diff(BTC)
        after = await collect(ws, on(BTC_DEPTH, 10))
    diffs = [m["data"] for m in before + after]
    gaps = [(a["u"], b["U"]) for a, b in itertools.pairwise(diffs) if b["U"] != a["u"] + 1]
    assert len(gaps) == 1
    prev_u, next_first = gaps[0]
    assert next_first > prev_u + 1
    ex.book_at(BTC, next_first - 1)  # the dropped diff existed in the truth (its u is a valid book id)


async def test_scripted_429_then_418_and_ban() -> None:
    clock = Clock()
    async with BinanceStandIn(ban_s=1.0, clock=clock) as ex, aiohttp.ClientSession() as s:
        ping = f"{ex.rest_url}/api/v3/ping"
        ex.answer_429(retry_after_s=2)
        async with s.get(ping) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "2"
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
            assert (await r.json())["code"] == -1003
        async with s.get(ping) as r:  # ignored Retry-After: a violation, banned for ban_s
            assert r.status == 418
            assert r.headers["Retry-After"] == "1"
            assert (await r.json())["code"] == -1003
        async with s.get(ping) as r:  # still banned: every REST call answers 418
            assert r.status == 418
        clock.advance(0.99)
        async with s.get(ping) as r:  # until the ban's very end
            assert r.status == 418
        clock.advance(0.02)
        async with s.get(ping) as r:
            assert r.status == 200

        ex.answer_418(retry_after_s=1)
        async with s.get(f"{ex.rest_url}/api/v3/depth", params={"symbol": BTC}) as r:
            assert r.status == 418
            assert r.headers["Retry-After"] == "1"
        async with s.get(f"{ex.rest_url}/api/v3/exchangeInfo") as r:
            assert r.status == 418
        clock.advance(1.01)
        async with s.get(ping) as r:
            assert r.status == 200

        ex.answer_429(retry_after_s=5, times=2)
        statuses = []
        for _ in range(3):
            async with s.get(ping) as r:
                statuses.append(r.status)
        assert statuses == [429, 429, 418]
        assert [q.weight for q in ex.requests if q.status != 200] == [0] * 9


async def test_weight_limit_gives_429_then_418() -> None:
    clock = Clock()  # 10 s into a minute: the window ends in 50 s
    async with BinanceStandIn(weight_limit=300, ban_s=0.5, clock=clock) as ex, aiohttp.ClientSession() as s:
        depth = f"{ex.rest_url}/api/v3/depth?symbol={BTC}&limit=5000"
        async with s.get(depth) as r:
            assert r.status == 200
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "250"
        async with s.get(depth) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "50"
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "250", "a refused request is not charged"
        async with s.get(f"{ex.rest_url}/api/v3/ping") as r:
            assert r.status == 418
            assert r.headers["Retry-After"] == "1"
        clock.advance(0.6)
        async with s.get(f"{ex.rest_url}/api/v3/ping") as r:  # ban over; 251 <= 300 fits the window
            assert r.status == 200
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "251"
        clock.advance(50)  # the next minute: a fresh window
        async with s.get(depth) as r:
            assert r.status == 200
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "250"


async def test_delay_rest_delivers_a_snapshot_taken_on_arrival() -> None:
    async with BinanceStandIn() as ex, aiohttp.ClientSession() as s:
        ex.delay_rest(0.5)
        t0 = time.monotonic()
        async with s.get(f"{ex.rest_url}/api/v3/depth", params={"symbol": BTC}) as r:
            snap = await r.json()
        assert time.monotonic() - t0 >= 0.5
        assert snap["lastUpdateId"] < ex.book(BTC)[2], "the book moved on while the answer was in flight"
        async with s.get(f"{ex.rest_url}/api/v3/ping") as r:  # applies once
            assert r.status == 200
        assert [q.delay_s for q in ex.requests] == [0.5, 0.0]


async def test_server_shutdown_then_close() -> None:
    async with BinanceStandIn(shutdown_grace_s=0.3) as ex, open_stream(ex, BTC_DEPTH) as (_s, ws):
        await collect(ws, on(BTC_DEPTH, 1))
        ex.send_server_shutdown()
        seen_at = None
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data.get("e") == "serverShutdown":
                assert isinstance(data["E"], int)
                seen_at = time.monotonic()
        assert seen_at is not None
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert msg.data == 1001
        assert time.monotonic() - seen_at >= 0.2, "closed only after the grace"


async def test_ping_is_sent_and_pong_counted() -> None:
    async with (
        BinanceStandIn(ping_interval_s=0.2) as ex,
        open_stream(ex, BTC_DEPTH, autoping=False) as (_s, ws),
    ):
        pings = 0
        while pings < 2:
            msg = await ws.receive(timeout=2)
            if msg.type == aiohttp.WSMsgType.PING:
                pings += 1
                await ws.pong(msg.data)

        async def counted() -> bool:
            return ex.pongs >= 2

        await wait_for(counted, within_s=10)
        assert ex.pings_sent >= 2


async def test_unanswered_pings_disconnect() -> None:
    async with (
        BinanceStandIn(ping_interval_s=0.2, pong_timeout_s=0.5) as ex,
        open_stream(ex, BTC_DEPTH, autoping=False) as (_s, ws),
    ):
        t0 = time.monotonic()
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING):
                break
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert time.monotonic() - t0 >= 0.6, "not before a ping went unanswered for pong_timeout_s"
        assert ex.pong_timeouts == 1
        assert ex.pongs == 0


async def test_disconnect_all_is_abrupt_and_reconnect_works() -> None:
    async with BinanceStandIn() as ex, aiohttp.ClientSession() as s:
        url = f"{ex.ws_url}/stream?streams={BTC_DEPTH}"
        async with s.ws_connect(url) as a, s.ws_connect(url) as b:
            await collect(a, on(BTC_DEPTH, 1))
            assert ex.ws_connections == 2
            assert ex.open_connections == 2
            ex.disconnect_all()
            for ws in (a, b):
                while (msg := await ws.receive(timeout=2)).type == aiohttp.WSMsgType.TEXT:
                    pass
                assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), "no close frame"
        assert ex.open_connections == 0
        async with s.ws_connect(url) as c:
            assert await collect(c, on(BTC_DEPTH, 1))
        assert ex.ws_connections == 3


async def test_trades_malformed_frames_and_subscriptions() -> None:
    async with BinanceStandIn(seed=3) as ex, aiohttp.ClientSession() as s:
        url = f"{ex.ws_url}/stream?streams=btcfdusd@aggTrade/btcfdusd@trade"
        async with s.ws_connect(url) as ws:

            def three_aggs_and_their_trades(msgs: Messages) -> bool:
                aggs = [m["data"] for m in msgs if m["stream"] == "btcfdusd@aggTrade"]
                ids = [m["data"]["t"] for m in msgs if m["stream"] == "btcfdusd@trade"]
                return len(aggs) >= 3 and bool(ids) and max(ids) >= aggs[-1]["l"]

            messages = await collect(ws, three_aggs_and_their_trades, within_s=30)
            aggs = [m["data"] for m in messages if m["stream"] == "btcfdusd@aggTrade"]
            trades = [m["data"] for m in messages if m["stream"] == "btcfdusd@trade"]
            assert len(aggs) >= 3
            for prev, cur in itertools.pairwise(aggs):
                assert cur["a"] == prev["a"] + 1
                assert cur["f"] == prev["l"] + 1
                assert cur["T"] >= prev["T"]
            assert [t["t"] for t in trades] == list(range(aggs[0]["f"], aggs[-1]["l"] + 1))
            for agg in aggs:
                assert agg["e"] == "aggTrade"
                assert agg["M"] is True
                assert isinstance(agg["m"], bool)
                parts = [t for t in trades if agg["f"] <= t["t"] <= agg["l"]]
                assert sum(round(float(t["q"]) * 1e8) for t in parts) == round(float(agg["q"]) * 1e8)
                assert {t["p"] for t in parts} == {agg["p"]}

            await ws.send_json({"method": "SUBSCRIBE", "params": [BTC_DEPTH], "id": 7})
            got = await collect(ws, lambda msgs: {"result": None, "id": 7} in msgs and on(BTC_DEPTH, 1)(msgs))
            assert {"result": None, "id": 7} in got
            assert any(m.get("stream") == BTC_DEPTH for m in got)

            ex.send_malformed(['{"stream": "btcfdusd@depth@100ms", "data": {', "not json at all"])
            raw = []
            while len(raw) < 2:
                msg = await ws.receive(timeout=2)
                assert msg.type == aiohttp.WSMsgType.TEXT
                if not msg.data.startswith('{"stream":"'):
                    raw.append(msg.data)
            assert raw == ['{"stream": "btcfdusd@depth@100ms", "data": {', "not json at all"]

            ex.send_malformed([b"\xff\xfe invalid utf-8"])
            while (msg := await ws.receive(timeout=2)).type == aiohttp.WSMsgType.TEXT:
                pass
            assert msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(f"{ex.ws_url}/stream?streams=nopeusdt@depth@100ms")
        assert err.value.status == 400


async def test_seeded_and_generating_without_clients() -> None:
    assert BinanceStandIn(seed=7).book(BTC) == BinanceStandIn(seed=7).book(BTC)
    assert BinanceStandIn(seed=7).book(BTC) != BinanceStandIn(seed=8).book(BTC)
    ex = BinanceStandIn(levels=500)
    bids0, asks0, id0 = ex.book(BTC)
    assert len(bids0) == len(asks0) == 500
    async with ex:

        async def moved() -> bool:
            return ex.book(BTC)[2] > id0

        await wait_for(moved, within_s=10)
        bids1, asks1, id1 = ex.book(BTC)
        assert id1 > id0, "the market moves with nobody connected"
        assert ex.book_at(BTC, id0) == (bids0, asks0)
        assert len(bids1) == len(asks1) == 500
        assert max(bids1) < min(asks1)
        with pytest.raises(KeyError):
            ex.book_at(BTC, id0 - 1)

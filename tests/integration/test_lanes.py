"""Canary lanes with a sequence fence, on a real server with the aggregator as two processes.

Lane ``stable`` and lane ``canary`` both read MD; a switch moves a symbol at a fence past both
lanes' cursors. Output ids carry the input sequence (``aggregator:MD:<seq>:<n>``), so the
outputs say which inputs were handled; the server drops a second output with the same id, so
the per-lane counters say whether any input was handled twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request

import numpy as np
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from depthflow.common.codec import encode
from depthflow.common.messages import (
    BookBuckets,
    DepthSnapshot,
    TradeBatch,
    TradeProfile,
    f64_bytes,
    i64_bytes,
)
from depthflow.common.routing import (
    CANARY,
    STABLE,
    Route,
    RouteConflict,
    RouteStore,
    SwitchFailed,
    switch,
    with_assignment,
)
from tests.conftest import read_all, subject_count, wait_for

PRICES = {"BTCFDUSD": 60_000.0, "ETHFDUSD": 3_000.0}
ENV = {"DEPTHFLOW_AGGREGATOR_CHECKPOINT_INTERVAL_S": "1"}


class Feed:
    """Publish a trade batch then a book per symbol, round after round, and remember them."""

    def __init__(self, bus) -> None:
        self.bus = bus
        self.books: dict[str, list[int]] = {s: [] for s in PRICES}  # md.depth stream seqs
        self.trades: dict[str, int] = dict.fromkeys(PRICES, 0)
        self.rounds = 0
        self.rng = np.random.default_rng(7)

    async def round(self) -> None:
        s = self.bus.subjects
        now = time.time_ns()
        for sym, px in PRICES.items():
            k = int(self.rng.integers(1, 4))
            first = self.trades[sym] + 1
            ts = np.full(k, now, dtype=np.int64)
            batch = TradeBatch(
                symbol=sym, venue="binance", ts_event=now, ts_init=now, origin_ts=now,
                first_trade_id=first, last_trade_id=first + k - 1,
                ids=i64_bytes(np.arange(first, first + k)),
                px=f64_bytes(self.rng.uniform(px * 0.9999, px * 1.0001, k)),
                qty=f64_bytes(self.rng.uniform(0.01, 1, k)), ts=i64_bytes(ts),
                buyer_maker=f64_bytes(self.rng.integers(0, 2, k).astype(float)),
            )
            self.trades[sym] += k
            await self.bus.js.publish(s.md_trade("binance", sym), encode(batch))
            book = DepthSnapshot(
                symbol=sym, venue="binance", ts_event=now, ts_init=now, origin_ts=now,
                last_update_id=self.rounds, bid_px=f64_bytes([px - 0.01]), bid_qty=f64_bytes([1.0]),
                ask_px=f64_bytes([px + 0.01]), ask_qty=f64_bytes([1.0]),
                known_low=px - 0.01, known_high=px + 0.01, tick_size=0.01,
            )
            ack = await self.bus.js.publish(s.md_depth("binance", sym), encode(book))
            self.books[sym].append(ack.seq)
        self.rounds += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()
            await asyncio.sleep(0.01)

    async def until_checkpointed(self, redis_url: str, pattern: str) -> None:
        """Publish rounds until a checkpoint key matching ``pattern`` is in Valkey (a periodic
        checkpoint is saved by the first message past its interval)."""
        store = aioredis.from_url(redis_url)

        async def saved() -> bool:
            await self.round()
            return any([k async for k in store.scan_iter(match=pattern)])

        try:
            await wait_for(saved)
        finally:
            await store.aclose()


def lane_counts(port: int) -> dict[tuple[str, str, str], float]:
    """Return ``(kind, symbol, outcome) -> count`` from a service's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[tuple[str, str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "depthflow_aggregator_messages":
            for smp in fam.samples:
                if smp.name.endswith("_total"):
                    key = (smp.labels["kind"], smp.labels["symbol"], smp.labels["outcome"])
                    out[key] = smp.value
    return out


async def handled_books(bus) -> dict[str, list[int]]:
    """Input sequences of the agg.book outputs per symbol, in the AGG stream's order."""
    out: dict[str, list[int]] = {s: [] for s in PRICES}
    for m, book in await read_all(bus, "AGG", bus.subjects.agg_book(), BookBuckets):
        service, stream, seq, _n = m.headers["Nats-Msg-Id"].split(":")
        assert (service, stream) == ("aggregator", bus.subjects.stream("MD"))
        out[book.symbol].append(int(seq))
    return out


async def test_a_symbol_moved_to_canary_and_back_is_handled_once_in_order_with_its_state(stack, bus):
    stable = await stack("aggregator", **ENV)
    canary = await stack("aggregator", DEPTHFLOW_LANE=CANARY, **ENV)
    feed = Feed(bus)
    stop = asyncio.Event()
    publisher = asyncio.create_task(feed.run(stop))
    try:
        async def books_out(n: int) -> bool:
            return await subject_count(bus, "AGG", bus.subjects.agg_book()) >= n

        await wait_for(lambda: books_out(20))
        route, _ = await switch(bus, "aggregator", {"ETHFDUSD": CANARY})
        to_canary = route.history[-1].fences["MD"]
        seen = sum(len(v) for v in feed.books.values())
        await wait_for(lambda: books_out(seen + 30))
        route, _ = await switch(bus, "aggregator", {"ETHFDUSD": STABLE})
        back = route.history[-1].fences["MD"]
        seen = sum(len(v) for v in feed.books.values())
        await wait_for(lambda: books_out(seen + 20))
    finally:
        stop.set()
        await publisher
    total = sum(len(v) for v in feed.books.values())
    await wait_for(lambda: books_out(total))

    # none lost, none twice in the outputs, each symbol's books in input order
    done = await handled_books(bus)
    assert done == feed.books
    # each input handled by exactly one lane (the server would hide a second output)
    st, ca = lane_counts(stable.procs[0].port), lane_counts(canary.procs[0].port)
    for sym, seqs in feed.books.items():
        ok = st.get(("depth", sym, "ok"), 0) + ca.get(("depth", sym, "ok"), 0)
        assert ok == len(seqs), (sym, st, ca)
    moved = [q for q in feed.books["ETHFDUSD"] if to_canary < q <= back]
    assert moved
    assert ca.get(("depth", "ETHFDUSD", "ok")) == len(moved)
    assert ca.get(("depth", "BTCFDUSD", "ok"), 0) == 0
    assert st.get(("depth", "ETHFDUSD", "skipped"), 0) >= len(moved)
    # the rolling profile went to the canary and came back: its last one counts every trade
    for sym in PRICES:
        profiles = [p for _, p in await read_all(
            bus, "AGG", bus.subjects.agg_profile("binance", sym), TradeProfile)]
        assert profiles[-1].last_trade_id == feed.trades[sym]
        assert profiles[-1].trades_in_window == feed.trades[sym], sym


async def test_a_lane_with_an_unreadable_route_stops_consuming_until_it_is_readable(stack, bus):
    proc = await stack("aggregator", **ENV)
    feed = Feed(bus)
    await feed.round()
    await wait_for(lambda: _books_at_least(bus, 2))
    store = await RouteStore.open(bus, "aggregator")
    rev = await store.kv.put("aggregator", b"not a route")
    log = proc.procs[0].log_path

    def lost_lines() -> int:
        return log.read_text(errors="replace").count("route watch lost")

    async def lost(n: int) -> bool:
        return lost_lines() >= n

    # two retries after the first failure: a fetch in flight when it failed has expired (0.5 s)
    await wait_for(lambda: lost(3))
    for _ in range(3):
        await feed.round()
    # the watch is retried (and fails) twice more: the lane's loop ran meanwhile, fetching nothing
    seen = lost_lines()
    await wait_for(lambda: lost(seen + 2))
    info = await bus.js.consumer_info(bus.subjects.stream("MD"), "aggregator-stable")
    assert info.num_pending == 12  # 3 rounds x 2 symbols x (trade + book)
    assert await subject_count(bus, "AGG", bus.subjects.agg_book()) == 2

    rev = await store.write(Route(service="aggregator"), rev)  # readable again: stable owns all
    await wait_for(lambda: _books_at_least(bus, 8))
    assert await handled_books(bus) == feed.books

    # a deleted route would give stable every symbol without a fence: the lane stops too
    await store.kv.delete("aggregator")
    seen = lost_lines()
    await wait_for(lambda: lost(seen + 3))
    await feed.round()
    seen = lost_lines()
    await wait_for(lambda: lost(seen + 2))
    info = await bus.js.consumer_info(bus.subjects.stream("MD"), "aggregator-stable")
    assert info.num_pending == 4
    await store.write(Route(service="aggregator"), 0)
    await wait_for(lambda: _books_at_least(bus, 10))
    assert await handled_books(bus) == feed.books


async def _books_at_least(bus, n: int) -> bool:
    return await subject_count(bus, "AGG", bus.subjects.agg_book()) >= n


async def test_route_store_compare_and_set_refuses_a_stale_revision(bus):
    store = await RouteStore.open(bus, "aggregator")
    assert await store.read() == (None, 0)
    first = Route(service="aggregator")
    rev = await store.write(first, 0)
    with pytest.raises(RouteConflict):
        await store.write(first, 0)  # a second operator who read "nothing yet"
    moved = with_assignment(first, "aggregator", {"MD": 3}, {"ETHFDUSD": CANARY})
    rev2 = await store.write(moved, rev)
    with pytest.raises(RouteConflict):
        await store.write(first, rev)  # one who read the older revision
    assert await store.read() == (moved, rev2)


async def test_a_switch_without_a_running_canary_lane_writes_nothing(stack, bus):
    await stack("aggregator", **ENV)
    with pytest.raises(SwitchFailed, match="aggregator-canary"):
        await switch(bus, "aggregator", {"ETHFDUSD": CANARY})
    store = await RouteStore.open(bus, "aggregator")
    assert await store.read() == (None, 0)
    info = await bus.js.consumer_info(bus.subjects.stream("MD"), "aggregator-stable")
    assert not info.paused


async def test_a_switch_not_confirmed_by_every_lane_puts_the_route_back(stack, bus):
    stable = await stack("aggregator", **ENV)
    canary = await stack("aggregator", DEPTHFLOW_LANE=CANARY, **ENV)
    md = bus.subjects.stream("MD")
    # the canary lane starts with the stable lane's filter: never an empty one (= everything)
    infos = [await bus.js.consumer_info(md, f"aggregator-{lane}") for lane in (STABLE, CANARY)]
    filters = [i.config.filter_subjects for i in infos]
    assert filters[0]
    assert filters[1] == filters[0]
    route, rev = await switch(bus, "aggregator", {"ETHFDUSD": CANARY})
    os.kill(canary.procs[0].pid, signal.SIGSTOP)  # alive but deaf: it cannot confirm
    try:
        with pytest.raises(SwitchFailed, match="back as before"):
            await switch(bus, "aggregator", {"ETHFDUSD": STABLE}, confirm_within_s=2)
    finally:
        os.kill(canary.procs[0].pid, signal.SIGCONT)
    store = await RouteStore.open(bus, "aggregator")
    back, rev_back = await store.read()
    assert back == route
    assert rev_back > rev
    for lane in (STABLE, CANARY):
        assert not (await bus.js.consumer_info(md, f"aggregator-{lane}")).paused
    assert stable.procs  # still running


async def test_a_canary_lane_killed_while_it_owns_a_symbol_resumes_with_its_state(stack, bus, isolated):
    env = {**ENV, "DEPTHFLOW_ACK_WAIT_S": "2"}
    await stack("aggregator", **env)
    canary = await stack("aggregator", DEPTHFLOW_LANE=CANARY, **env)
    feed = Feed(bus)

    async def books_out(n: int) -> bool:
        return await subject_count(bus, "AGG", bus.subjects.agg_book()) >= n

    for _ in range(10):
        await feed.round()
    await wait_for(lambda: books_out(20))
    await switch(bus, "aggregator", {"ETHFDUSD": CANARY})
    for _ in range(10):
        await feed.round()
    await wait_for(lambda: books_out(40))
    # the canary's periodic checkpoint (1 s) holds the state it took over before it is killed:
    # the restart then resumes from that checkpoint, not from the hand-off key. Messages keep
    # coming until the checkpoint is there (the first message past the interval saves it)
    canary_ckpt = f"{isolated.prefix}:ckpt:aggregator-{CANARY}*:ETHFDUSD"
    await feed.until_checkpointed(isolated.urls.redis, canary_ckpt)
    sent = 2 * feed.rounds  # a book per symbol per round
    await wait_for(lambda: books_out(sent))
    os.kill(canary.procs[0].pid, signal.SIGKILL)
    canary.procs.clear()
    for _ in range(10):
        await feed.round()  # ETH waits in the canary's durable meanwhile
    await stack("aggregator", DEPTHFLOW_LANE=CANARY, **env)
    await wait_for(lambda: books_out(sent + 20))
    await switch(bus, "aggregator", {"ETHFDUSD": STABLE})
    for _ in range(10):
        await feed.round()
    await wait_for(lambda: books_out(sent + 40))

    # none lost, none twice; order is not asserted: after a crash the unacked messages come
    # again only after ack_wait, behind newer ones (at-least-once, as before lanes)
    done = await handled_books(bus)
    assert {s: sorted(q) for s, q in done.items()} == feed.books
    for sym in PRICES:
        profiles = [p for _, p in await read_all(
            bus, "AGG", bus.subjects.agg_profile("binance", sym), TradeProfile)]
        assert profiles[-1].trades_in_window == feed.trades[sym], sym


async def _stop_holding_deliveries(bus, proc, feed: Feed) -> None:
    """SIGSTOP ``proc`` (the stable lane) with messages delivered to it and not acked.

    Its pull request outlives the stop by up to its 0.5 s expiry; a round published meanwhile is
    delivered into it. Tried again if the request expired first.
    """
    md = bus.subjects.stream("MD")
    for _ in range(20):
        os.kill(proc.pid, signal.SIGSTOP)
        await feed.round()
        info = await bus.js.consumer_info(md, "aggregator-stable")
        if info.num_ack_pending:
            return
        os.kill(proc.pid, signal.SIGCONT)
        await wait_for(lambda: _caught_up(bus, "aggregator-stable"))
    raise AssertionError("no delivery caught in a stopped lane in 20 tries")


async def _caught_up(bus, durable: str) -> bool:
    info = await bus.js.consumer_info(bus.subjects.stream("MD"), durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_message_pending_redelivery_at_the_fence_is_in_the_state_handed_over(stack, bus):
    # the stable lane dies holding delivered, unacked messages; restarted, it is switched at
    # once: those messages (at or below the fence, its own) come again only after ack_wait,
    # behind newer ones. The hand-off must wait for them (the ack floor reaching the fence).
    env = {**ENV, "DEPTHFLOW_ACK_WAIT_S": "20"}  # past a restart on a loaded machine
    stable = await stack("aggregator", **env)
    await stack("aggregator", DEPTHFLOW_LANE=CANARY, **env)
    feed = Feed(bus)
    for _ in range(5):
        await feed.round()
    await wait_for(lambda: _books_at_least(bus, 10))
    await _stop_holding_deliveries(bus, stable.procs[0], feed)
    os.kill(stable.procs[0].pid, signal.SIGKILL)
    stable.procs.clear()
    await stack("aggregator", **env)
    md = bus.subjects.stream("MD")
    pending = (await bus.js.consumer_info(md, "aggregator-stable")).num_ack_pending
    assert pending  # still awaiting redelivery as the switch fences past them
    await switch(bus, "aggregator", {"ETHFDUSD": CANARY})
    # moved back now, stable would wait for the canary's hand-off, which waits for stable's
    with pytest.raises(SwitchFailed, match="still owes"):  # the redelivery is 20 s away
        await switch(bus, "aggregator", {"ETHFDUSD": STABLE}, confirm_within_s=1)
    for _ in range(5):
        await feed.round()
    total = sum(len(v) for v in feed.books.values())
    await wait_for(lambda: _books_at_least(bus, total))
    await switch(bus, "aggregator", {"ETHFDUSD": STABLE})  # settled now: the move back is fine
    for _ in range(3):
        await feed.round()
    total = sum(len(v) for v in feed.books.values())
    await wait_for(lambda: _books_at_least(bus, total))

    done = await handled_books(bus)
    assert {s: sorted(q) for s, q in done.items()} == feed.books
    for sym in PRICES:  # ETH's state went to the canary with the redelivered trades in it
        profiles = [p for _, p in await read_all(
            bus, "AGG", bus.subjects.agg_profile("binance", sym), TradeProfile)]
        assert profiles[-1].trades_in_window == feed.trades[sym], sym


async def test_a_symbol_routed_to_a_lane_not_configured_for_it_comes_back_to_stable(stack, bus):
    # the canary dead-letters ETHFDUSD (not among its symbols) while it owns it; moved back, the
    # canary still owes stable an (empty) hand-off, or stable would wait for it forever
    await stack("aggregator", **ENV)
    await stack("aggregator", DEPTHFLOW_LANE=CANARY, DEPTHFLOW_SYMBOLS="BTCFDUSD", **ENV)
    feed = Feed(bus)
    for _ in range(3):
        await feed.round()
    await wait_for(lambda: _books_at_least(bus, 6))
    route, _ = await switch(bus, "aggregator", {"ETHFDUSD": CANARY})
    to_canary = route.history[-1].fences["MD"]
    for _ in range(3):
        await feed.round()

    async def dead_letters(n: int) -> bool:
        return await subject_count(bus, "DLQ", bus.subjects.dlq()) >= n

    await wait_for(lambda: dead_letters(6))  # 3 rounds x (trade + book) of ETHFDUSD

    route, _ = await switch(bus, "aggregator", {"ETHFDUSD": STABLE})  # waits for its floor
    back = route.history[-1].fences["MD"]
    for _ in range(3):
        await feed.round()
    kept = {s: [q for q in seqs if not (s == "ETHFDUSD" and to_canary < q <= back)]
            for s, seqs in feed.books.items()}
    await wait_for(lambda: _books_at_least(bus, sum(len(v) for v in kept.values())))
    assert await handled_books(bus) == kept

"""The route store on a real server: a new watch's first answer is the route stored, every
time; a switch's wait for confirmations ends at its bound; the keys listed are the live ones.

Why the watch has a test of its own: nats-py's KV watch signals "no initial values" when the server says
nothing is pending and the client has received nothing yet, which also holds while the stored
value is on its way to the client; the marker then comes before the value. Read as "no route",
a lane would consume for a moment as if stable replica 0 owned every symbol (seen in CI: a lane
with an unreadable route handled the messages it was to leave pending).
"""

from __future__ import annotations

import asyncio

import pytest

from depthflow.common.kvkeys import live_entries
from depthflow.common.routing import (
    CANARY,
    STABLE,
    Assignment,
    Route,
    RouteStore,
    _confirmed,
    ack_key,
)

STARTS = 300


async def first_answer(store: RouteStore) -> tuple[Route | None, int]:
    watch = store.watch(idle_s=0.2)
    try:
        return await anext(watch)
    finally:
        await watch.aclose()


async def test_every_new_watch_answers_the_stored_route_first(bus):
    store = await RouteStore.open(bus, "aggregator")
    assert await first_answer(store) == (None, 0)  # nothing stored: no route
    assert await store.stored() == (None, 0)
    route = Route(service="aggregator",
                  history=(Assignment(fences={"MD": 7}, lanes={"ETHFDUSD": CANARY}),))
    rev = await store.write(route, 0)
    wrong = [got for got in [await first_answer(store) for _ in range(STARTS)] if got != (route, rev)]
    assert wrong == []
    assert await store.stored() == (route, rev)  # what the watch reads when its marker comes first
    # a deleted route is a deletion (revision > 0: the lanes stop), never "no route"
    await store.kv.delete("aggregator")
    got, deleted_at = await first_answer(store)
    assert got is None
    assert deleted_at > rev
    assert await store.stored() == (None, deleted_at)
    assert await store.read() == (None, 0)  # (a write at revision 0 creates it again)
    assert await store.write(route, 0) > deleted_at


class CancelLostOnce(RouteStore):
    """The real store, whose confirmation read once finishes although cancelled: what nats-py's
    request does on Python 3.11 when the cancellation lands as the reply arrives (its own
    ``asyncio.wait_for`` then returns the reply)."""

    lost = 0

    async def confirmation(self, seat: str) -> int:
        try:
            got = await super().confirmation(seat)
            await asyncio.sleep(0.01)  # (where the poll spends its time: the cancel lands here)
        except asyncio.CancelledError:
            if self.lost:
                raise
            self.lost += 1
            return 0
        return got


async def test_the_wait_for_confirmations_ends_at_its_bound_though_a_read_lost_its_cancel(bus):
    # seen in CI: a switch with a replica dead hung 300 s instead of failing after its 4 s
    plain = await RouteStore.open(bus, "aggregator")
    store = CancelLostOnce(plain.kv, "aggregator")
    await store.confirm("stable", "0", 5)  # one seat confirmed, the other never will
    waiting = asyncio.create_task(_confirmed(store, ["stable.0", "canary.0"], 5, 0.3, 0))
    try:
        done, _ = await asyncio.wait({waiting}, timeout=3.0)
        assert waiting in done, "still waiting 10 times past the bound"
        with pytest.raises(TimeoutError):
            waiting.result()
    finally:
        waiting.cancel()
    await store.confirm("canary", "0", 5)
    await _confirmed(store, ["stable.0", "canary.0"], 5, 0.3, 0)  # both confirmed: returns


async def test_the_keys_listed_are_the_live_ones_from_the_server(bus):
    # listed from the stream's subject counts, not from a watch (nats-py's keys() stops at a
    # "no initial values" marker that can come before the values: "venues: none" seen in CI)
    store = await RouteStore.open(bus, "aggregator")
    assert await live_entries(store.kv) == {}
    assert await store.confirmations((STABLE, CANARY)) == {}
    for lane, replica, rev in (("stable", "0", 5), ("stable", "r1", 6), ("canary", "0", 7)):
        await store.confirm(lane, replica, rev)
    await store.confirm("stable", "r2", 3)
    await store.kv.delete(ack_key("aggregator", "stable", "r1"))
    await store.kv.purge(ack_key("aggregator", "stable", "r2"))
    assert await store.confirmations((STABLE, CANARY)) == {"stable.0": 5, "canary.0": 7}
    assert await store.confirmations((CANARY,)) == {"canary.0": 7}
    assert await live_entries(store.kv, "aggregator.stable.") == {"aggregator.stable.0": b"5"}
    await store.confirm("stable", "r1", 8)  # written again after its deletion: live again
    assert list(await live_entries(store.kv, "aggregator.")) == [
        "aggregator.canary.0", "aggregator.stable.0", "aggregator.stable.r1"]
    # a prefix that ends inside a token (the trading state's keys: trading-state-<venue>)
    assert list(await live_entries(store.kv, "aggregator.stable.r")) == ["aggregator.stable.r1"]
    assert list(await live_entries(store.kv, "aggreg")) == [
        "aggregator.canary.0", "aggregator.stable.0", "aggregator.stable.r1"]

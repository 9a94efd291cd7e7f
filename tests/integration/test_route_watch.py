"""``RouteStore.watch`` on a real server: its first answer is the route stored, every time.

Why a test of its own: nats-py's KV watch signals "no initial values" when the server says
nothing is pending and the client has received nothing yet, which also holds while the stored
value is on its way to the client; the marker then comes before the value. Read as "no route",
a lane would consume for a moment as if stable replica 0 owned every symbol (seen in CI: a lane
with an unreadable route handled the messages it was to leave pending).
"""

from __future__ import annotations

from depthflow.common.routing import CANARY, Assignment, Route, RouteStore

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

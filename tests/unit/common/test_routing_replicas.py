"""Replicas of a lane: rendezvous assignment and the owner by seat, a pure function too."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from depthflow.common.routing import (
    CANARY,
    STABLE,
    Assignment,
    Route,
    decode_route,
    durable_name,
    encode_route,
    gone_at,
    gone_since,
    removed,
    rendezvous,
    seat_acquired,
    seat_losses,
    seat_of,
    seat_orphans,
    seat_transfers,
    with_assignment,
)

SYMBOLS = [f"S{i}" for i in range(40)]
REPLICAS = ("0", "1", "2", "r3", "r4")

replica_sets = st.lists(st.sampled_from(REPLICAS), min_size=1, max_size=4, unique=True)
assignments = st.builds(
    lambda lanes, rs: Assignment(fences={"MD": 1}, lanes=lanes, replicas=rs),
    st.dictionaries(st.sampled_from(SYMBOLS[:4]), st.sampled_from((STABLE, CANARY)), max_size=4),
    st.dictionaries(st.sampled_from((STABLE, CANARY)), replica_sets, max_size=2),
)
histories = st.lists(st.tuples(st.integers(0, 200), assignments), max_size=5).map(
    lambda h: sorted(h, key=lambda e: e[0])
)


@given(replica_sets, st.sampled_from(REPLICAS))
def test_rendezvous_with_a_replica_joining_moves_symbols_only_to_it(replicas, joiner) -> None:
    before = {s: rendezvous(s, replicas) for s in SYMBOLS}
    after = {s: rendezvous(s, [*replicas, joiner]) for s in SYMBOLS}
    assert all(after[s] in (before[s], joiner) for s in SYMBOLS)
    assert set(before.values()) <= set(replicas)
    # order of the set does not matter: every process computes the same owner
    assert after == {s: rendezvous(s, [joiner, *reversed(replicas)]) for s in SYMBOLS}


def test_rendezvous_with_two_replicas_splits_forty_symbols_roughly_evenly() -> None:
    mine = sum(rendezvous(s, ["0", "1"]) == "0" for s in SYMBOLS)
    assert 10 <= mine <= 30


@given(histories, st.sampled_from(SYMBOLS[:6]), st.integers(1, 300))
def test_seat_of_with_any_history_agrees_with_its_transfers(history, symbol, seq) -> None:
    seat = seat_of(symbol, seq, history)
    prev = (STABLE, "0")
    for fence, frm, to in seat_transfers(symbol, history):
        assert frm == prev != to
        assert seat_of(symbol, fence, history) == frm
        assert seat_of(symbol, fence + 1, history) == to
        prev = to
    got = seat_acquired(symbol, seq, history)
    if got is not None:
        assert all(seat_of(symbol, q, history) == seat for q in range(got[0] + 1, seq + 1))
    lane, replica = seat
    losses = seat_losses(seat, SYMBOLS[:6], history)
    assert all(seat_of(s, f, history) == seat != seat_of(s, f + 1, history) for f, s in losses)
    assert lane in (STABLE, CANARY)
    assert replica in REPLICAS
    # the recoveries owed: exactly the symbols the seat holds at the end, last taken from a
    # replica gone at that fence (checked by owners, not by the transfers' list)
    end = 10**9
    owed = {
        (f, s) for s in SYMBOLS[:6] if seat_of(s, end, history) == seat
        for f in [max((f for f, _ in history if seat_of(s, f, history) != seat), default=None)]
        if f is not None and gone_at(seat_of(s, f, history), f, history)
    }
    assert set(seat_orphans(seat, SYMBOLS[:6], history)) == owed


def test_gone_and_removed_follow_the_replica_sets() -> None:
    a = Assignment(fences={"MD": 10}, replicas={STABLE: ["0", "1"]})
    b = Assignment(fences={"MD": 20}, replicas={STABLE: ["0"]})
    history = [(10, a), (20, b)]
    assert gone_at((STABLE, "1"), 20, history)
    assert not gone_at((STABLE, "1"), 10, history)
    assert not gone_at((STABLE, "0"), 20, history)
    assert gone_since((STABLE, "1"), 15, history)
    assert gone_since((STABLE, "1"), 20, history)
    assert not gone_since((STABLE, "1"), 21, history)
    assert removed((STABLE, "1"), history)
    # what replica 1 held comes back to replica 0 at 20, from a replica gone: a recovery
    held = [s for s in SYMBOLS if rendezvous(s, ["0", "1"]) == "1"]
    assert seat_orphans((STABLE, "0"), SYMBOLS, history) == sorted((20, s) for s in held)
    assert seat_orphans((STABLE, "0"), SYMBOLS, history[:1]) == []  # replica 0 handed over
    assert not removed((STABLE, "0"), history)
    assert removed((STABLE, "0"), [(5, Assignment(fences={"MD": 5}, replicas={STABLE: ["1"]}))])
    assert durable_name("aggregator", STABLE, "0") == "aggregator-stable"
    assert durable_name("aggregator", CANARY, "r2") == "aggregator-canary-r2"


def test_route_without_replicas_reads_as_before_and_with_assignment_carries_the_sets() -> None:
    old = {"v": 1, "service": "aggregator",
           "history": [{"fences": {"MD": 3}, "lanes": {"BTCFDUSD": CANARY}}]}
    route = decode_route(msgspec.msgpack.encode(old))
    assert route.history[0].replicas_of(STABLE) == ("0",)
    assert seat_of("BTCFDUSD", 4, route.seats_for_stream("MD")) == (CANARY, "0")
    scaled = with_assignment(route, "aggregator", {"MD": 9}, route.current(), {STABLE: ["1", "0"]})
    assert scaled.history[-1].replicas == {STABLE: ["0", "1"]}
    moved = with_assignment(scaled, "aggregator", {"MD": 12}, {})
    assert moved.current_replicas() == {STABLE: ["0", "1"]}
    back = with_assignment(moved, "aggregator", {"MD": 15}, {}, {STABLE: ["0"]})
    assert back.current_replicas() == {}
    assert decode_route(encode_route(back)) == back
    assert isinstance(back, Route)

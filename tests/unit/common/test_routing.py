"""The owner of a message is a pure function of (symbol, stream sequence, route history)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from depthflow.common.config import RuntimeConfig, load_config
from depthflow.common.routing import (
    CANARY,
    STABLE,
    Assignment,
    Route,
    acquired,
    decode_route,
    encode_route,
    losses,
    owner,
    transfers,
    with_assignment,
)


class Cfg(msgspec.Struct, kw_only=True):
    runtime: RuntimeConfig = RuntimeConfig()


SYMBOLS = ("BTCFDUSD", "ETHFDUSD", "SOLFDUSD")
LANES = (STABLE, CANARY, "blue")

lane_maps = st.dictionaries(st.sampled_from(SYMBOLS), st.sampled_from(LANES), max_size=3)
histories = st.lists(st.tuples(st.integers(0, 200), lane_maps), max_size=6)
distinct_histories = st.lists(
    st.tuples(st.integers(0, 200), lane_maps), max_size=6, unique_by=lambda e: e[0]
)


def test_owner_with_no_history_is_stable_for_every_message() -> None:
    assert owner("BTCFDUSD", 1, ()) == STABLE
    assert owner("BTCFDUSD", 10**12, ()) == STABLE


@given(histories, st.sampled_from(SYMBOLS), st.integers(1, 300))
def test_owner_with_any_history_is_exactly_one_known_lane(history, symbol, seq) -> None:
    lane = owner(symbol, seq, history)
    assert lane in LANES
    assert owner(symbol, seq, history) == lane  # pure: asked again, the same answer


@given(distinct_histories, st.sampled_from(SYMBOLS), st.integers(1, 300), st.randoms())
def test_owner_with_distinct_fences_ignores_the_order_of_the_history(history, symbol, seq, rnd):
    shuffled = list(history)
    rnd.shuffle(shuffled)
    assert owner(symbol, seq, shuffled) == owner(symbol, seq, history)


@given(distinct_histories, lane_maps, st.sampled_from(SYMBOLS), st.integers(1, 400))
def test_owner_with_a_new_fence_applies_it_after_the_fence_and_never_before(
    history, lanes, symbol, seq
) -> None:
    fence = max((f for f, _ in history), default=0) + 50
    later = [*history, (fence, lanes)]
    if seq <= fence:
        assert owner(symbol, seq, later) == owner(symbol, seq, history)
    else:
        assert owner(symbol, seq, later) == lanes.get(symbol, STABLE)
    # at the fence itself the old owner still holds; right after it, the new one
    assert owner(symbol, fence, later) == owner(symbol, fence, history)
    assert owner(symbol, fence + 1, later) == lanes.get(symbol, STABLE)


def test_owner_with_a_tie_at_one_fence_takes_the_later_entry() -> None:
    history = [(10, {"BTCFDUSD": CANARY}), (10, {})]
    assert owner("BTCFDUSD", 11, history) == STABLE
    assert owner("BTCFDUSD", 10, history) == STABLE
    assert owner("BTCFDUSD", 11, history[:1]) == CANARY


def test_route_for_stream_orders_by_fence_and_skips_entries_without_the_stream() -> None:
    route = Route(service="risk", history=(
        Assignment(fences={"SIGNALS": 40, "AGG": 7}, lanes={"BTCFDUSD": CANARY}),
        Assignment(fences={"SIGNALS": 30}, lanes={}),
    ))
    assert route.for_stream("AGG") == ((7, {"BTCFDUSD": CANARY}),)
    assert route.for_stream("SIGNALS") == ((30, {}), (40, {"BTCFDUSD": CANARY}))
    assert route.for_stream("MD") == ()
    assert owner("BTCFDUSD", 41, route.for_stream("SIGNALS")) == CANARY
    assert owner("BTCFDUSD", 41, route.for_stream("MD")) == STABLE


def test_with_assignment_keeps_history_and_drops_stable_entries() -> None:
    first = with_assignment(None, "aggregator", {"MD": 5}, {"BTCFDUSD": CANARY, "ETHFDUSD": STABLE})
    second = with_assignment(first, "aggregator", {"MD": 9}, {"BTCFDUSD": STABLE})
    assert first.history == (Assignment(fences={"MD": 5}, lanes={"BTCFDUSD": CANARY}),)
    assert second.history[0] == first.history[0]
    assert second.history[1].lanes == {}
    assert second.current() == {}
    assert first.current() == {"BTCFDUSD": CANARY}


def test_route_roundtrip_and_refusals() -> None:
    route = with_assignment(None, "aggregator", {"MD": 5}, {"BTCFDUSD": CANARY})
    assert decode_route(encode_route(route)) == route
    with pytest.raises(ValueError, match="version"):
        decode_route(msgspec.msgpack.encode({"v": 2, "service": "aggregator", "history": []}))
    with pytest.raises(ValueError, match="unreadable"):
        decode_route(b"\xc1")
    bad_fence = {"v": 1, "service": "aggregator", "history": [{"fences": {"MD": -1}, "lanes": {}}]}
    with pytest.raises(ValueError, match="unreadable"):
        decode_route(msgspec.msgpack.encode(bad_fence))
    no_fence = {"v": 1, "service": "aggregator", "history": [{"fences": {}, "lanes": {}}]}
    with pytest.raises(ValueError, match="fence"):
        decode_route(msgspec.msgpack.encode(no_fence))
    dotted = {"v": 1, "service": "aggregator",
              "history": [{"fences": {"MD": 1}, "lanes": {"BTC.X": CANARY}}]}
    with pytest.raises(ValueError, match="unreadable"):
        decode_route(msgspec.msgpack.encode(dotted))


@given(histories, st.sampled_from(SYMBOLS), st.integers(1, 300))
def test_transfers_with_any_history_chain_and_agree_with_owner(history, symbol, seq) -> None:
    moves = transfers(symbol, history)
    prev = STABLE
    for fence, frm, to in moves:
        assert frm == prev != to
        prev = to
        assert owner(symbol, fence, history) == frm
        assert owner(symbol, fence + 1, history) == to
    got = acquired(symbol, seq, history)
    lane = owner(symbol, seq, history)
    if got is None:
        assert lane == STABLE
        assert all(fence >= seq for fence, _, _ in moves)
    else:
        fence, frm = got
        assert fence < seq
        assert owner(symbol, fence, history) == frm != lane
        # the lane held the symbol over (fence, seq]: no change of owner in between
        assert all(owner(symbol, q, history) == lane for q in range(fence + 1, seq + 1))


@given(histories)
def test_losses_with_any_history_are_the_transfers_away_from_the_lane(history) -> None:
    for lane in LANES:
        want = sorted((f, s) for s in SYMBOLS for f, frm, _ in transfers(s, history) if frm == lane)
        assert losses(lane, history) == want


def test_runtime_config_takes_the_replica_id_from_the_environment_like_the_lane() -> None:
    env = {"DEPTHFLOW_NATS_URL": "nats://127.0.0.1:1", "DEPTHFLOW_LANE": CANARY}
    assert load_config(Cfg, "aggregator", env).runtime.replica == "0"
    cfg = load_config(Cfg, "aggregator", {**env, "DEPTHFLOW_REPLICA": "r-2"}).runtime
    assert (cfg.lane, cfg.replica) == (CANARY, "r-2")

"""The runtime's checkpoint restore on real JetStream and Valkey, with a recording handler whose
state is the list of update ids it applied per symbol: the oracle is the list published, each id
once, in order, whatever the restore had to do. Symbols checkpointed at different sequences are
each replayed from their own; a dead-lettered message in the replay range stays out; a state in
another format is rebuilt from the stream; a garbled checkpoint stops start-up; after a purge
the state holds what the stream still has, and new messages apply on top."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from depthflow.common.checkpoint import CheckpointStore, IncompatibleState
from depthflow.common.codec import encode
from depthflow.common.config import RuntimeConfig
from depthflow.common.messages import DepthSnapshot, f64_bytes
from depthflow.common.runtime import Delivery, Output, Service
from depthflow.ctl.stack import readyz
from tests.conftest import subject_count, wait_for
from tests.integration.inprocess import running

BTC, ETH = "BTCFDUSD", "ETHFDUSD"


class Applied:
    """Per symbol, the update ids applied, in order: checkpointed as a msgpack list."""

    def __init__(self) -> None:
        self.ids: dict[str, list[int]] = {}

    async def on_depth(self, msg: DepthSnapshot, _: Delivery) -> list[Output]:
        self.ids.setdefault(msg.symbol, []).append(msg.last_update_id)
        return []

    def checkpoint_symbols(self) -> list[str]:
        return sorted(self.ids)

    def dump_state(self, symbol: str) -> bytes:
        return msgspec.msgpack.encode(self.ids[symbol])

    def load_state(self, symbol: str, blob: bytes) -> None:
        if blob == b"format 0":
            raise IncompatibleState("an older format")
        self.ids[symbol] = msgspec.msgpack.decode(blob, type=list[int])


def probe(isolated, target: Applied) -> Service:
    rt = RuntimeConfig(prefix=isolated.prefix, symbols=[BTC, ETH], nats_url=isolated.urls.nats,
                       redis_url=isolated.urls.redis)
    service = Service("probe", rt)
    service.consume("MD", service.subjects.md_depth(), DepthSnapshot, target.on_depth, "depth")
    service.checkpoint("MD", target, interval_s=3600)  # saved at the drain only, unless written here
    return service


def depth(symbol: str, update_id: int) -> bytes:
    now = time.time_ns()
    return encode(DepthSnapshot(
        symbol=symbol, venue="binance", ts_event=now, ts_init=now, origin_ts=now, last_update_id=update_id,
        bid_px=f64_bytes([100.0]), bid_qty=f64_bytes([1.0]), ask_px=f64_bytes([101.0]),
        ask_qty=f64_bytes([1.0]), known_low=100.0, known_high=101.0,
    ))


async def publish(bus, *items: tuple[str, int] | bytes) -> list[int]:
    """Publish depth messages (``(symbol, update id)``) or raw payloads; return their stream seqs."""
    seqs = []
    for item in items:
        symbol, payload = (BTC, item) if isinstance(item, bytes) else (item[0], depth(*item))
        ack = await bus.js.publish(bus.subjects.md_depth("binance", symbol), payload)
        seqs.append(ack.seq)
    return seqs


async def consume_all(isolated, target: Applied, n: int) -> None:
    """Run a probe until it applied ``n`` messages in all, then drain it."""
    async with running(probe(isolated, target)):

        async def done() -> bool:
            return sum(map(len, target.ids.values())) >= n

        await wait_for(done, within_s=30)


async def start_until_failed_or_ready(service: Service) -> None:
    """Start ``service``; once start-up failed (raised here) or it is ready, drain it."""
    async with running(service) as task:

        async def failed_or_ready() -> bool:
            return task.done() or await asyncio.to_thread(readyz, service.http_port)

        await wait_for(failed_or_ready, within_s=30)


def store(isolated, service_name: str = "probe-stable") -> CheckpointStore:
    return CheckpointStore.connect(isolated.urls.redis, isolated.prefix, service_name)


async def test_each_symbol_is_replayed_from_its_own_checkpoint_and_dead_letters_stay_out(bus, isolated):
    seqs = await publish(bus, (BTC, 1), (ETH, 1), (BTC, 2), (ETH, 2), b"\xc1 garbage", (BTC, 3), (ETH, 3),
                         (BTC, 4), (ETH, 4))
    await consume_all(isolated, Applied(), 8)
    assert await subject_count(bus, "DLQ", bus.subjects.dlq("probe")) == 1
    # the checkpoint a crash could leave: BTC saved after its 1st message, ETH after its 3rd
    ck = store(isolated)
    await ck.save("MD", seqs[0], {BTC: msgspec.msgpack.encode([1])})
    await ck.save("MD", seqs[6], {ETH: msgspec.msgpack.encode([1, 2, 3])})
    await ck.close()

    restored = Applied()
    async with running(probe(isolated, restored)):
        await publish(bus, (BTC, 5), (ETH, 5))

        async def caught_up() -> bool:
            return restored.ids.get(BTC, [])[-1:] == [5] and restored.ids.get(ETH, [])[-1:] == [5]

        await wait_for(caught_up, within_s=30)
    assert restored.ids == {BTC: [1, 2, 3, 4, 5], ETH: [1, 2, 3, 4, 5]}


async def test_a_state_in_another_format_is_rebuilt_from_the_stream_beside_restored_ones(bus, isolated):
    await publish(bus, (BTC, 1), (BTC, 2), (ETH, 1))
    await consume_all(isolated, Applied(), 3)
    ck = store(isolated)
    await ck.save("MD", 3, {BTC: b"format 0", ETH: msgspec.msgpack.encode([1])})
    await ck.close()

    rebuilt = Applied()
    async with running(probe(isolated, rebuilt)):
        await publish(bus, (BTC, 3))

        async def caught_up() -> bool:
            return rebuilt.ids.get(BTC, [])[-1:] == [3]

        await wait_for(caught_up, within_s=30)
    assert rebuilt.ids == {BTC: [1, 2, 3], ETH: [1]}  # BTC from the stream, ETH from its checkpoint


async def test_a_garbled_checkpoint_stops_start_up(bus, isolated):
    await publish(bus, (BTC, 1))
    await consume_all(isolated, Applied(), 1)
    ck = store(isolated)
    await ck.r.set(f"{ck.base}:MD:{BTC}", b"\xc1 not a checkpoint")
    await ck.close()
    late = Applied()
    with pytest.raises(msgspec.DecodeError):  # never consume on a state that could not be read
        await start_until_failed_or_ready(probe(isolated, late))
    assert late.ids == {}


async def test_after_a_purge_the_state_holds_what_the_stream_still_has(bus, isolated):
    """Purged messages past the checkpoint cannot be replayed: they are missing from the state
    (an operator's purge loses them, by definition), start-up goes on, nothing is doubled, and
    new messages apply on top."""
    seqs = await publish(bus, (BTC, 1), (BTC, 2), (ETH, 1))
    await consume_all(isolated, Applied(), 3)
    ck = store(isolated)
    await ck.save("MD", seqs[0], {BTC: msgspec.msgpack.encode([1])})  # a crash right after BTC 1
    await ck.r.delete(f"{ck.base}:MD:{ETH}")
    await ck.close()
    await bus.js.purge_stream(bus.subjects.stream("MD"), seq=seqs[2])  # BTC 1 and 2 gone

    after = Applied()
    async with running(probe(isolated, after)):
        await publish(bus, (BTC, 3), (ETH, 2))

        async def caught_up() -> bool:
            return after.ids.get(BTC, [])[-1:] == [3] and after.ids.get(ETH, [])[-1:] == [2]

        await wait_for(caught_up, within_s=30)
    assert after.ids == {BTC: [1, 3], ETH: [1, 2]}

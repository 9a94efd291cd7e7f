"""The runtime's retry path on real JetStream, with a service built in-process around handlers
that fail on purpose: a failing handler's message is nak'ed with a growing delay and handled
when the handler recovers; one that keeps failing is dead-lettered after ``max_deliver``
deliveries ("handler failed"); a message whose symbol is not its subject's never reaches the
handler. Every outcome is counted on /metrics, and the service keeps consuming throughout."""

from __future__ import annotations

import time
from collections import defaultdict

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from depthflow.common.codec import encode
from depthflow.common.config import RuntimeConfig
from depthflow.common.messages import DeadLetter, DepthSnapshot, f64_bytes
from depthflow.common.runtime import Delivery, Output, Service
from tests.conftest import read_all, subject_count, wait_for
from tests.integration.inprocess import running

SYM = "BTCFDUSD"


def depth(update_id: int, symbol: str = SYM) -> DepthSnapshot:
    now = time.time_ns()
    return DepthSnapshot(
        symbol=symbol, venue="binance", ts_event=now, ts_init=now, origin_ts=now, last_update_id=update_id,
        bid_px=f64_bytes([100.0]), bid_qty=f64_bytes([1.0]), ask_px=f64_bytes([101.0]),
        ask_qty=f64_bytes([1.0]), known_low=100.0, known_high=101.0,
    )


async def outcomes(port: int) -> dict[str, float]:
    """``outcome -> count`` of the probe's input messages, as /metrics serves them."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    out: dict[str, float] = defaultdict(float)
    for fam in text_string_to_metric_families(text):
        if fam.name == "depthflow_probe_messages":
            for smp in fam.samples:
                if smp.name.endswith("_total"):
                    out[smp.labels["outcome"]] += smp.value
    return dict(out)


async def test_retry_with_backoff_then_dead_letter_after_max_deliver(bus, isolated) -> None:
    rt = RuntimeConfig(prefix=isolated.prefix, symbols=[SYM], nats_url=isolated.urls.nats, max_deliver=3,
                       ack_wait_s=30)
    service = Service("probe", rt)
    deliveries: dict[int, list[tuple[int, float]]] = defaultdict(list)  # update id -> (n, when)
    handled: list[int] = []

    async def handler(msg: DepthSnapshot, d: Delivery) -> list[Output]:
        deliveries[msg.last_update_id].append((d.num_delivered, time.monotonic()))
        if msg.last_update_id == 1 and d.num_delivered < 3:
            raise RuntimeError("flaky")  # recovers at the third delivery
        if msg.last_update_id == 2:
            raise RuntimeError("boom")  # never recovers
        handled.append(msg.last_update_id)
        return []

    service.consume("MD", service.subjects.md_depth(), DepthSnapshot, handler, "depth")
    subject = bus.subjects.md_depth("binance", SYM)
    async with running(service):
        for uid in (1, 2):
            await bus.js.publish(subject, encode(depth(uid)))
        await bus.js.publish(subject, encode(depth(3, symbol="ETHFDUSD")))  # on BTC's subject
        await bus.js.publish(subject, encode(depth(4)))

        async def settled() -> bool:
            return 1 in handled and await subject_count(bus, "DLQ", bus.subjects.dlq("probe")) >= 2

        await wait_for(settled, within_s=60)
        assert sorted(handled) == [1, 4]  # the good one after the broken ones too
        assert [n for n, _ in deliveries[1]] == [1, 2, 3]
        (_, t1), (_, t2), (_, t3) = deliveries[1]
        assert t2 - t1 >= 0.2  # nak'ed with a delay of 0.1 s x 2^1, then 0.1 s x 2^2
        assert t3 - t2 >= 0.4
        assert [n for n, _ in deliveries[2]] == [1, 2, 3]  # max_deliver, not one more
        assert 3 not in deliveries, "a mismatched symbol reached the handler"

        dlq = await read_all(bus, "DLQ", bus.subjects.dlq("probe"), DeadLetter)
        letters = {m.stream_seq: m for _, m in dlq}
        assert len(letters) == 2
        gave_up, mismatch = (letters[k] for k in sorted(letters))
        assert gave_up.reason == "handler failed 3 times: RuntimeError('boom')"
        assert mismatch.reason == f"symbol 'ETHFDUSD' does not match subject '{subject}'"
        assert all(d.service == "probe" and d.subject == subject for d in letters.values())
        assert await outcomes(service.http_port) == {"ok": 2, "retry": 4, "dead_letter": 2}

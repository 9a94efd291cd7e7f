"""Whether every stage has caught up: no durable consumer of the namespace has work left.

Why: a replay ends, but the messages it published are still on their way through aggregator,
peaks, ai-fusion and risk. `depthflow up --replay` without a duration stops once the collector
has finished *and* the pipeline is drained, so a replay run ends by itself with complete counts
instead of running until Ctrl-C or cutting the last stages short.
"""

from __future__ import annotations

import asyncio

from depthflow.common.bus import Bus
from depthflow.common.subjects import STREAM_DOMAINS


async def pending_work(nats_url: str, prefix: str) -> int:
    """Messages not yet delivered plus delivered but unacknowledged, over every durable consumer
    of every stream (dead letters have no consumer and count nothing)."""
    bus = await Bus.connect(nats_url, prefix, name="depthflow-ctl-drain", within_s=5.0)
    try:
        total = 0
        for name in STREAM_DOMAINS:
            for info in await bus.js.consumers_info(bus.subjects.stream(name)):
                total += (info.num_pending or 0) + (info.num_ack_pending or 0)
        return total
    finally:
        await bus.close()


def drained(nats_url: str, prefix: str) -> bool:
    """True when no consumer has work left; False too when the bus cannot be asked."""
    try:
        return asyncio.run(pending_work(nats_url, prefix)) == 0
    except Exception:
        return False

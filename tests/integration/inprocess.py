"""Run a :class:`Service` built in the test (handlers written to fail or to record) in the test's
event loop, against the test's real servers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from depthflow.common.runtime import Service


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``service`` for the block, then stop it and wait for its drain (checkpoint saved)."""
    task = asyncio.create_task(service.run())
    try:
        yield task
    finally:
        service.stop()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):  # run() took them over in this loop
                loop.remove_signal_handler(sig)

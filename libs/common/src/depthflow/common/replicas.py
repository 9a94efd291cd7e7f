"""Replicas of one lane (ARCHITECTURE §5): presence with a heartbeat, and the rebalance.

Every replica of a service lane (``RuntimeConfig.replica``, unique within the lane) reads the
whole input stream with its own durable (:func:`~depthflow.common.routing.durable_name`) and
handles the symbols that :func:`~depthflow.common.routing.rendezvous` gives it among the lane's
replica set of the route assignment in force; it acks and skips the rest, as a lane does
another lane's symbols.

**Presence.** Each replica puts ``<service>.live.<lane>.<replica>`` in the ``routes`` bucket
every ``heartbeat_s`` (a counter: only the change matters, so no clocks are compared) and
deletes it when it stops. A replica whose key has not changed for ``dead_after_s`` of the
observer's monotonic clock is dead. Why not a per-key TTL: the bucket holds the routes too,
which must never expire, and per-message TTLs need a bucket created for them.

**Rebalance.** The lowest live replica id of the lane (the leader; any replica once the others
are gone) compares the live set with the route's replica set of its lane and, when they
differ, runs :func:`~depthflow.common.routing.switch` with the new set: the same pause, fence,
compare-and-set, confirmations and hand-offs as a lane switch. A replica observes for
``dead_after_s`` before it decides anything, so a fresh leader does not take slow ones for dead.
The switch deletes the durables of replicas taken out of the set, so one thought dead that
wakes up cannot fetch with its stale route; it notices its durable gone and exits (crash-only),
and comes back as a new member reading from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import nats.errors
from nats.js.errors import NotFoundError

from depthflow.common.bus import FETCH_ERRORS, Bus
from depthflow.common.routing import (
    DEFAULT_REPLICAS,
    RouteConflict,
    RouteStore,
    SwitchFailed,
    durable_name,
    switch,
)

log = logging.getLogger("depthflow.replicas")
#: What a beat waits out (the bus away, the route unreadable): tried again at the next beat.
_BEAT_ERRORS: tuple[type[BaseException], ...] = (ValueError, *FETCH_ERRORS)


class TakenOut(RuntimeError):
    """This replica's durable was deleted by a rebalance (it was thought dead): exit."""


def presence_key(service: str, lane: str, replica: str) -> str:
    return f"{service}.live.{lane}.{replica}"


class Membership:
    """One replica's heartbeat, its view of the lane's live replicas, and its rebalances."""

    def __init__(self, bus: Bus, store: RouteStore, lane: str, replica: str, streams: list[str],
                 heartbeat_s: float = 1.0, dead_after_s: float = 5.0) -> None:
        self.bus = bus
        self.store = store
        self.service = store.service
        self.lane = lane
        self.replica = replica
        self.streams = streams  # input streams (full names) holding this replica's durable
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self._seen: dict[str, tuple[int, float]] = {}  # replica -> (key revision, when it changed)
        self._present: dict[str, int] = {}  # replica -> its key's last revision (from the watch)
        self._watcher: Any = None

    @property
    def key(self) -> str:
        return presence_key(self.service, self.lane, self.replica)

    async def run(self) -> None:
        """Beat and watch until cancelled; raise :class:`TakenOut` when this replica's durable
        is gone. The beat runs on its own: a rebalance waiting for confirmations must not make
        its leader look dead."""
        beating = asyncio.create_task(self._beat(), name="heartbeat")
        try:
            started = time.monotonic()
            while not beating.done():
                try:
                    live = await self.live()
                    if time.monotonic() - started >= self.dead_after_s and min(live) == self.replica:
                        await self._rebalance(live)
                except _BEAT_ERRORS as exc:  # bus away, route unreadable: at the next beat
                    log.warning("replica rebalance failed", extra={"error": repr(exc)})
                await asyncio.wait([beating], timeout=self.heartbeat_s)
            beating.result()  # TakenOut
        finally:
            beating.cancel()
            if self._watcher is not None:
                with contextlib.suppress(Exception):
                    await self._watcher.stop()

    async def _beat(self) -> None:
        beat = 0
        while True:
            try:
                await self.store.kv.put(self.key, str(beat).encode())
                beat += 1
                await self._check_durable()
            except _BEAT_ERRORS as exc:
                log.warning("replica heartbeat failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.heartbeat_s)

    async def leave(self) -> None:
        """Delete this replica's presence key (a drain): the leader rebalances without it."""
        with contextlib.suppress(Exception):
            await self.store.kv.delete(self.key)

    async def live(self) -> list[str]:
        """Return the lane's replicas whose key changed within ``dead_after_s``, this one too.

        The keys come from a watch kept open (a listing would create a consumer each time)."""
        prefix = presence_key(self.service, self.lane, "")
        if self._watcher is None:
            self._watcher = await self.store.kv.watch(f"{prefix}*")
            self._present.clear()
        now = time.monotonic()
        try:
            while True:
                entry = await self._watcher.updates(timeout=0.05)
                if entry is None:  # the end of the initial values
                    continue
                replica = entry.key[len(prefix):]
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    self._present.pop(replica, None)
                else:
                    self._present[replica] = entry.revision or 0
        except nats.errors.TimeoutError:
            pass
        except Exception:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
            self._watcher = None
            raise
        for replica, rev in self._present.items():
            if replica not in self._seen:
                # alive only once seen beating: a stale key of a dead one never changes
                self._seen[replica] = (rev, -float("inf"))
            elif self._seen[replica][0] != rev:
                self._seen[replica] = (rev, now)
        self._seen = {r: v for r, v in self._seen.items() if r in self._present}
        alive = {r for r, (_, t) in self._seen.items() if now - t < self.dead_after_s}
        return sorted(alive | {self.replica})

    async def _rebalance(self, live: list[str]) -> None:
        route, _ = await self.store.read()
        current = sorted(route.history[-1].replicas_of(self.lane) if route and route.history
                         else DEFAULT_REPLICAS)
        if current == live:
            return
        log.info("rebalancing", extra={"lane": self.lane, "from": current, "to": live})
        try:
            # every lane that owns symbols confirms too: the route written carries their moves
            # (one an operator's switch still waits for, say) as well as this lane's replicas
            owning = {self.lane, *(route.current().values() if route else ())}
            await switch(self.bus, self.service, {}, lanes=sorted(owning),
                         replicas={self.lane: live}, confirm_within_s=3 * self.dead_after_s,
                         pause_s=3 * self.dead_after_s + 60)
        except (SwitchFailed, RouteConflict) as exc:
            log.warning("rebalance not done; tried again", extra={"error": str(exc)})
            return
        for replica in set(current) - set(live):  # its key would outlive it
            with contextlib.suppress(Exception):
                await self.store.kv.delete(presence_key(self.service, self.lane, replica))

    async def _check_durable(self) -> None:
        durable = durable_name(self.service, self.lane, self.replica)
        for stream in self.streams:
            try:
                await self.bus.js.consumer_info(stream, durable)
            except NotFoundError:
                raise TakenOut(f"{durable} on {stream} was deleted: this replica was taken out "
                               "of its lane (thought dead); restarting clean") from None

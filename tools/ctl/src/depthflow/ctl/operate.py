"""The supervisor's side of lanes and replicas, one :meth:`LaneOperator.tick` per loop turn.

Each turn: when the topology file changed (a ``depthflow scale`` or ``canary`` command wrote
it), make the processes match it; read the per-lane counters of the services running lanes;
and when a canary breaches its guard, roll it back (symbols to stable at a fence, canary
stopped and retired) and say why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from depthflow.common.bus import Bus
from depthflow.ctl.canary import Failed, Refused, StackDeployer, deploy_now, rollback, route
from depthflow.ctl.guard import CanaryGuard, breaches
from depthflow.ctl.lanemetrics import LaneLedger
from depthflow.ctl.lanes import on_bus
from depthflow.ctl.stack import ServiceStack
from depthflow.ctl.topology import Lane, Shape, TopologyFile

T = TypeVar("T")


class LaneOperator:
    """Keeps a running stack's lanes and replicas as the topology says, and guards canaries."""

    def __init__(self, stack: ServiceStack, state: Path, nats_url: str, prefix: str,
                 say: Callable[[str], None], guard: CanaryGuard | None = None,
                 every_s: float = 2.0) -> None:
        self.stack, self.nats_url, self.prefix, self.say = stack, nats_url, prefix, say
        self.file = TopologyFile(state)
        self.guard = guard or CanaryGuard()
        self.ledger = LaneLedger()
        self.every_s = every_s
        self._applied = -1.0
        self._next_read = 0.0

    def _run(self, fn: Callable[[Bus], Awaitable[T]]) -> T:
        return on_bus(self.nats_url, self.prefix, fn, name="depthflow-supervisor")

    def start_canary(self, service: str, symbols: list[str], env: dict[str, str]) -> None:
        """Run a canary of ``service`` with ``env`` and route ``symbols`` to it (``up --canary``)."""
        with self.file.change() as box:
            shape = box[0].shape(service)
            box[0] = box[0].with_shape(service, Shape(stable=shape.stable, canary=Lane(env=env)))
        self.apply()
        if symbols:
            fences = self._run(lambda bus: route(bus, self._deployer(bus), service, symbols, symbols))
            self.say(f"{service}: {', '.join(symbols)} routed to the canary at fences {fences}")

    def rollback(self, service: str) -> list[str]:
        return self._run(lambda bus: rollback(bus, self._deployer(bus), service, self.say))

    def _deployer(self, bus: Bus) -> StackDeployer:
        return StackDeployer(bus, self.stack, self.file, self.say, self.ledger.observe_one)

    def apply(self) -> None:
        """Make the processes match the topology file now (raises Failed if they cannot run),
        and say so in the file's answer (what a command waits for); a failed try is not made
        again until the file changes."""
        stamp = self.file.stamp()
        topology = self.file.read()
        try:
            self._run(lambda bus: deploy_now(bus, self.stack, topology, self.say,
                                             self.ledger.observe_one))
        except (Failed, OSError, ValueError) as exc:
            self._applied = stamp
            self.file.mark_applied(stamp, str(exc))
            raise
        self._applied = stamp
        self.file.mark_applied(stamp)

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.file.stamp() != self._applied:
            try:
                self.apply()
            except (Failed, OSError, ValueError) as exc:
                self.say(f"topology not applied: {exc}")
        if now < self._next_read:
            return
        self._next_read = now + self.every_s
        self.ledger.observe(self.stack.procs, now)
        topology = self.file.read()
        for service, why in breaches(self.guard, self.ledger).items():
            if topology.shape(service).canary is None:
                continue
            self.say(f"{service}: canary rolled back automatically: {why}")
            try:
                self.rollback(service)
            except (Failed, Refused) as exc:
                self.say(f"{service}: automatic rollback did not complete: {exc}")
            self.ledger.history.clear()  # the next canary is judged on its own window
            self._applied = self.file.stamp()
            self.file.mark_applied(self._applied)

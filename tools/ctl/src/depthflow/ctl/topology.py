"""The deployment shape of a local stack: how many stable replicas each service runs, with which
settings, and whether it runs a canary lane (with its own settings).

Why a file in the state folder: the operator commands (``depthflow scale``, ``canary``) run in
processes of their own, while the supervisor (``depthflow up``) owns the service processes. A
command writes the shape it wants; the supervisor reads it at each turn of its loop and makes
the processes match (:meth:`ServiceStack.reconcile`), as a Kubernetes Deployment per lane
would. The file outlives a run, so a canary that owns symbols in the route is started again by
the next ``up`` (a route naming a lane that no process runs would leave those symbols unhandled).
Which symbols a canary owns is not here: the ``routes`` KV entry is the one truth about that.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import msgspec

from depthflow.common.routing import CANARY, STABLE
from depthflow.ctl.control import SERVICES
from depthflow.ctl.stack import Want

#: At most this many replicas of one lane on a local stack (2 cores: more is only contention).
MAX_REPLICAS = 8
Replicas = Annotated[int, msgspec.Meta(ge=1, le=MAX_REPLICAS)]


class Lane(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The processes of one lane of a service: their count and their own settings."""

    replicas: Replicas = 1
    env: dict[str, str] = {}  # DEPTHFLOW_* settings of this lane's processes only


class Shape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    stable: Lane = Lane()
    canary: Lane | None = None


class Topology(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    services: dict[str, Shape] = {}

    def shape(self, service: str) -> Shape:
        return self.services.get(service, Shape())

    def with_shape(self, service: str, shape: Shape) -> Topology:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r} (services: {', '.join(SERVICES)})")
        return Topology(services={**self.services, service: shape})

    def wanted(self, services: tuple[str, ...] = SERVICES) -> list[Want]:
        """Every process to run: the stable replicas of each service, then its canary."""
        out = []
        for name in services:
            shape = self.shape(name)
            lanes = [(STABLE, shape.stable)] + ([(CANARY, shape.canary)] if shape.canary else [])
            for lane, spec in lanes:
                env = tuple(sorted(spec.env.items()))
                out += [Want(name, lane, str(r), env) for r in range(spec.replicas)]
        return out


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """What the supervisor last made of the topology file: the file's stamp it read, and why it
    could not run it (None: it runs it, the processes stopped and their lanes retired)."""

    stamp: float = 0.0
    error: str | None = None


class TopologyFile:
    """``<state>/topology.json``, read and changed under a lock (a command and the supervisor's
    automatic rollback may both change it), and ``topology.applied.json``, the supervisor's
    answer: a command waits for it, since the record of processes changes before a process
    stopped has drained and before its lane is retired on the bus."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "topology.json"
        self._lock = state_dir / "topology.lock"
        self._applied = state_dir / "topology.applied.json"

    def read(self) -> Topology:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=Topology)
        except FileNotFoundError:
            return Topology()

    def stamp(self) -> float:
        """When the file last changed (0: never written): the supervisor re-reads it then."""
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return 0.0

    @contextlib.contextmanager
    def change(self) -> Iterator[list[Topology]]:
        """Yield ``[topology]``; whatever the caller leaves in the list is written atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            box = [self.read()]
            yield box
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(msgspec.json.encode(box[0]))
            tmp.replace(self.path)

    def applied(self) -> Applied:
        try:
            return msgspec.json.decode(self._applied.read_bytes(), type=Applied)
        except FileNotFoundError:
            return Applied()

    def mark_applied(self, stamp: float, error: str | None = None) -> None:
        """Record that the file as of ``stamp`` is run (or, with ``error``, why it is not)."""
        tmp = self._applied.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(Applied(stamp=stamp, error=error)))
        tmp.replace(self._applied)

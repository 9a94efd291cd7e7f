"""One ``depthflow up`` per state folder, and a stop that happens exactly once.

Why a lock held by a live process, not a pid file alone: a pid file outlives a SIGKILLed run and
its pid can be reused, so "is it still running?" needs guessing. An ``flock`` on
``<state>/up.lock`` is released by the kernel when the holder dies, however it dies, so a second
``up`` is refused exactly while the first one lives, and a dead run's record is simply stale.
``<state>/supervisor.json`` next to it tells ``down`` and ``status`` which pid to talk to and
whether start-up has finished (a detached ``up`` waits for that).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any


class RunLock:
    """The state folder's run lock and the record of the process holding it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "up.lock"
        self.record = state_dir / "supervisor.json"
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock for this process (False if another live process holds it)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._fh = fh
        self._write({"pid": os.getpid(), "ready": False, "started_at": time.time()})
        return True

    def mark_ready(self, **facts: Any) -> None:
        """Say that servers and services are up (what a detached ``up`` waits for), with facts
        the operator commands need (the run's symbols)."""
        self._write({**self.read(), **facts, "ready": True})

    def release(self) -> None:
        if self._fh is None:
            return
        self.record.unlink(missing_ok=True)
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    def held_by_other(self) -> bool:
        """Whether another live process holds the lock right now."""
        if self._fh is not None or not self.path.exists():
            return False
        return not self.acquire_probe()

    def acquire_probe(self) -> bool:
        """Try the lock and let it go at once: True when nobody holds it."""
        with self.path.open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
        return True

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def holder_pid(self) -> int | None:
        """The pid of the live ``up`` holding the lock, or None (a stale record is removed)."""
        if not self.held_by_other():
            if self._fh is None:
                self.record.unlink(missing_ok=True)
            return None
        pid = self.read().get("pid")
        return pid if isinstance(pid, int) else None

    def wait_free(self, timeout: float) -> bool:
        """Wait until nobody holds the lock (the holder has finished stopping)."""
        deadline = time.monotonic() + timeout
        while self.held_by_other():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.record)


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP ask for one stop; every later signal is ignored.

    Why not ``KeyboardInterrupt``: it is raised wherever the main thread happens to be (inside
    ``stack.stop()`` even, leaving half the services running). A flag is read only where the
    supervisor is ready to act on it, and a second Ctrl-C cannot interrupt the stop in progress.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: str | None = None

    def install(self) -> StopSignals:
        for sig in self.SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def __call__(self) -> bool:
        return self.received is not None


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has ended (a zombie counts as ended: it runs nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)

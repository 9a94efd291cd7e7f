"""Run the five services as separate processes against one set of servers.

Why processes, not tasks: production runs each service in its own pod; running them as separate
processes locally exercises the same boundaries (only the bus between them), so a demo or an
end-to-end test proves the deployment shape, not a shortcut.

Like Kubernetes, the stack restarts a service that exits unexpectedly (:meth:`ServiceStack.
supervise`), after a back-off that doubles per consecutive failure up to a cap and starts over
once the service has run for a while, so a crash loop neither spins nor gives up. A collector
that finished its source (exit 0) is done, not crashed.

A service may run as several processes: replicas of its stable lane (``DEPTHFLOW_REPLICA``) and
a canary lane (``DEPTHFLOW_LANE``), each with its own settings. :meth:`ServiceStack.reconcile`
makes the running processes what a :class:`Want` list says (the supervisor derives it from the
state folder's topology, see ``topology.py``), as a Kubernetes controller would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from depthflow.common.routing import STABLE
from depthflow.ctl.control import SERVICES
from depthflow.devstack import ServerUrls, free_port


def process_key(name: str, lane: str = STABLE, replica: str = "0") -> str:
    """A process's name in records, logs and exit codes: the service's own for its first stable
    replica (as before lanes), else ``<service>.<lane>.<replica>``."""
    return name if (lane, replica) == (STABLE, "0") else f"{name}.{lane}.{replica}"


@dataclass(frozen=True)
class Want:
    """One process the supervisor should run: a replica of a service's lane, with its settings."""

    name: str
    lane: str = STABLE
    replica: str = "0"
    env: tuple[tuple[str, str], ...] = ()  # this process's own DEPTHFLOW_* settings, sorted

    @property
    def key(self) -> str:
        return process_key(self.name, self.lane, self.replica)


@dataclass
class ServiceProcess:
    name: str
    pid: int
    port: int
    log_path: Path
    lane: str = STABLE
    replica: str = "0"
    env: tuple[tuple[str, str], ...] = ()
    ready: bool = False
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0
    failures: int = 0  # consecutive exits, for the back-off; 0 again after a stable run
    restart_at: float | None = None  # monotonic time of a pending restart
    done: bool = False  # finished on purpose (a collector at the end of its source)

    @property
    def key(self) -> str:
        return process_key(self.name, self.lane, self.replica)

    @property
    def want(self) -> Want:
        return Want(self.name, self.lane, self.replica, self.env)


class StartInterrupted(RuntimeError):
    """A stop was asked for while services were starting."""


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``base * 2**(failures-1)``, at most ``cap``; reset after ``stable_s`` up."""

    base_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))


def module_of(service: str) -> str:
    return f"depthflow.{service.replace('-', '_')}"


class ServiceStack:
    """Start, watch and stop the service processes; their pids live in ``state_dir``."""

    def __init__(self, state_dir: Path, backoff: Backoff | None = None) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.record = state_dir / "services.json"
        self.procs: list[ServiceProcess] = []
        self.exit_codes: dict[str, int] = {}
        self.backoff = backoff or Backoff()
        self._env: dict[str, str] = {}

    def start(
        self,
        urls: ServerUrls,
        env: Mapping[str, str],
        on_progress: Callable[[str], None] = lambda _: None,
        services: tuple[str, ...] = SERVICES,
        ready_timeout: float = 60.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> list[ServiceProcess]:
        """Start ``services`` (consumers first, the collector last) and wait until each is ready.

        Raises :class:`StartInterrupted` as soon as ``should_stop()`` (a signal arrived); what
        was started is in :attr:`procs` for :meth:`stop`.
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        self._env = {**os.environ, **urls.as_env(), **env}
        order = [s for s in services if s != "collector"] + [s for s in services if s == "collector"]
        for name in order:
            if should_stop():
                raise StartInterrupted(f"stop asked for before {name} started")
            self._start_one(Want(name), ready_timeout, should_stop, on_progress)
        return self.procs

    def _start_one(self, want: Want, ready_timeout: float, should_stop: Callable[[], bool],
                   on_progress: Callable[[str], None]) -> ServiceProcess:
        sp = self._spawn(want, free_port())
        self.procs.append(sp)
        self._save()
        on_progress(f"starting {sp.key} (pid {sp.pid}, http :{sp.port})")
        self._wait_ready(sp, ready_timeout, should_stop)
        sp.ready = True
        self._save()
        on_progress(f"{sp.key} ready")
        return sp

    def reconcile(
        self,
        wanted: list[Want],
        on_progress: Callable[[str], None] = lambda _: None,
        ready_timeout: float = 60.0,
        before_stop: Callable[[ServiceProcess], None] = lambda _: None,
    ) -> list[ServiceProcess]:
        """Make the processes of the services named in ``wanted`` the ``wanted`` ones: stop
        (draining) every one not wanted or wanted with other settings, then start the missing
        ones, each until ready.

        Return the processes stopped (the caller retires what left the bus: a lane's durables,
        a replica's route confirmations). Raises ``RuntimeError`` when a process does not
        become ready; what was started stays in :attr:`procs` (supervised as any other).
        ``before_stop`` sees each process before it is stopped (its last metrics reading).
        """
        want = {w.key: w for w in wanted}
        managed = {w.name for w in wanted}  # another service's processes are left alone
        stopped = [p for p in self.procs
                   if p.name in managed and want.get(p.key) != p.want and not p.done]
        for p in stopped:
            self.procs.remove(p)
            self._save()
            if p.restart_at is None:
                before_stop(p)
                _signal(p.pid, signal.SIGTERM)
                code = _wait(p.pid, 30.0)
                if code is None:
                    _signal(p.pid, signal.SIGKILL)
                    code = _wait(p.pid, 5.0)
                on_progress(f"{p.key} stopped (pid {p.pid}, exit {code})")
            self.exit_codes.pop(p.key, None)
        have = {p.key for p in self.procs}
        for w in wanted:
            if w.key not in have:
                self._start_one(w, ready_timeout, lambda: False, on_progress)
        return stopped

    def _spawn(self, want: Want, port: int) -> ServiceProcess:
        name = want.name
        child_env = {**self._env, f"DEPTHFLOW_{name.upper().replace('-', '_')}_RUNTIME__HTTP_PORT": str(port)}
        if want.lane != STABLE:  # set only when not the default: a caller's own setting stays
            child_env["DEPTHFLOW_LANE"] = want.lane
        if want.replica != "0":
            child_env["DEPTHFLOW_REPLICA"] = want.replica
        child_env.update(want.env)
        log_path = self.logs / f"{want.key}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module_of(name)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,
            )
        return ServiceProcess(name, proc.pid, port, log_path, want.lane, want.replica, want.env)

    def _wait_ready(self, sp: ServiceProcess, timeout: float, should_stop: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = _reap(sp.pid)
            if code is not None:
                self.exit_codes[sp.key] = code
                if sp.name == "collector" and code == 0:
                    sp.done = True  # a short replay can end before it is seen ready: done, not failed
                    return
                tail = sp.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{sp.key} exited with {code}:\n{tail}")
            if should_stop():
                raise StartInterrupted(f"stop asked for while {sp.name} was starting")
            if readyz(sp.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{sp.key} not ready after {timeout:.0f}s; see {sp.log_path}")

    def source_done(self) -> bool:
        """Whether the collector finished its source (a replay reached its end)."""
        return any(p.name == "collector" and p.done for p in self.procs)

    def supervise(self, now: float | None = None) -> list[str]:
        """Reap exited services and restart them after their back-off; return what happened.

        Call it periodically. A service that exits, whatever the code, is restarted (a
        Kubernetes Deployment would too); only a collector's exit 0 means its source is done.
        """
        now = time.monotonic() if now is None else now
        events: list[str] = []
        for i, p in enumerate(self.procs):
            if p.done:
                continue
            if p.restart_at is None:
                code = _reap(p.pid)
                if code is None:
                    if p.failures and now - p.started >= self.backoff.stable_s:
                        p.failures = 0  # it ran long enough: the next crash starts the back-off over
                    continue
                self.exit_codes[p.key] = code
                if p.name == "collector" and code == 0:
                    p.done = True
                    events.append("the collector finished its source; the rest of the pipeline runs on")
                    continue
                p.failures += 1
                delay = self.backoff.delay(p.failures)
                p.restart_at = now + delay
                events.append(f"{p.key} (pid {p.pid}) exited with {code}; restarting in {delay:g}s"
                              f" (see {p.log_path})")
            elif now >= p.restart_at:
                fresh = self._spawn(p.want, p.port)
                fresh.restarts, fresh.failures = p.restarts + 1, p.failures
                self.procs[i] = fresh
                self.exit_codes.pop(p.key, None)
                self._save()
                events.append(f"{p.key} restarted (pid {fresh.pid}, restart #{fresh.restarts})")
        return events

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts per service so far (services never restarted are left out)."""
        return {p.key: p.restarts for p in self.procs if p.restarts}

    def _save(self) -> None:
        data = [{"name": p.name, "pid": p.pid, "port": p.port, "restarts": p.restarts, "lane": p.lane,
                 "replica": p.replica, "env": dict(p.env), "ready": p.ready} for p in self.procs]
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.record)

    def load(self) -> list[ServiceProcess]:
        """Read the record left by another ``depthflow`` process."""
        if not self.record.exists():
            return []
        self.procs = []
        for d in json.loads(self.record.read_text()):
            lane, replica = d.get("lane", STABLE), d.get("replica", "0")
            log = self.logs / f"{process_key(d['name'], lane, replica)}.log"
            self.procs.append(ServiceProcess(
                d["name"], d["pid"], d["port"], log, lane, replica,
                tuple(sorted(d.get("env", {}).items())), d.get("ready", False),
                restarts=d.get("restarts", 0)))
        return self.procs

    def running(self) -> list[ServiceProcess]:
        """Services of the record whose process still runs (by pid and command line)."""
        return [p for p in self.procs if _runs(p.pid, p.name)]

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM the collector and wait (the rest can then drain its output), then SIGTERM the
        others together and wait for all; SIGKILL whatever outlives ``timeout``.

        A service waiting for its restart is simply not restarted; its last exit code is kept.
        """
        codes: dict[str, int | None] = {}
        live = [p for p in self.procs if not p.done and p.restart_at is None]
        first = [p for p in live if p.name == "collector"]
        for batch in (first, [p for p in live if p.name != "collector"]):
            for p in batch:
                _signal(p.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for p in batch:
                codes[p.key] = _wait(p.pid, max(0.0, deadline - time.monotonic()))
                if codes[p.key] is None:
                    _signal(p.pid, signal.SIGKILL)
                    _wait(p.pid, 5.0)
        for p in self.procs:
            codes.setdefault(p.key, self.exit_codes.get(p.key))
        self.record.unlink(missing_ok=True)
        self.procs = []
        return codes

    def alive(self) -> dict[str, bool]:
        """Which services run; the exit code of one that ended is kept in ``exit_codes``."""
        out = {}
        for p in self.procs:
            code = _reap(p.pid)
            if code is not None:
                self.exit_codes.setdefault(p.key, code)
            out[p.key] = p.key not in self.exit_codes and process_exists(p.pid)
        return out


def readyz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _runs(pid: int, service: str) -> bool:
    """Whether ``pid`` is alive and still that service (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return process_exists(pid) and module_of(service).encode() in cmdline


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists (our own children are reaped by :func:`_reap` first)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> int | None:
    """The exit code of our child ``pid`` if it has ended, else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # not our child: poll for existence
            if not process_exists(pid):
                return 0
        time.sleep(0.05)
    return None

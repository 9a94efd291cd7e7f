"""Run the five services as separate processes against one set of servers.

Why processes, not tasks: production runs each service in its own pod; running them as separate
processes locally exercises the same boundaries (only the bus between them), so a demo or an
end-to-end test proves the deployment shape, not a shortcut.
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
from dataclasses import dataclass
from pathlib import Path

from depthflow.common.devstack import ServerUrls, free_port
from depthflow.ctl.control import SERVICES


@dataclass
class ServiceProcess:
    name: str
    pid: int
    port: int
    log_path: Path


def module_of(service: str) -> str:
    return f"depthflow.{service.replace('-', '_')}"


class ServiceStack:
    """Start, watch and stop the service processes; their pids live in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.record = state_dir / "services.json"
        self.procs: list[ServiceProcess] = []
        self.exit_codes: dict[str, int] = {}

    def start(
        self,
        urls: ServerUrls,
        env: Mapping[str, str],
        on_progress: Callable[[str], None] = lambda _: None,
        services: tuple[str, ...] = SERVICES,
        ready_timeout: float = 60.0,
    ) -> list[ServiceProcess]:
        """Start ``services`` (consumers first, the collector last) and wait until each is ready."""
        self.logs.mkdir(parents=True, exist_ok=True)
        order = [s for s in services if s != "collector"] + [s for s in services if s == "collector"]
        for name in order:
            port = free_port()
            child_env = {
                **os.environ,
                **urls.as_env(),
                **env,
                f"DEPTHFLOW_{name.upper().replace('-', '_')}_RUNTIME__HTTP_PORT": str(port),
            }
            log_path = self.logs / f"{name}.log"
            with open(log_path, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module_of(name)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=child_env,
                    start_new_session=True,
                )
            sp = ServiceProcess(name, proc.pid, port, log_path)
            self.procs.append(sp)
            self._save()
            on_progress(f"starting {name} (pid {proc.pid}, http :{port})")
            self._wait_ready(sp, proc, ready_timeout)
            on_progress(f"{name} ready")
        return self.procs

    def _wait_ready(self, sp: ServiceProcess, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = sp.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{sp.name} exited with {proc.returncode}:\n{tail}")
            if readyz(sp.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{sp.name} not ready after {timeout:.0f}s; see {sp.log_path}")

    def _save(self) -> None:
        data = [{"name": p.name, "pid": p.pid, "port": p.port} for p in self.procs]
        self.record.write_text(json.dumps(data))

    def load(self) -> list[ServiceProcess]:
        """Read the record left by another ``depthflow`` process."""
        if not self.record.exists():
            return []
        self.procs = [
            ServiceProcess(d["name"], d["pid"], d["port"], self.logs / f"{d['name']}.log")
            for d in json.loads(self.record.read_text())
        ]
        return self.procs

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every service (collector first, so the rest can drain its output) and wait."""
        procs = sorted(self.procs, key=lambda p: p.name != "collector")
        codes: dict[str, int | None] = {}
        for p in procs:
            _signal(p.pid, signal.SIGTERM)
            codes[p.name] = _wait(p.pid, timeout)
            if codes[p.name] is None:
                _signal(p.pid, signal.SIGKILL)
        self.record.unlink(missing_ok=True)
        self.procs = []
        return codes

    def alive(self) -> dict[str, bool]:
        """Which services run; the exit code of one that ended is kept in ``exit_codes``."""
        out = {}
        for p in self.procs:
            code = _reap(p.pid)
            if code is not None:
                self.exit_codes.setdefault(p.name, code)
            out[p.name] = p.name not in self.exit_codes and _exists(p.pid)
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


def _exists(pid: int) -> bool:
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
            if not _exists(pid):
                return 0
        time.sleep(0.05)
    return None

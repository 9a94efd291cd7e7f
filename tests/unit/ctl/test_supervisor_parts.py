"""The supervisor's parts without servers: the restart back-off, the run lock, the stop signals,
and restarts of real (tiny) child processes by :meth:`ServiceStack.supervise`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from depthflow.ctl.stack import Backoff, ServiceProcess, ServiceStack, Want
from depthflow.ctl.supervisor import RunLock, StopSignals


def test_backoff_doubles_up_to_its_cap() -> None:
    b = Backoff(base_s=1.0, cap_s=30.0)
    assert [b.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_lock_is_held_while_its_holder_lives_and_free_once_it_dies(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from depthflow.ctl.supervisor import RunLock;"
        "lock = RunLock(Path(sys.argv[1])); assert lock.acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = RunLock(tmp_path)
        assert lock.holder_pid() == holder.pid
        assert not lock.acquire()
    finally:
        holder.kill()
        holder.wait()
    # a SIGKILLed holder leaves its record behind: stale, cleaned up, and the lock is free
    assert lock.record.exists()
    assert lock.holder_pid() is None
    assert not lock.record.exists()
    assert lock.acquire()
    lock.release()


def test_first_signal_asks_for_a_stop_and_later_ones_are_ignored() -> None:
    previous = {s: signal.getsignal(s) for s in StopSignals.SIGNALS}
    try:
        stop = StopSignals().install()
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: the stop in progress goes on
        assert stop()
        assert stop.received == "SIGTERM"
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _child(code: str) -> ServiceProcess:
    proc = subprocess.Popen([sys.executable, "-c", code])
    return ServiceProcess("aggregator", proc.pid, 0, Path(os.devnull))


def test_a_crashed_service_is_restarted_after_its_backoff_and_a_finished_collector_is_not(
    tmp_path: Path, monkeypatch
) -> None:
    stack = ServiceStack(tmp_path, Backoff(base_s=5.0, cap_s=5.0, stable_s=60.0))
    spawned: list[str] = []

    def spawn(want: Want, port: int) -> ServiceProcess:
        spawned.append(want.key)
        return _child("import time; time.sleep(60)")

    monkeypatch.setattr(stack, "_spawn", spawn)
    crashed = _child("raise SystemExit(3)")
    collector = _child("raise SystemExit(0)")
    collector.name = "collector"
    stack.procs = [crashed, collector]
    os.waitid(os.P_PID, crashed.pid, os.WEXITED | os.WNOWAIT)
    os.waitid(os.P_PID, collector.pid, os.WEXITED | os.WNOWAIT)
    try:
        t0 = time.monotonic()
        events = stack.supervise(now=t0)
        assert any("aggregator" in e and "exited with 3" in e and "5s" in e for e in events), events
        assert any("collector finished" in e for e in events), events
        assert stack.supervise(now=t0 + 1) == []
        assert spawned == []
        events = stack.supervise(now=t0 + 5)
        assert spawned == ["aggregator"]
        assert "restart #1" in events[0]
        assert stack.restarts == {"aggregator": 1}
        assert stack.procs[0].pid != crashed.pid
        assert stack.procs[1].done
    finally:
        stack.stop(timeout=5)

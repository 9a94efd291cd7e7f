"""``depthflow up`` as an operator runs it, in a process of its own: a SIGKILLed service is
restarted and every snapshot still gives exactly one output per stage, and ``depthflow status``
then prints what the streams hold (per stage and symbol, the services running or STOPPED, the
restarts, the dead letters, the equity); a second ``up`` on the same state folder is refused;
Ctrl-C (SIGINT to the process group), SIGTERM and ``down`` after
``--detach`` leave no process behind, services and servers alike; a service that cannot reach
NATS says so within its bound, and a SIGTERM while it tries ends it at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from depthflow.common.messages import (
    BookBuckets,
    DeadLetter,
    DepthSnapshot,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    SignalFused,
    TradeBatch,
    TradeProfile,
    ZonesDetected,
)
from depthflow.ctl.supervisor import wait_gone
from depthflow.devstack import NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV, ServerUrls
from depthflow.devstack.testing.servers import Isolated
from tests.conftest import read_all, subject_count, wait_for

SYMBOLS = ["BTCFDUSD", "ETHFDUSD"]
URL_VARS = (NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV)


class Up:
    """A ``depthflow up`` process in its own process group (as a terminal would run it)."""

    def __init__(self, state: Path, prefix: str, args: list[str], urls: ServerUrls | None) -> None:
        self.state = state
        self.out = state.parent / f"{state.name}-up.log"
        env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
        env.update(urls.as_env() if urls else {})
        argv = [sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--prefix", prefix,
                "--symbols", ",".join(SYMBOLS), "up", *args]
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    async def wait_text(self, needle: str, within_s: float = 120.0) -> None:
        async def seen() -> bool:
            if self.proc.poll() is not None and needle not in self.text():
                raise AssertionError(f"depthflow up exited with {self.proc.returncode}:\n{self.text()}")
            return needle in self.text()

        await wait_for(seen, within_s)

    def services(self) -> dict[str, int]:
        return {d["name"]: d["pid"] for d in json.loads((self.state / "services.json").read_text())}

    def server_pids(self) -> list[int]:
        record = json.loads((self.state / "servers" / "servers.json").read_text())
        return [int(s["pid"]) for s in record["servers"].values()]

    def finish(self, within_s: float = 180.0) -> int:
        return self.proc.wait(timeout=within_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def ups() -> Iterator[list[Up]]:
    """Every ``up`` a test starts; whatever is left running at the end is stopped for good."""
    started: list[Up] = []
    yield started
    for up in started:
        pids: list[int] = []
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids += up.services().values()
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids += up.server_pids()
        up.kill()
        _kill_alive(pids)


def _kill_alive(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Alive and not a zombie (a reaped or reparented-and-reaped process is gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _poll(condition: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {within_s}s"
        time.sleep(0.1)


def _depthflow(state: Path, prefix: str, *args: str, urls: ServerUrls | None = None,
               ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    env.update(urls.as_env() if urls else {})
    return subprocess.run([sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--prefix", prefix,
                           "--symbols", ",".join(SYMBOLS), *args],
                          capture_output=True, text=True, env=env, timeout=240, check=False)


SNAPSHOTS = 16
PIPELINE = [  # stream, subject builder, type: one output per snapshot at every stage
    ("MD", "md_depth", DepthSnapshot),
    ("AGG", "agg_book", BookBuckets),
    ("PEAKS", "peaks_zones", ZonesDetected),
    ("SIGNALS", "signal_fused", SignalFused),
    ("RISK", "risk_order", OrderApproved | OrderRejected),
]


async def assert_exactly_once(bus, snapshots: int | None = None, dead_letters: int = 0) -> None:
    """Every stage holds one output per snapshot, for the same market events, and no dead letter
    (but ``dead_letters`` the test made itself)."""
    s = bus.subjects
    for sym in SYMBOLS:
        origins = {}
        for stream, builder, type_ in PIPELINE:
            msgs = [m for _, m in await read_all(bus, stream, getattr(s, builder)("binance", sym), type_)]
            origins[builder] = sorted(m.origin_ts for m in msgs)
        first = origins["md_depth"]
        assert snapshots is None or len(first) == snapshots, (sym, len(first))
        assert len(set(first)) == len(first), sym
        assert all(o == first for o in origins.values()), (sym, {k: len(v) for k, v in origins.items()})
    assert await subject_count(bus, "DLQ", s.dlq()) == dead_letters


async def kill_and_see_restarted(up: Up, name: str) -> None:
    """SIGKILL service ``name`` of ``up`` and wait until the supervisor has a new one running."""
    victim = up.services()[name]
    os.kill(victim, signal.SIGKILL)

    async def restarted() -> bool:
        pid = up.services()[name]
        return pid != victim and _alive(pid)

    await wait_for(restarted, within_s=60)


async def test_a_killed_service_is_restarted_and_every_snapshot_still_flows_once(
    bus, isolated: Isolated, tmp_path: Path, ups: list[Up], monkeypatch
) -> None:
    monkeypatch.setenv("DEPTHFLOW_COLLECTOR_MAX_SNAPSHOTS", str(SNAPSHOTS))
    state = tmp_path / "state"
    up = Up(state, isolated.prefix, ["--speed", "2"], isolated.urls)
    ups.append(up)
    await up.wait_text("pipeline running")

    second = _depthflow(state, isolated.prefix, "up", urls=isolated.urls)
    assert second.returncode != 0
    assert "refused: depthflow is already running" in second.stdout

    s = bus.subjects

    async def books(n: int) -> bool:
        return await subject_count(bus, "AGG", s.agg_book()) >= n

    await wait_for(lambda: books(3), within_s=60)
    await kill_and_see_restarted(up, "aggregator")

    async def decided() -> bool:
        return await subject_count(bus, "RISK", s.risk_order()) >= SNAPSHOTS * len(SYMBOLS)

    await wait_for(decided, within_s=180)
    await up.wait_text("the collector finished its source")
    # one dead letter of the test's own (a symbol the summary does not show, so no count moves)
    await bus.js.publish(s.md_depth("binance", "XRPFDUSD"), b"\xc1 not msgpack")

    async def dead_lettered() -> bool:
        return await subject_count(bus, "DLQ", s.dlq()) >= 1

    await wait_for(dead_lettered, within_s=60)
    status = await asyncio.to_thread(_depthflow, state, isolated.prefix, "status", urls=isolated.urls)
    assert status.returncode == 0, status.stdout + status.stderr
    await assert_status_shows_what_the_streams_hold(status.stdout, bus, up, restarted={"aggregator": 1})
    children = list(up.services().values())
    os.kill(up.proc.pid, signal.SIGTERM)
    assert up.finish() == 0, up.text()
    final = json.loads(up.text().strip().splitlines()[-1])
    assert final["restarts"] == {"aggregator": 1}
    assert "collector restarted" not in up.text()
    assert not [p for p in children if _alive(p)]
    await assert_exactly_once(bus, SNAPSHOTS, dead_letters=1)


SHOWN_STAGES = [  # label in the printed line, stream, subject builder, type
    ("depth", "MD", "md_depth", DepthSnapshot),
    ("trades", "MD", "md_trade", TradeBatch),
    ("book", "AGG", "agg_book", BookBuckets),
    ("profile", "AGG", "agg_profile", TradeProfile),
    ("zones", "PEAKS", "peaks_zones", ZonesDetected),
    ("signals", "SIGNALS", "signal_fused", SignalFused),
]
SERVICES = ("collector", "aggregator", "peaks", "ai-fusion", "risk")
STARTING_CASH = 100_000.0  # risk's default: the equity shown before any fill


async def assert_status_shows_what_the_streams_hold(
    text: str, bus, up: Up, restarted: dict[str, int]
) -> None:
    """``depthflow status``'s printed text, read as an operator reads it, against the test's own
    reading of the streams (every message read back, not the streams' counters the summary
    uses) and what the test knows of the processes: the collector finished its source (so it
    is STOPPED), every other service runs, and ``restarted`` are the restarts it caused.

    Printed numbers are read back from the text: counts as integers, the equity to the cent,
    scores to the third decimal and the zones' prices to the symbol's precision."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("depthflow"))
    supervisor, *services = lines[:header]
    assert re.fullmatch(rf"\s+supervisor\s+running \(pid {up.proc.pid}\)", supervisor), text
    shown = {}
    for line in services:
        name, state, *rest = line.split()
        restarts = re.fullmatch(r"\((\d+) restarts?\)", " ".join(rest)) if rest else None
        assert not restarts or (restarts.group(0).endswith("s)") == (restarts.group(1) != "1")), line
        assert not rest or restarts, line
        shown[name] = (state, int(restarts.group(1)) if restarts else 0)
    pids = up.services()
    assert {n: _alive(pids[n]) for n in SERVICES} == {n: n != "collector" for n in SERVICES}
    assert shown == {n: ("STOPPED" if n == "collector" else "running", restarted.get(n, 0))
                     for n in SERVICES}, text

    s = bus.subjects
    letters = await read_all(bus, "DLQ", s.dlq(), DeadLetter)
    fills = [m for _, m in await read_all(bus, "RISK", s.risk_fill(), OrderFilled)]
    equity = fills[-1].equity_after if fills else STARTING_CASH
    top = re.fullmatch(r"depthflow — +\d+s +equity ([\d,]+\.\d\d) +dead letters (\d+)", lines[header])
    assert top, lines[header]
    assert abs(float(top.group(1).replace(",", "")) - equity) <= 0.005, (top.group(1), equity)
    assert int(top.group(2)) == len(letters) == 1
    label, _, listed = lines[header + 1].strip().partition(" ")
    assert label == "restarts", lines[header + 1]
    assert {k: int(v) for k, v in (item.split() for item in listed.split(","))} == restarted

    by_symbol: dict[str, list[str]] = {}
    for line in lines[header + 2:]:
        first = line.split()[0]
        if first in SYMBOLS:
            by_symbol[first] = [line]
        else:  # the zones and signal lines under a symbol's counts
            by_symbol[list(by_symbol)[-1]].append(line)
    assert list(by_symbol) == SYMBOLS, text
    for sym in SYMBOLS:
        counts_line, zones_line, signal_line = by_symbol[sym]
        words = counts_line.split()[1:]
        printed = dict(zip(words[::2], map(int, words[1::2]), strict=True))
        expected = {}
        last = {}
        for label, stream, builder, type_ in SHOWN_STAGES:
            msgs = [m for _, m in await read_all(bus, stream, getattr(s, builder)("binance", sym), type_)]
            expected[label] = len(msgs)
            last[label] = msgs[-1] if msgs else None
        decisions = [m for _, m in await read_all(bus, "RISK", s.risk_order("binance", sym),
                                                  OrderApproved | OrderRejected)]
        expected["orders"] = sum(isinstance(m, OrderApproved) for m in decisions)
        expected["fills"] = sum(f.symbol == sym for f in fills)
        # a FLAT signal asks for nothing: its rejection is not a refused order
        expected["rejected"] = sum(isinstance(m, OrderRejected) and m.reason != "signal_flat"
                                   for m in decisions)
        assert printed == expected, (sym, counts_line)
        assert expected["depth"] == SNAPSHOTS  # the test saw the run it made
        assert expected["trades"] > 0

        z = last["zones"]
        step = z.tick_size or z.bucket_size  # prices are shown with its decimals: off by half of it
        zw = zones_line.split()
        assert (zw[0], zw[2]) == ("mid", "POC"), zones_line
        assert abs(float(zw[1]) - z.mid) <= step / 2 + 1e-9, (zones_line, z.mid)
        assert abs(float(zw[3]) - z.poc) <= step / 2 + 1e-9, (zones_line, z.poc)
        sig = last["signals"]
        sw = signal_line.split()
        assert (sw[0], sw[1], sw[2], sw[4], sw[5]) == ("signal", sig.side, "score", "mode", sig.mode), \
            signal_line
        assert abs(float(sw[3]) - sig.score) <= 0.0005, (signal_line, sig.score)


@pytest.mark.slow
async def test_soak_every_service_killed_in_turn_and_every_snapshot_flows_once(
    bus, isolated: Isolated, tmp_path: Path, ups: list[Up]
) -> None:
    """Each service SIGKILLed twice while the market runs; afterwards every market event still
    has exactly one output at every stage (outputs of a restarted collector included)."""
    up = Up(tmp_path / "state", isolated.prefix, ["--speed", "1"], isolated.urls)
    ups.append(up)
    await up.wait_text("pipeline running")
    s = bus.subjects
    for _round in range(2):
        for name in ("aggregator", "peaks", "ai-fusion", "risk", "collector"):
            before = await subject_count(bus, "RISK", s.risk_order())
            await kill_and_see_restarted(up, name)

            async def progressed(before: int = before) -> bool:
                return await subject_count(bus, "RISK", s.risk_order()) > before

            await wait_for(progressed, within_s=120)
    os.kill(up.services()["collector"], signal.SIGTERM)  # exit 0: the source is done, no restart
    await up.wait_text("the collector finished its source")

    async def caught_up() -> bool:
        depth = await subject_count(bus, "MD", s.md_depth())
        return await subject_count(bus, "RISK", s.risk_order()) == depth

    await wait_for(caught_up, within_s=180)
    os.kill(up.proc.pid, signal.SIGTERM)
    assert up.finish() == 0, up.text()
    restarts = json.loads(up.text().strip().splitlines()[-1])["restarts"]
    assert restarts == dict.fromkeys(("aggregator", "peaks", "ai-fusion", "risk", "collector"), 2)
    await assert_exactly_once(bus)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "detach-down"])
async def test_a_stop_leaves_no_process_and_prints_the_summary(
    how: str, tmp_path: Path, ups: list[Up], monkeypatch
) -> None:
    """Embedded servers here (no URLs): they are the stop's last step and must go too."""
    state = tmp_path / "state"
    if how == "detach-down":
        done = _depthflow(state, "", "up", "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "running in the background" in done.stdout
        pids = list(json.loads((state / "services.json").read_text()))
        supervisor = json.loads((state / "supervisor.json").read_text())["pid"]
        up_pids = [supervisor]
        status = _depthflow(state, "", "status")
        assert f"supervisor  running (pid {supervisor})" in status.stdout, status.stdout + status.stderr
        refused = _depthflow(state, "", "up")
        assert refused.returncode != 0
        assert "refused" in refused.stdout
        servers = [int(s["pid"]) for s in
                   json.loads((state / "servers" / "servers.json").read_text())["servers"].values()]
        pids = [d["pid"] for d in pids] + servers + up_pids
        try:
            down = _depthflow(state, "", "down")
        finally:
            left = [pid for pid in pids if not wait_gone(pid, 5)]
            _kill_alive(left)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left
        log = (state / "logs" / "supervisor.log").read_text()
    else:
        up = Up(state, "", [], None)
        ups.append(up)
        await up.wait_text("pipeline running")
        pids = [*up.services().values(), *up.server_pids()]
        if how == "ctrl-c":  # a terminal signals the whole group; an impatient user does it thrice
            for _ in range(3):
                os.killpg(up.proc.pid, signal.SIGINT)
        else:
            os.kill(up.proc.pid, signal.SIGTERM)
            os.kill(up.proc.pid, signal.SIGTERM)
        assert up.finish() == 0, up.text()
        log = up.text()
    assert "final summary" in log
    assert "Traceback" not in log
    assert '"restarts": {}' in log.strip().splitlines()[-1]
    assert not [p for p in pids if _alive(p)]


async def test_a_killed_supervisor_leaves_services_that_refuse_a_new_up_until_down(
    isolated: Isolated, tmp_path: Path
) -> None:
    """SIGKILL gives the supervisor no chance to stop anything: its services run on (and still
    hold the consumers), so ``up`` is refused until ``down`` stops them; then ``up`` starts."""
    state = tmp_path / "state"
    done = _depthflow(state, isolated.prefix, "up", "--detach", urls=isolated.urls)
    assert done.returncode == 0, done.stdout + done.stderr
    supervisor = json.loads((state / "supervisor.json").read_text())["pid"]
    services = [d["pid"] for d in json.loads((state / "services.json").read_text())]
    try:
        os.kill(supervisor, signal.SIGKILL)
        assert wait_gone(supervisor, 10)
        refused = _depthflow(state, isolated.prefix, "up", urls=isolated.urls)
        assert refused.returncode != 0
        assert "services of an earlier run still run" in refused.stdout
        assert all(_alive(p) for p in services)
        down = _depthflow(state, isolated.prefix, "down", urls=isolated.urls)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not [p for p in services if not wait_gone(p, 5)]
        again = _depthflow(state, isolated.prefix, "up", "--detach", urls=isolated.urls)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "running in the background" in again.stdout
        services += [d["pid"] for d in json.loads((state / "services.json").read_text())]
        down = _depthflow(state, isolated.prefix, "down", urls=isolated.urls)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not [p for p in services if not wait_gone(p, 5)]
    finally:
        _kill_alive(services)


@pytest.mark.parametrize(("module", "want"), [
    ("peaks", "cannot reach NATS at nats://depthflow:***@127.0.0.1:1 (DEPTHFLOW_NATS_URL) within 3s"),
    ("risk", "cannot reach Postgres at postgresql://u:***@127.0.0.1:1/x (DEPTHFLOW_POSTGRES_URL) within 3s"),
])
def test_an_unreachable_server_fails_start_up_within_the_bound_naming_the_setting(
    module: str, want: str
) -> None:
    env = {**os.environ, NATS_URL_ENV: "nats://depthflow:hunter2@127.0.0.1:1",
           POSTGRES_URL_ENV: "postgresql://u:hunter2@127.0.0.1:1/x", REDIS_URL_ENV: "redis://127.0.0.1:1/0",
           "DEPTHFLOW_STARTUP_TIMEOUT_S": "3"}
    done = subprocess.run([sys.executable, "-m", f"depthflow.{module}"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode != 0
    assert want in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_sigterm_while_connecting_ends_start_up_at_once(tmp_path: Path) -> None:
    env = {**os.environ, NATS_URL_ENV: "nats://127.0.0.1:1", POSTGRES_URL_ENV: "postgresql://u@127.0.0.1:1/x",
           REDIS_URL_ENV: "redis://127.0.0.1:1/0", "DEPTHFLOW_STARTUP_TIMEOUT_S": "600"}
    log = tmp_path / "peaks.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "depthflow.peaks"], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    try:
        _poll(lambda: "Connect call failed" in log.read_text(), within_s=60)  # inside the connect loop
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        # far below the 600 s bound: the signal, not the bound, ended it
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""No generated password appears in what a run prints or logs.

A real ``depthflow up --duration`` on its own state folder (its own embedded servers, five
services, the generator), then every byte of its console output and of every file in the
state folder is searched for each password. The only files allowed to hold one are the
credentials file and the two server configs made from it, all mode 0600.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from depthflow.devstack import EmbeddedServers

SECRET_FILES = {"credentials.json", "nats.conf", "valkey.conf"}
KINDS = ("nats", "postgres", "valkey")


def _leaked(passwords: tuple[str, ...], data: bytes) -> list[str]:
    return [kind for kind, pw in zip(KINDS, passwords, strict=True) if pw.encode() in data]


def test_no_password_in_console_or_logs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPTHFLOW_")}
    cmd = [sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--symbols", "BTCFDUSD"]
    try:
        run = subprocess.run([*cmd, "up", "--duration", "6", "--speed", "10"], env=env,
                             capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([*cmd, "down"], env=env, capture_output=True, timeout=120)
    console = run.stdout + run.stderr
    assert "servers up in" in console, console
    assert "nats://depthflow:***@127.0.0.1:" in console  # the URLs are printed, masked

    servers = EmbeddedServers(state / "servers")
    creds = servers.credentials()
    assert creds is not None
    passwords = creds.passwords()
    # the assertions name which secret leaked where, never the secret itself
    assert _leaked(passwords, console.encode()) == []

    searched = 0
    for path in state.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        if path.name in SECRET_FILES:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            continue
        searched += 1
        assert _leaked(passwords, path.read_bytes()) == [], path
    logs = {p.name for p in state.rglob("*.log")}
    assert {"nats.log", "postgres.log", "valkey.log", "risk.log"} <= logs, logs
    assert searched > len(logs)

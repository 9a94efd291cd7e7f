"""What every command prints to the operator's console."""

from __future__ import annotations


def say(msg: str) -> None:
    """One progress line, flushed at once: a detached ``up`` follows these through a log file."""
    print(f"[depthflow] {msg}", flush=True)

"""Automatic canary rollback: the canary is judged against stable over a sliding window.

A canary is rolled back when, over the last ``window_s`` seconds, either
- its error rate (dead letters and retries per message it handled) exceeds ``max_error_ratio``
  times stable's (stable's taken as at least :data:`ERROR_FLOOR`, so one error of a canary
  beside a spotless stable is not yet a verdict), or
- its 99th-percentile handling time exceeds ``max_p99_ratio`` times stable's (taken as at least
  :data:`P99_FLOOR`),
and it handled at least ``min_messages`` in the window (fewer say nothing). Every setting has
bounds that refuse a value disabling the guard (a ratio of a million never trips).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from depthflow.common.routing import CANARY, STABLE
from depthflow.ctl.lanemetrics import LaneLedger, Reading

ERROR_FLOOR = 0.01  # 1 % of messages
P99_FLOOR = 0.001  # 1 ms


class CanaryGuard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When the supervisor rolls a canary back by itself (``depthflow up --canary-*``)."""

    max_error_ratio: Annotated[float, msgspec.Meta(ge=1.5, le=100)] = 3.0
    max_p99_ratio: Annotated[float, msgspec.Meta(ge=1.5, le=100)] = 5.0
    window_s: Annotated[float, msgspec.Meta(ge=5, le=3600)] = 30.0
    min_messages: Annotated[int, msgspec.Meta(ge=5, le=1_000_000)] = 20


def _errors(r: Reading) -> tuple[float, float]:
    bad = r.outcome("dead_letter") + r.outcome("retry")
    return bad, r.outcome("ok") + bad


def verdict(guard: CanaryGuard, stable: Reading, canary: Reading) -> str | None:
    """Why the canary must be rolled back, judged on one window's readings, or None."""
    bad, seen = _errors(canary)
    if seen < guard.min_messages:
        return None
    s_bad, s_seen = _errors(stable)
    rate, s_rate = bad / seen, (s_bad / s_seen if s_seen else 0.0)
    if rate > guard.max_error_ratio * max(s_rate, ERROR_FLOOR):
        return (f"error rate {rate:.1%} ({bad:.0f} of {seen:.0f}) > {guard.max_error_ratio:g} x stable's "
                f"{s_rate:.1%} (floor {ERROR_FLOOR:.0%}) over {guard.window_s:g}s")
    p99, s_p99 = canary.p99(), stable.p99()
    if p99 is not None and p99 > guard.max_p99_ratio * max(s_p99 or 0.0, P99_FLOOR):
        return (f"p99 handling time {p99 * 1e3:g} ms > {guard.max_p99_ratio:g} x stable's "
                f"{(s_p99 or 0.0) * 1e3:g} ms (floor {P99_FLOOR * 1e3:g} ms) over {guard.window_s:g}s")
    return None


def breaches(guard: CanaryGuard, ledger: LaneLedger) -> dict[str, str]:
    """Service -> why its canary must be rolled back, from the ledger's last window."""
    win = ledger.window(guard.window_s)
    if win is None:
        return {}
    _, deltas = win
    out = {}
    for (service, lane), reading in deltas.items():
        if lane == CANARY:
            why = verdict(guard, deltas.get((service, STABLE), Reading({}, {})), reading)
            if why is not None:
                out[service] = why
    return out

"""The REST request-weight budget: never let the collector get the IP banned.

Binance counts request weight per IP per minute (``REQUEST_WEIGHT``, 6000 today; the real value
comes from ``exchangeInfo``) and reports the weight used in ``X-MBX-USED-WEIGHT-1M`` on every
response. A 429 says "stop, or be banned" and carries ``Retry-After`` seconds; a 418 says "banned"
until ``Retry-After`` ends, and bans grow for repeat offenders. So:

- before each request, wait until the weight fits in the current minute (with a safety margin);
- after each response, trust the server's count over our own;
- after a 429, send nothing until its Retry-After has passed; after a 418, nothing at all until
  the ban ends;
- resyncs (250 weight each at depth 5000) are paced per symbol, so a flapping stream can never
  spend the budget.

Pure: time is passed in, so the rules are tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WeightBudget:
    """Decide when a REST request of a given weight may be sent."""

    limit_per_minute: int = 6000
    safety: float = 0.8  # use at most this fraction of the limit
    used: int = 0
    minute: int = -1
    blocked_until: float = 0.0
    banned_until: float = 0.0
    violations: int = 0

    def _roll(self, now: float) -> None:
        m = int(now // 60)
        if m != self.minute:
            self.minute, self.used = m, 0

    def wait_s(self, weight: int, now: float) -> float:
        """Seconds to wait before a request of ``weight`` may go (0: now)."""
        self._roll(now)
        hold = max(self.blocked_until, self.banned_until) - now
        if hold > 0:
            return hold
        if self.used + weight > self.safety * self.limit_per_minute:
            return (self.minute + 1) * 60 - now
        return 0.0

    def spend(self, weight: int, now: float) -> None:
        """Count a request as sent."""
        self._roll(now)
        self.used += weight

    def on_response(self, status: int, headers: dict[str, str], now: float) -> None:
        """Learn from a response: the server's weight count, and 429/418 with Retry-After."""
        self._roll(now)
        used = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        if used and used.isdigit():
            self.used = max(self.used, int(used))
        if status in (429, 418):
            self.violations += 1
            retry = headers.get("Retry-After") or headers.get("retry-after") or ""
            # no Retry-After: assume the worst of the documented range (2 minutes for a first ban)
            wait = float(retry) if retry.replace(".", "", 1).isdigit() else 120.0
            if status == 418:
                self.banned_until = max(self.banned_until, now + wait)
            else:
                self.blocked_until = max(self.blocked_until, now + wait)

    @property
    def banned(self) -> bool:
        return self.banned_until > 0


@dataclass
class ResyncPacer:
    """At most one snapshot fetch per symbol every ``min_interval_s`` seconds."""

    min_interval_s: float = 10.0
    last: dict[str, float] = field(default_factory=dict)

    def wait_s(self, symbol: str, now: float) -> float:
        prev = self.last.get(symbol)
        return 0.0 if prev is None else max(0.0, prev + self.min_interval_s - now)

    def mark(self, symbol: str, now: float) -> None:
        self.last[symbol] = now


def depth_weight(limit: int) -> int:
    """Request weight of ``GET /api/v3/depth`` (Binance, since 2023-10-19)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250

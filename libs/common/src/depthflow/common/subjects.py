"""The only place where subject and stream names are built.

Subjects read ``<domain>.<kind>.<venue>.<SYMBOL>`` with the symbol last and never containing a dot,
so a consumer can filter by venue or symbol with wildcards. A ``prefix`` puts a whole deployment
(or one test) in its own namespace: subjects gain ``<prefix>.`` in front and streams
``<PREFIX>_`` so two namespaces never see each other's messages on one server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")

# stream name -> the subject domain it captures
STREAM_DOMAINS: dict[str, str] = {
    "MD": "md",
    "AGG": "agg",
    "PEAKS": "peaks",
    "SIGNALS": "signal",
    "RISK": "risk",
    "DLQ": "dlq",
}


def check_token(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid subject token, else raise ``ValueError`` naming ``kind``."""
    if not _TOKEN.match(value):
        raise ValueError(f"{kind} must be letters, digits, '-' or '_' (no dots), was {value!r}")
    return value


def subject_matches(pattern: str, subject: str) -> bool:
    """Return whether ``subject`` matches a NATS ``pattern`` (``*`` one token, ``>`` the rest)."""
    pt, st = pattern.split("."), subject.split(".")
    for i, p in enumerate(pt):
        if p == ">":
            return len(st) > i
        if i >= len(st) or (p != "*" and p != st[i]):
            return False
    return len(pt) == len(st)


@dataclass(frozen=True)
class ParsedSubject:
    """The parts of a stream subject of this namespace; ``venue``/``symbol`` are empty where the subject
    has none (``dlq.<service>`` has neither, ``risk.state.<venue>`` no symbol)."""

    domain: str
    kind: str
    venue: str = ""
    symbol: str = ""

    @property
    def stage(self) -> str:
        """``<domain>.<kind>``: what operators count messages by (``md.depth``, ``risk.order``)."""
        return f"{self.domain}.{self.kind}"


_DOMAINS = frozenset(STREAM_DOMAINS.values())  # what streams keep; ctl.* requests are not parsed


@dataclass(frozen=True)
class Subjects:
    """Subject and stream names within one namespace (``prefix``; empty in production)."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if self.prefix:
            check_token("prefix", self.prefix)

    def _s(self, *tokens: str) -> str:
        body = ".".join(tokens)
        return f"{self.prefix}.{body}" if self.prefix else body

    def _market(self, domain: str, kind: str, venue: str, symbol: str) -> str:
        if venue != "*":
            check_token("venue", venue)
        if symbol != "*":
            check_token("symbol", symbol)
        return self._s(domain, kind, venue, symbol)

    # market data
    def md_depth(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("md", "depth", venue, symbol)

    def md_trade(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("md", "trade", venue, symbol)

    def md_status(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("md", "status", venue, symbol)

    # aggregates
    def agg_book(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("agg", "book", venue, symbol)

    def agg_profile(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("agg", "profile", venue, symbol)

    # analysis and signals
    def peaks_zones(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("peaks", "zones", venue, symbol)

    def signal_fused(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("signal", "fused", venue, symbol)

    # risk
    def risk_order(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("risk", "order", venue, symbol)

    def risk_fill(self, venue: str = "*", symbol: str = "*") -> str:
        return self._market("risk", "fill", venue, symbol)

    def risk_state(self, venue: str = "*") -> str:
        if venue != "*":
            check_token("venue", venue)
        return self._s("risk", "state", venue)

    # operations
    def dlq(self, service: str = "*") -> str:
        if service != "*":
            check_token("service", service)
        return self._s("dlq", service)

    def ctl(self, service: str, verb: str) -> str:
        return self._s("ctl", check_token("service", service), check_token("verb", verb))

    # streams and key-value buckets
    def stream(self, name: str) -> str:
        if name not in STREAM_DOMAINS:
            raise ValueError(f"unknown stream {name!r}; streams are {sorted(STREAM_DOMAINS)}")
        return f"{self.prefix.upper()}_{name}" if self.prefix else name

    def stream_subjects(self, name: str) -> list[str]:
        return [self._s(STREAM_DOMAINS[name], ">")]

    def kv_bucket(self, name: str) -> str:
        check_token("bucket", name)
        return f"{self.prefix}-{name}" if self.prefix else name

    @staticmethod
    def trading_state_key(venue: str) -> str:
        """Return the ``control`` KV key holding a venue's trading state (ACTIVE/REDUCING/HALTED)."""
        return f"trading-state-{check_token('venue', venue)}"

    def stream_of(self, subject: str) -> str:
        """Return the stream that captures ``subject``."""
        body = subject[len(self.prefix) + 1 :] if self.prefix else subject
        domain = body.split(".", 1)[0]
        for name, d in STREAM_DOMAINS.items():
            if d == domain:
                return self.stream(name)
        raise ValueError(f"no stream captures subject {subject!r}")

    def parse(self, subject: str) -> ParsedSubject:
        """Split a subject of this namespace into its parts; raise ``ValueError`` for a subject of
        another namespace or one no builder here makes. Why here: readers (the operator CLI, tests)
        must not re-derive token positions that only this module defines."""
        if self.prefix:
            head, _, body = subject.partition(".")
            if head != self.prefix:
                raise ValueError(f"subject {subject!r} is not in namespace {self.prefix!r}")
        else:
            body = subject
        tokens = body.split(".")
        domain = tokens[0]
        if domain not in _DOMAINS or not all(_TOKEN.match(t) for t in tokens):
            raise ValueError(f"subject {subject!r} is no depthflow subject")
        if domain == "dlq" and len(tokens) == 2:
            return ParsedSubject("dlq", tokens[1])
        if body.startswith("risk.state.") and len(tokens) == 3:
            return ParsedSubject("risk", "state", tokens[2])
        if len(tokens) == 4 and domain != "dlq":
            return ParsedSubject(*tokens)
        raise ValueError(f"subject {subject!r} is no depthflow subject")

    @staticmethod
    def symbol_of(subject: str) -> str:
        """Return the symbol token of a market subject (always the last token)."""
        return subject.rsplit(".", 1)[-1]

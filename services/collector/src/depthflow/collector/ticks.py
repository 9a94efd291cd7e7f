"""A symbol's price tick, stated by the exchange or inferred from the price strings of its records.

Why infer: a replayed file rarely carries ``exchangeInfo``, but Binance writes every price as a
decimal string on the symbol's tick grid, padded with zeros (``"0.82920000"`` on a 0.0001 grid).
The finest power of ten that every price seen is a multiple of is then the tick as far as the
record shows: a book of hundreds of levels reveals it at once, and it can only get finer as more
prices arrive (never coarser), so a consumer that saw one tick never has to undo a finer grid. A
tick that is not a power of ten (0.05) shows as the power-of-ten grid its prices sit on (0.01),
which still divides every price. A tick stated by ``exchangeInfo`` (live, or a depthflow
recording) is the truth and is never overridden by inference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

# the price of each [price, qty] level in a REST snapshot or a depth diff, and a trade's "p"
# (plain decimals only: another spelling that parsed as a number tells no grid and is passed over)
_PLAIN: Final = rb"[0-9]+(?:\.[0-9]*)?"
_LEVEL_PRICE: Final = re.compile(rb'\[\s*"(' + _PLAIN + rb')"\s*,')
_TRADE_PRICE: Final = re.compile(rb'"p"\s*:\s*"(' + _PLAIN + rb')"')
_DECIMAL: Final = re.compile(_PLAIN)


def decimal_exponent(text: bytes) -> int | None:
    """The exponent of the coarsest power of ten ``text`` is a multiple of; None for zero.

    >>> decimal_exponent(b"61837.63000000"), decimal_exponent(b"16.5315"), decimal_exponent(b"61830")
    (-2, -4, 1)
    """
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain decimal: {text[:40]!r}")
    whole, _, frac = text.partition(b".")
    frac = frac.rstrip(b"0")
    if frac:
        return -len(frac)
    whole = whole.lstrip(b"0")
    return len(whole) - len(whole.rstrip(b"0")) if whole else None


def finest_exponent(prices: Iterable[bytes]) -> int | None:
    """The finest grid all ``prices`` sit on (the smallest exponent), None if none tells one."""
    exponents = [e for e in map(decimal_exponent, prices) if e is not None]
    return min(exponents) if exponents else None


def tick_of(exponent: int) -> float:
    """``10**exponent`` as the float nearest the decimal (``-4`` → ``0.0001`` exactly as written)."""
    return float(f"1e{exponent}")


def level_prices(raw: bytes) -> list[bytes]:
    """The price strings of the book levels in a REST snapshot or depth diff (raw JSON)."""
    return _LEVEL_PRICE.findall(raw)


def trade_prices(raw: bytes) -> list[bytes]:
    """The price string of a trade or aggTrade message (raw JSON)."""
    return _TRADE_PRICE.findall(raw)


class TickTracker:
    """Each symbol's tick: stated (exchangeInfo) or the finest grid its prices have shown."""

    def __init__(self) -> None:
        self._stated: dict[str, float] = {}
        self._exponent: dict[str, int] = {}

    def state(self, symbol: str, tick: float) -> None:
        """The exchange's own tick for ``symbol``; inference stops for it."""
        self._stated[symbol] = tick

    def observe(self, symbol: str, prices: Iterable[bytes]) -> bool:
        """Take in prices of ``symbol``; True when its tick got finer (a stated tick never does)."""
        if symbol in self._stated:
            return False
        e = finest_exponent(prices)
        known = self._exponent.get(symbol)
        if e is None or (known is not None and e >= known):
            return False
        self._exponent[symbol] = e
        return True

    def tick(self, symbol: str) -> float:
        """The tick to publish for ``symbol``: stated, else inferred, else 0.0 (unknown)."""
        if symbol in self._stated:
            return self._stated[symbol]
        e = self._exponent.get(symbol)
        return tick_of(e) if e is not None else 0.0

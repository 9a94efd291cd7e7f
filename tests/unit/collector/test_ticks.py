"""Tick inference from price strings: the finest power-of-ten grid every price sits on, never
coarser as prices arrive, and a stated tick (exchangeInfo) is never overridden."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from depthflow.collector.ticks import (
    TickTracker,
    decimal_exponent,
    finest_exponent,
    level_prices,
    tick_of,
    trade_prices,
)

exponents = st.integers(-8, 3)


def binance_string(units: int, exponent: int) -> bytes:
    """``units * 10**exponent`` written as Binance writes prices: fixed 8 decimals."""
    return f"{Decimal(units).scaleb(exponent):.8f}".encode()


@given(st.integers(1, 10**9), exponents)
def test_a_price_sits_on_its_own_grid_and_on_no_finer_one(units, exponent):
    e = decimal_exponent(binance_string(units, exponent))
    assert e is not None
    assert e >= exponent
    assert (e == exponent) == (units % 10 != 0)
    value = Decimal(binance_string(units, exponent).decode())
    assert value % Decimal(1).scaleb(e) == 0
    assert value % Decimal(1).scaleb(e + 1) != 0


@given(st.lists(st.tuples(st.integers(1, 10**7), exponents), min_size=1, max_size=30))
def test_the_inferred_tick_divides_every_price_and_only_gets_finer(prices):
    tracker = TickTracker()
    ticks = []
    for units, exponent in prices:
        tracker.observe("X", [binance_string(units, exponent)])
        ticks.append(tracker.tick("X"))
    assert ticks == sorted(ticks, reverse=True)  # never coarser
    tick = Decimal(repr(ticks[-1]))
    for units, exponent in prices:
        assert Decimal(binance_string(units, exponent).decode()) % tick == 0
    assert tick == Decimal(1).scaleb(min(decimal_exponent(binance_string(u, e)) for u, e in prices))


@given(st.floats(0.0001, 10.0), exponents)
def test_a_stated_tick_is_never_overridden(stated, exponent):
    tracker = TickTracker()
    tracker.state("X", stated)
    assert not tracker.observe("X", [binance_string(7, exponent)])
    assert tracker.tick("X") == stated


@pytest.mark.parametrize(("text", "exponent"), [
    (b"61837.63000000", -2), (b"0.82920000", -4), (b"16.5315", -4), (b"0.01731", -5),
    (b"61830", 1), (b"100.000", 2), (b"7", 0), (b"0.00000000", None), (b"0", None),
])
def test_exponents_of_real_price_spellings(text, exponent):
    assert decimal_exponent(text) == exponent


@pytest.mark.parametrize("text", [b"", b".5", b"1e-4", b"-1.0", b"1.2.3", b"nan"])
def test_anything_but_a_plain_decimal_is_refused(text):
    with pytest.raises(ValueError, match="not a plain decimal"):
        decimal_exponent(text)


def test_prices_are_read_from_levels_and_trades_but_not_quantities():
    diff = (b'{"stream":"manausd@depth@100ms","data":{"e":"depthUpdate","E":1628952313956,"s":"MANAUSD",'
            b'"U":108545652,"u":108545652,"b":[["0.8269","1417.65000000"]],"a":[["0.8300","0.00001000"]]}}')
    assert level_prices(diff) == [b"0.8269", b"0.8300"]
    assert finest_exponent(level_prices(diff)) == -4
    trade = b'{"e":"trade","E":1,"s":"BTCUSDT","t":3,"p":"61837.63000000","q":"0.00002000","T":1,"m":true}'
    assert trade_prices(trade) == [b"61837.63000000"]
    assert tick_of(-4) == 0.0001
    assert tick_of(2) == 100.0
    assert finest_exponent([b"0.0"]) is None

"""The bucket rule and bucket widths, against oracles that do not call the code under test.

Which bucket: exact ``Decimal`` arithmetic on ``repr(price)`` / ``repr(size)``. How wide: the
1-2-5 series listed out and compared in ``math.log10``, or plain decimal arithmetic written out.
"""

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numba import njit

from depthflow.common.pricing import (
    EDGE_REL,
    TARGET_REL,
    bucket_edges,
    bucket_index,
    bucket_key,
    bucket_keys,
    bucket_size_for,
    choose_bucket_size,
    per_unit,
    scaled_index,
)

wide_prices = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)
# 0.0001 only where the prices stay below 2**53 buckets: 1e9 / 1e-4 = 1e13
wide_sizes = st.sampled_from([1.0, 0.5, 0.01, 0.005, 0.0001, 0.015, 10.0, 100.0])


def decimal_bucket(price: float, size: float) -> tuple[int, int]:
    """The bucket(s) the edge rule allows for ``price``, from exact decimal arithmetic.

    The rule: floor of the exact quotient, except that a quotient within ``EDGE_REL``
    (relative) below the next edge belongs to that edge. Float rounding (<= ~4.4e-16 relative)
    blurs the threshold itself, so a quotient within that blur of it may go either way: the
    pair returned is ``(k, k)`` when only one bucket is right and ``(k, k + 1)`` otherwise.
    """
    with localcontext() as ctx:
        ctx.prec = 80
        q = Decimal(repr(price)) / Decimal(repr(size))
        k = int(q)  # q > 0: truncation is the floor
        gap = (k + 1 - q) / q  # relative distance to the next edge
        if gap <= Decimal(EDGE_REL) - Decimal("5e-16"):
            return k + 1, k + 1
        if gap <= Decimal(EDGE_REL) + Decimal("5e-16"):
            return k, k + 1
        return k, k


@njit(cache=False)
def _keys_in_a_kernel(px: np.ndarray, size: float) -> np.ndarray:
    """What a consumer's kernel (peaks') does: the scalar rule in its own loop."""
    out = np.empty(px.size, np.int64)
    for i in range(px.size):
        out[i] = bucket_key(px[i], size)
    return out


# --- which bucket ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=wide_prices), wide_sizes)
def test_every_price_gets_its_decimal_bucket(px, size):
    for p, k in zip(px.tolist(), bucket_keys(px, size).tolist(), strict=True):
        lo, hi = decimal_bucket(p, size)
        assert lo <= k <= hi, (p, size, k)


def on_and_near_edges(size: float, seed: int) -> np.ndarray:
    """Prices on bucket edges over many magnitudes, and one ulp either side of each."""
    rng = np.random.default_rng(seed)
    base = np.maximum(np.round(10.0 ** rng.uniform(-3, 8, 3000) / size), 1.0) * size
    return np.concatenate([base, np.nextafter(base, 0), np.nextafter(base, np.inf)])


@pytest.mark.parametrize("size", [1.0, 0.01, 0.005, 0.0001, 0.015, 7.0, 1e-7])
def test_scalar_rule_matches_numpy_bit_for_bit_inside_a_kernel(size):
    px = on_and_near_edges(size, 7)
    want = bucket_index(px, size)
    assert np.array_equal(_keys_in_a_kernel(px, size), want.astype(np.int64))
    assert [scaled_index(p, 1.0 / size) for p in px[:500].tolist()] == want[:500].tolist()


def test_price_on_an_edge_is_in_its_own_bucket():
    # 0.29 / 0.01 is 28.999999999999996 in binary floating point
    assert bucket_key(0.29, 0.01) == 29
    assert bucket_keys(np.array([0.29, 0.2899]), 0.01).tolist() == [29, 28]
    # the former absolute rule (round to 9 decimals of a bucket) put this one bucket too low
    assert bucket_key(60123.45, 0.01) == 6012345


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["0.005", "0.0001", "0.01", "0.00000001"]),
    st.integers(1, 1000),
    st.integers(1, 10**9),
)
def test_tick_multiple_sizes_put_every_tick_price_in_the_right_bucket(tick, multiple, n_ticks):
    size = bucket_size_for(tick, multiple)
    prices = [float(t * Decimal(tick)) for t in (n_ticks, n_ticks + 1, n_ticks * multiple)]
    want = [n_ticks // multiple, (n_ticks + 1) // multiple, n_ticks]
    assert bucket_keys(np.array(prices), size).tolist() == want


@pytest.mark.parametrize(
    ("size", "per"), [(0.01, 100.0), (1e-5, 1e5), (1.0, 1.0), (0.015, 0.0), (7.0, 0.0), (1e-7, 1e7)]
)
def test_per_unit_is_the_whole_number_of_buckets_per_unit(size, per):
    assert per_unit(size) == per


@pytest.mark.parametrize(("size", "key", "edge"), [(0.1, 7, 0.7), (1e-5, 7, 7e-5), (0.015, 3, 0.045)])
def test_edges_are_the_nearest_doubles_to_the_decimal_edges(size, key, edge):
    # 7 * 0.1 is 0.7000000000000001 and 7 * 1e-5 is 7.000000000000001e-05 in binary
    assert bucket_edges(np.array([key]), size).tolist() == [edge]


# --- explicit multiples of the tick ---------------------------------------------------------


def test_bucket_size_for_tick_multiples():
    assert bucket_size_for(0.005, 1) == 0.005
    assert bucket_size_for(0.005, 3) == 0.015  # 0.005 * 3 would be 0.015000000000000001
    assert bucket_size_for("0.00500000", 3) == 0.015  # Binance's tickSize string
    assert bucket_size_for(0.0001, 1) == 0.0001
    assert bucket_size_for(0.01, 100) == 1.0
    assert bucket_size_for(0.1, 7) == 0.7


@pytest.mark.parametrize(
    ("tick", "multiple"),
    [(0.0, 1), (-0.01, 1), (math.nan, 1), (math.inf, 1), ("x", 1), (0.01, 0), (0.01, 1.5)],
)
def test_bucket_size_for_rejects_nonsense(tick, multiple):
    with pytest.raises(ValueError, match=r"tick size|multiple"):
        bucket_size_for(tick, multiple)


# --- chosen widths --------------------------------------------------------------------------

SERIES = [Decimal(m).scaleb(k) for k in range(-20, 21) for m in (1, 2, 5)]


def nearest_in_log(x: Decimal) -> Decimal:
    """The oracle: the 1-2-5 x 10^k value nearest to ``x`` by plain search in log10."""
    lx = math.log10(x)
    return min(SERIES, key=lambda s: abs(math.log10(s) - lx))


def near_a_boundary(x: Decimal) -> bool:
    """Whether ``x`` is within float error of a geometric mean of two series neighbours, where
    the log10 oracle itself cannot decide."""
    frac = math.log10(x) % 1.0
    return any(abs(frac - math.log10(b)) < 1e-12 for b in (math.sqrt(2), math.sqrt(10), math.sqrt(50)))


# ticks as exchanges set them, and prices of up to 8 significant digits, over many magnitudes
ticks = st.builds(
    lambda m, e: Decimal(m).scaleb(e), st.sampled_from([1, 2, 5, 25, 1, 1]), st.integers(-10, 2)
)
prices = st.builds(lambda m, e: Decimal(m).scaleb(e), st.integers(1, 99_999_999), st.integers(-12, 0))


def exact(x: float) -> Decimal:
    """The decimal a double stands for (its shortest repr): how exchanges and we read sizes."""
    return Decimal(repr(x))


def test_two_symbols_far_apart_get_buckets_of_comparable_relative_width():
    # written out: 1.6e-5 x 60000 = 0.96 -> 96 ticks of 0.01 -> nearest 1-2-5 is 100 -> 1.0
    assert choose_bucket_size(0.01, 60000.0) == 1.0
    # 1.6e-5 x 0.006 = 9.6e-8: under one tick of 1e-6, so one tick
    assert choose_bucket_size(1e-6, 0.006) == 1e-6
    # with a finer tick: 9.6e-8 / 1e-8 = 9.6 -> 10 ticks -> 1e-7, the same 1.6e-5 of the price
    assert choose_bucket_size(1e-8, 0.006) == 1e-7
    # ETH at 3000, tick 0.01: 0.048 -> 4.8 ticks -> 5 ticks (4.8^2 = 23.04 >= 10) -> 0.05
    assert choose_bucket_size(0.01, 3000.0) == 0.05
    # unknown tick: the series value nearest the target itself
    assert choose_bucket_size(0.0, 60000.0) == 1.0
    assert choose_bucket_size(0.0, 0.006) == 1e-7
    assert choose_bucket_size(0.0, 100.0) == 0.002  # 0.0016: 1.6^2 = 2.56 >= 2 -> 2e-3


@settings(max_examples=500, deadline=None)
@given(ticks, prices)
def test_a_chosen_size_is_the_series_multiple_of_the_tick_nearest_the_target(tick, price):
    size = exact(choose_bucket_size(float(tick), float(price)))
    multiple = size / tick
    assert multiple == multiple.to_integral_value()
    assert multiple >= 1
    ratio = Decimal(repr(TARGET_REL)) * price / tick
    if ratio < 1:  # the tick is coarser than the target: one tick
        assert multiple == 1
        return
    assume(not near_a_boundary(ratio))
    assert multiple == nearest_in_log(ratio)
    target = float(Decimal(repr(TARGET_REL)) * price)
    assert 1 / 1.59 <= float(size) / target <= 1.59  # within sqrt(2.5) of the target


@settings(max_examples=300, deadline=None)
@given(prices)
def test_without_a_tick_the_size_is_the_series_value_nearest_the_target(price):
    size = exact(choose_bucket_size(0.0, float(price)))
    target = Decimal(repr(TARGET_REL)) * price
    assume(not near_a_boundary(target))
    assert size == nearest_in_log(target)


@settings(max_examples=300, deadline=None)
@given(ticks, prices, st.integers(-6, 6), st.sampled_from([TARGET_REL, 1e-4, 3e-6]))
def test_scaling_price_and_tick_by_a_power_of_ten_scales_the_size_exactly(tick, price, k, rel):
    size = exact(choose_bucket_size(float(tick), float(price), rel))
    scaled = exact(choose_bucket_size(float(tick.scaleb(k)), float(price.scaleb(k)), rel))
    assert scaled == size.scaleb(k)
    unknown = exact(choose_bucket_size(0.0, float(price), rel))
    assert exact(choose_bucket_size(0.0, float(price.scaleb(k)), rel)) == unknown.scaleb(k)


@pytest.mark.parametrize(
    ("tick", "price", "rel"),
    [(-0.01, 1.0, TARGET_REL), (0.01, 0.0, TARGET_REL), (0.01, -5.0, TARGET_REL), (math.nan, 1.0, TARGET_REL),
     (0.01, math.inf, TARGET_REL), (0.01, 1.0, 0.0), (0.01, 1.0, math.nan)],
)
def test_choose_bucket_size_rejects_nonsense(tick, price, rel):
    with pytest.raises(ValueError, match=r"tick size|price|target_rel"):
        choose_bucket_size(tick, price, rel)

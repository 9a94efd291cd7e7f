"""Bucketing conserves volume exactly and puts each level in the bucket of its price.

The oracles are independent of the implementation: ``math.fsum`` for the sums, and exact
``Decimal`` arithmetic on ``repr(price)`` / ``repr(size)`` for which bucket a level belongs to.
"""

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from depthflow.aggregator.bucketing import Buckets, bucket_side
from depthflow.common.pricing import bucket_edges, bucket_keys, bucket_size_for
from tests.unit.common.test_pricing import decimal_bucket

EPS = 2.0**-52
prices = st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False)
# huge and tiny as well: the Decimal oracle below is exact at any magnitude
wide_prices = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)
qtys = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
sizes = st.sampled_from([1.0, 0.5, 0.01, 0.005, 10.0, 100.0])
# 0.0001 only where the prices stay below 2**53 buckets: 1e9 / 1e-4 = 1e13
wide_sizes = st.sampled_from([1.0, 0.5, 0.01, 0.005, 0.0001, 0.015, 10.0, 100.0])


@st.composite
def books(draw, price=prices, max_levels=300, unique=False):
    n = draw(st.integers(0, max_levels))
    px = draw(arrays(np.float64, n, elements=price, unique=unique))
    qty = draw(arrays(np.float64, n, elements=qtys))
    order = draw(st.sampled_from(["asc", "desc", "any"]))
    if order == "asc":
        idx = np.argsort(px, kind="stable")
    elif order == "desc":
        idx = np.argsort(-px, kind="stable")
    else:
        idx = np.arange(n)
    return px[idx], qty[idx]


def fsum_bound(values: np.ndarray) -> float:
    """Worst-case error of a float sum of non-negative ``values``, against the exact sum."""
    return max(len(values) - 1, 0) * EPS * math.fsum(values) + 1e-300


def check_against_oracles(px: np.ndarray, qty: np.ndarray, size: float, out: Buckets) -> None:
    """Every level in the bucket of its price, once; sums equal ``fsum`` to float rounding."""
    keys = bucket_keys(px, size)
    want: dict[int, list[float]] = {}
    for p, q, k in zip(px.tolist(), qty.tolist(), keys.tolist(), strict=True):
        lo, hi = decimal_bucket(p, size)
        assert lo <= k <= hi, f"price {p!r} size {size!r}: bucket {k}, decimal says {lo}..{hi}"
        want.setdefault(k, []).append(q)
    got_keys = sorted(want)
    assert np.array_equal(out.px, bucket_edges(np.array(got_keys, dtype=np.int64), size))
    assert out.qty.shape == out.px.shape
    for k, total in zip(got_keys, out.qty.tolist(), strict=True):
        exact = math.fsum(want[k])
        assert abs(total - exact) <= fsum_bound(np.array(want[k])), (k, total, exact)
    exact_in = math.fsum(qty.tolist())
    bound = fsum_bound(qty)
    assert abs(out.volume_in - exact_in) <= bound
    assert abs(out.volume_out - exact_in) <= bound
    assert out.volume_out == pytest.approx(out.volume_in, rel=2 * len(qty) * EPS, abs=1e-300)
    assert out.levels_in == len(px)
    assert out.levels_out == len(got_keys)
    assert out.compression == (len(px) / len(got_keys) if got_keys else 0.0)
    assert out.price_low == (float(px.min()) if len(px) else 0.0)
    assert out.price_high == (float(px.max()) if len(px) else 0.0)
    assert np.all(np.diff(out.px) > 0)


@settings(max_examples=300, deadline=None)
@given(books(), sizes)
def test_bucketing_conserves_volume_and_counts(book, size):
    px, qty = book
    out = bucket_side(px, qty, size)
    assert np.isclose(out.qty.sum(), qty.sum(), rtol=1e-12, atol=1e-9)
    # each bucket sums exactly its own levels
    keys = bucket_keys(px, size)
    for edge, total in zip(out.px, out.qty, strict=True):
        k = round(edge / size)
        assert np.isclose(total, qty[keys == k].sum(), rtol=1e-12, atol=1e-9)
    assert out.px.size == np.unique(keys).size
    assert np.all(np.diff(out.px) > 0)


@settings(max_examples=300, deadline=None)
@given(books(price=wide_prices, max_levels=100), wide_sizes)
def test_each_level_lands_in_its_decimal_bucket_and_sums_match_fsum(book, size):
    px, qty = book
    check_against_oracles(px, qty, size, bucket_side(px, qty, size))


@st.composite
def exchange_books(draw):
    """Books as an exchange sends them: decimal prices on a tick grid, bucket = ticks x multiple.

    Half the prices sit exactly on a bucket edge, the rest one tick either side of one, the
    cases where binary rounding bites. Prices keep ``price x 10^decimals < 10^14``, the domain
    in which the module promises the exact decimal bucket (1e9 at 0.01 and 1e-8 at 1e-8
    included).
    """
    tick = draw(st.sampled_from(["0.01", "0.005", "0.0001", "0.5", "1", "0.00000001", "0.1"]))
    multiple = draw(st.sampled_from([1, 1, 2, 3, 5, 10, 100]))
    size = bucket_size_for(tick, multiple)
    scale = Decimal(tick).as_tuple()
    decimals = max(-scale.exponent, 0)
    max_ticks = 10**14 // (int(Decimal(tick) * 10**decimals) * multiple) - 2
    n = draw(st.integers(1, 60))
    edges = draw(st.lists(st.integers(0, max_ticks), min_size=n, max_size=n))
    offsets = draw(st.lists(st.sampled_from([0, 0, 0, 1, -1]), min_size=n, max_size=n))
    ticks = sorted({max(e * multiple + o, 1) for e, o in zip(edges, offsets, strict=True)})
    px = np.array([float(t * Decimal(tick)) for t in ticks])
    qty = draw(arrays(np.float64, len(ticks), elements=qtys))
    return px, qty, size, [t // multiple for t in ticks]


@settings(max_examples=300, deadline=None)
@given(exchange_books(), st.booleans())
def test_exchange_prices_get_exactly_the_decimal_floor(book, descending):
    px, qty, size, want = book
    assert bucket_keys(px, size).tolist() == want
    if descending:
        px, qty = px[::-1].copy(), qty[::-1].copy()
    out = bucket_side(px, qty, size)
    check_against_oracles(px, qty, size, out)
    assert out.levels_out == len(set(want))


@settings(max_examples=200, deadline=None)
@given(books(price=wide_prices, max_levels=100, unique=True), wide_sizes, st.randoms())
def test_ascending_descending_and_unsorted_give_identical_output(book, size, rnd):
    px, qty = book
    asc = np.argsort(px)
    shuffled = list(range(len(px)))
    rnd.shuffle(shuffled)
    outs = [bucket_side(px[i], qty[i], size) for i in (asc, asc[::-1], np.array(shuffled, dtype=np.int64))]
    for other in outs[1:]:
        assert np.array_equal(other.px, outs[0].px)
        assert np.array_equal(other.qty, outs[0].qty)
        assert other[2:] == outs[0][2:]  # every scalar field, bit for bit


@settings(max_examples=100, deadline=None)
@given(books(max_levels=50), sizes, st.randoms())
def test_duplicate_prices_in_any_order_conserve_volume(book, size, rnd):
    px, qty = book
    px = np.concatenate([px, px[: len(px) // 2]])  # repeated price levels
    qty = np.concatenate([qty, qty[: len(qty) // 2]])
    order = list(range(len(px)))
    rnd.shuffle(order)
    px, qty = px[order], qty[order]
    check_against_oracles(px, qty, size, bucket_side(px, qty, size))


def test_empty_and_single_level_sides():
    out = bucket_side(np.empty(0), np.empty(0), 1.0)
    assert out.px.size == 0
    assert out == Buckets(out.px, out.qty)  # all figures zero
    out = bucket_side(np.array([60001.37]), np.array([0.25]), 1.0)
    assert out.px.tolist() == [60001.0]
    assert out.qty.tolist() == [0.25]
    assert out[2:] == (0.25, 0.25, 1, 1, 1.0, 60001.37, 60001.37)


@pytest.mark.parametrize(("price", "size"), [(1e9, 0.01), (1e9, 0.0001), (1e-8, 0.0001), (1e-8, 1e-8)])
def test_huge_and_tiny_prices(price, size):
    px = np.array([price, price * (1 + 1e-12), np.nextafter(price, 0.0)])
    qty = np.array([1.0, 2.0, 4.0])
    out = bucket_side(px, qty, size)
    check_against_oracles(px, qty, size, out)
    assert out.volume_out == 7.0


def test_price_on_a_bucket_edge_lands_in_its_own_bucket():
    # 0.29 / 0.01 is 28.999999999999996 in binary floating point
    out = bucket_side(np.array([0.29, 0.2899]), np.array([1.0, 2.0]), 0.01)
    assert np.allclose(out.px, [0.28, 0.29])
    assert out.qty.tolist() == [2.0, 1.0]


def test_btc_book_at_tick_size_keeps_every_level_and_its_exact_price():
    # at q ~ 6e6 the former absolute tolerance (round to 9 decimals) misplaced ~8 % of these
    px = np.array([float(f"60{i:03d}.{j:02d}") for i in range(0, 400, 7) for j in range(100)])
    out = bucket_side(px, np.ones_like(px), 0.01)
    assert np.array_equal(out.px, px)  # edges are the decimal prices, not k * 0.01
    assert out.levels_out == px.size


@pytest.mark.parametrize(
    ("size", "price", "edge"), [(0.1, 0.75, 0.7), (1e-5, 7.5e-5, 7e-5), (0.015, 0.05, 0.045)]
)
def test_edges_are_the_nearest_doubles_to_the_decimal_edges(size, price, edge):
    # 7 * 0.1 is 0.7000000000000001 and 7 * 1e-5 is 7.000000000000001e-05 in binary
    assert bucket_side(np.array([price]), np.array([1.0]), size).px.tolist() == [edge]


def run_lengths(shape: str, n: int, rng: np.random.Generator) -> list[int]:
    """Levels per bucket, in price order, for ``n`` levels: shapes that put bucket starts on,
    near and far from the quarters of the book, where the kernel splits it into streams."""
    if shape == "one_bucket":
        return [n]
    if shape == "each_its_own":
        return [1] * n
    if shape == "wide_middle":  # one bucket spans most of the book, across three quarters
        edge = max(n // 10, 1)
        return [r for r in (edge, n - 2 * edge, edge) if r > 0] if n > 2 else [n]
    runs: list[int] = []
    while sum(runs) < n:
        runs.append(min(int(rng.geometric(1 / 21)), n - sum(runs)))
    return runs


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 1000, 5003])
@pytest.mark.parametrize("shape", ["one_bucket", "each_its_own", "wide_middle", "random"])
def test_bucket_sums_are_the_level_by_level_sums_in_price_order(shape, n):
    # the kernel sums a book in several streams; each bucket must still be summed by one of them,
    # level by level in ascending price order, exactly as this loop does, however the book splits
    rng = np.random.default_rng(n)
    runs = run_lengths(shape, n, rng)
    px = np.concatenate([k + np.sort(rng.uniform(0.0, 0.9, r)) for k, r in enumerate(runs)])
    px = np.round(px + 1000.0, 2)  # sorted (ties possible), 1-unit buckets from 1000.0 up
    qty = rng.lognormal(-1.5, 1.0, px.size)
    want: dict[float, float] = {}
    for p, q in zip(px.tolist(), qty.tolist(), strict=True):
        want[math.floor(p)] = want.get(math.floor(p), 0.0) + q
    volume_out = 0.0
    for total in want.values():
        volume_out += total
    for book in ((px, qty), (px[::-1].copy(), qty[::-1].copy())):
        out = bucket_side(*book, 1.0)
        assert out.px.tolist() == list(want)
        assert out.qty.tolist() == list(want.values())  # bit for bit
        assert out.volume_out == volume_out
        assert out.volume_in == pytest.approx(math.fsum(qty), rel=1e-12)
        assert out[4:] == (px.size, len(want), px.size / len(want), px[0], px[-1])


def test_unsorted_books_are_sorted_stably_first():
    # levels of equal price keep their input order, and the order shows: 1e16 + 1 rounds to 1e16
    px = np.array([2.5, 1.5, 2.5, 1.25, 2.5])
    qty = np.array([1e16, 1.0, 1.0, 3.0, 1.0])
    out = bucket_side(px, qty, 1.0)
    assert out.px.tolist() == [1.0, 2.0]
    assert out.qty.tolist() == [3.0 + 1.0, (1e16 + 1.0) + 1.0]
    assert (1e16 + 1.0) + 1.0 != (1.0 + 1.0) + 1e16
    qty[4] = -1.0
    with pytest.raises(ValueError, match=r"quantity at level 4 "):
        bucket_side(px, qty, 1.0)


def test_descending_bids_bucket_like_ascending():
    px = np.array([100.9, 100.2, 99.7, 99.1, 98.0])
    qty = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = bucket_side(px, qty, 1.0)
    assert out.px.tolist() == [98.0, 99.0, 100.0]
    assert out.qty.tolist() == [5.0, 7.0, 3.0]
    assert (out.price_low, out.price_high) == (98.0, 100.9)


def test_read_only_and_non_float64_inputs_are_accepted():
    px = np.array([1.5, 2.5, 2.7])
    qty = np.array([1.0, 2.0, 3.0])
    want = bucket_side(px, qty, 1.0)
    ro = bucket_side(np.frombuffer(px.tobytes()), np.frombuffer(qty.tobytes()), 1.0)  # as handlers
    assert np.array_equal(ro.px, want.px)
    assert np.array_equal(ro.qty, want.qty)
    strided = bucket_side(np.repeat(px, 2)[::2], qty.astype(np.float32), 1)
    assert np.array_equal(strided.px, want.px)
    assert np.array_equal(strided.qty, want.qty)


BAD = [math.nan, math.inf, -math.inf, -1.0, 0.0]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("order", ["asc", "desc", "unsorted"])
def test_invalid_prices_are_rejected_naming_the_level(bad, order):
    px = {"asc": [1.0, 2.0, 3.0, 4.0], "desc": [4.0, 3.0, 2.0, 1.0], "unsorted": [2.0, 4.0, 1.0, 3.0]}[order]
    px[2] = bad
    with pytest.raises(ValueError, match=r"price at level 2 is .*finite and positive"):
        bucket_side(np.array(px), np.ones(4), 1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0])
def test_invalid_quantities_are_rejected_naming_the_level(bad):
    with pytest.raises(ValueError, match=r"quantity at level 1 .* must be finite and >= 0"):
        bucket_side(np.array([1.0, 2.0, 3.0]), np.array([1.0, bad, 1.0]), 1.0)


@settings(max_examples=100, deadline=None)
@given(books(max_levels=50), st.sampled_from(BAD), st.data())
def test_a_bad_price_anywhere_is_never_bucketed(book, bad, data):
    px, qty = book
    assume(len(px) > 0)
    i = data.draw(st.integers(0, len(px) - 1))
    px = px.copy()
    px[i] = bad
    with pytest.raises(ValueError, match=rf"price at level {i} "):
        bucket_side(px, qty, 1.0)


def test_negative_zero_quantity_is_a_zero():
    out = bucket_side(np.array([1.0, 2.0]), np.array([-0.0, 1.0]), 1.0)
    assert out.qty.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("size", [0.0, -1.0, math.nan, math.inf])
def test_invalid_bucket_sizes_are_rejected(size):
    with pytest.raises(ValueError, match="bucket size"):
        bucket_side(np.array([1.0]), np.array([1.0]), size)


def test_bucket_too_fine_for_the_price_is_rejected():
    # 1e9 / 1e-8 = 1e17 buckets: far beyond MAX_INDEX, where the edge tolerance would span buckets
    with pytest.raises(ValueError, match=r"too fine for price 1000000000.0 at level 1"):
        bucket_side(np.array([1.0, 1e9]), np.array([1.0, 1.0]), 1e-8)


def test_mismatched_or_multidimensional_inputs_are_rejected():
    with pytest.raises(ValueError, match="one length"):
        bucket_side(np.array([1.0, 2.0]), np.array([1.0]), 1.0)
    with pytest.raises(ValueError, match="1-d"):
        bucket_side(np.ones((2, 2)), np.ones((2, 2)), 1.0)


def test_numpy_index_matches_the_kernel_bit_for_bit():
    rng = np.random.default_rng(7)
    for size in (1.0, 0.01, 0.005, 0.0001, 0.015, 7.0):
        # on-edge, near-edge and random prices over many magnitudes
        base = np.maximum(np.round(10.0 ** rng.uniform(-3, 8, 4000) / size), 1.0) * size
        px = np.sort(np.concatenate([base, np.nextafter(base, 0), np.nextafter(base, np.inf)]))
        out = bucket_side(px, np.ones_like(px), size)
        assert np.array_equal(out.px, bucket_edges(np.unique(bucket_keys(px, size)), size))
        assert out.volume_out == px.size

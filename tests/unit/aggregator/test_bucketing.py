"""Bucketing conserves volume exactly and puts each level in the bucket of its price."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from depthflow.aggregator.bucketing import bucket_keys, bucket_side

prices = st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False)
qtys = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
sizes = st.sampled_from([1.0, 0.5, 0.01, 0.005, 10.0, 100.0])


@st.composite
def books(draw):
    n = draw(st.integers(0, 300))
    px = draw(arrays(np.float64, n, elements=prices))
    qty = draw(arrays(np.float64, n, elements=qtys))
    order = draw(st.sampled_from(["asc", "desc", "any"]))
    if order == "asc":
        idx = np.argsort(px, kind="stable")
    elif order == "desc":
        idx = np.argsort(-px, kind="stable")
    else:
        idx = np.arange(n)
    return px[idx], qty[idx]


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


def test_empty_and_single_level_sides():
    out = bucket_side(np.empty(0), np.empty(0), 1.0)
    assert out.px.size == 0
    out = bucket_side(np.array([60001.37]), np.array([0.25]), 1.0)
    assert out.px.tolist() == [60001.0]
    assert out.qty.tolist() == [0.25]


def test_price_on_a_bucket_edge_lands_in_its_own_bucket():
    # 0.29 / 0.01 is 28.999999999999996 in binary floating point
    out = bucket_side(np.array([0.29, 0.2899]), np.array([1.0, 2.0]), 0.01)
    assert np.allclose(out.px, [0.28, 0.29])
    assert out.qty.tolist() == [2.0, 1.0]


def test_descending_bids_bucket_like_ascending():
    px = np.array([100.9, 100.2, 99.7, 99.1, 98.0])
    qty = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = bucket_side(px, qty, 1.0)
    assert out.px.tolist() == [98.0, 99.0, 100.0]
    assert out.qty.tolist() == [5.0, 7.0, 3.0]

"""``analyse``: zones on the right side of the mid, levels, vacuums, resonance, and edge cases."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from depthflow.common.messages import Zone
from depthflow.common.pricing import bucket_edges
from depthflow.peaks import find_wave_peaks
from depthflow.peaks import zones as core
from depthflow.peaks.zones import ZONE_FIELDS, ZONE_KINDS, Analysis, PeakParams, analyse
from tests.unit.peaks import zones_reference as reference

SIZE = 1.0
MID = 100.0


def side(lo: int, hi: int, base: float, walls: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Buckets ``lo..hi`` (lower edges) with a gently varying ``base`` volume and some walls."""
    px = np.arange(lo, hi + 1, dtype=float) * SIZE
    qty = base * (1 + 0.1 * np.sin(np.arange(px.size)))
    for price, q in walls.items():
        qty[price - lo] = q
    return px, qty


def book(**kw: object) -> Analysis:
    bid_px, bid_q = side(60, 99, 1.0, {95: 30.0, 80: 20.0})
    ask_px, ask_q = side(100, 139, 1.0, {106: 25.0, 120: 15.0})
    args = {
        "bid_px": bid_px,
        "bid_qty": bid_q,
        "ask_px": ask_px,
        "ask_qty": ask_q,
        "bucket_size": SIZE,
        "mid": MID + 0.5,
        "known_low": 60.0,
        "known_high": 140.0,
    }
    args.update(kw)
    return analyse(**args)  # type: ignore[arg-type]


def zs(rows: np.ndarray) -> list[Zone]:
    """The core's zone rows as the wire's zones (what the handler publishes)."""
    assert rows.shape[1:] == (len(ZONE_FIELDS),)
    return [Zone(**dict(zip(ZONE_FIELDS, (*r[:-1], ZONE_KINDS[int(r[-1])]), strict=True)))
            for r in rows.tolist()]


def prices(zones: list[Zone]) -> list[float]:
    return sorted(z.price for z in zones)


def test_walls_become_support_below_and_resistance_above_the_mid():
    out = book()
    assert prices(zs(out.support)) == [80.5, 95.5]
    assert prices(zs(out.resistance)) == [106.5, 120.5]
    assert [z.price for z in zs(out.support)] == [95.5, 80.5]  # strongest first
    for z in zs(out.support):
        assert z.low < z.high <= MID + 0.5
        assert z.price < MID + 0.5
        assert 0 < z.strength <= 1
        assert 0 <= z.confidence <= 1


def test_without_trades_the_levels_come_from_the_book():
    out = book()
    assert out.poc == 95.0  # the biggest wall, lower edge of its bucket
    assert out.value_area_low <= out.poc < out.value_area_high
    assert 95.0 in out.high_volume_nodes


def test_with_trades_the_levels_come_from_the_trade_profile():
    tpx = np.arange(90, 111, dtype=float)
    tvol = np.full(tpx.size, 2.0)
    tvol[tpx == 103] = 50.0
    out = book(trade_px=tpx, trade_vol=tvol)
    assert out.poc == 103.0
    assert out.value_area_low >= 90
    assert out.value_area_high <= 111


def test_a_book_peak_and_a_trade_peak_together_are_a_resonance():
    tpx = np.arange(85, 116, dtype=float)
    tvol = np.full(tpx.size, 1.0)
    tvol[tpx == 96] = 40.0  # one bucket from the bid wall at 95: resonance
    tvol[tpx == 112] = 40.0  # no book peak near: a trade-only resistance zone
    out = book(trade_px=tpx, trade_vol=tvol)
    assert len(zs(out.resonance)) == 1
    (res,) = zs(out.resonance)
    assert res.low <= 95
    assert res.high >= 97
    assert 95 < res.price < 97
    assert 112.5 in prices(zs(out.resistance))  # from the trades
    # the trade peak at 96 resonates with the book's wall at 95: one support zone, not two
    assert 95.5 in prices(zs(out.support))
    assert 96.5 not in prices(zs(out.support))
    # the tolerance is a fraction of the price, at least a bucket: 3 buckets here, then 1
    tvol[tpx == 96], tvol[tpx == 98] = 1.0, 40.0
    wide = book(trade_px=tpx, trade_vol=tvol, params=PeakParams(resonance_tolerance=3 / 100.5))
    assert len(zs(wide.resonance)) == 1
    tight = book(trade_px=tpx, trade_vol=tvol)
    assert zs(tight.resonance) == []
    assert 98.5 in prices(zs(tight.support))


def test_a_wall_at_the_touch_is_a_zone():
    bid_px, bid_q = side(60, 99, 1.0, {99: 30.0})
    ask_px, ask_q = side(100, 139, 1.0, {100: 30.0})
    out = book(bid_px=bid_px, bid_qty=bid_q, ask_px=ask_px, ask_qty=ask_q, mid=100.0)
    assert 99.5 in prices(zs(out.support))
    assert 100.5 in prices(zs(out.resistance))


def test_a_bucket_holding_the_mid_is_split_at_the_mid():
    bid_px, bid_q = side(60, 100, 1.0, {100: 30.0})  # the best bid's bucket holds the mid too
    ask_px, ask_q = side(100, 139, 1.0, {100: 30.0})
    out = book(bid_px=bid_px, bid_qty=bid_q, ask_px=ask_px, ask_qty=ask_q, mid=100.5)
    (top,) = [z for z in zs(out.support) if z.high > 100]
    assert top.high == 100.5
    assert top.price == 100.25
    (bottom,) = [z for z in zs(out.resistance) if z.low < 101]
    assert bottom.low == 100.5
    assert bottom.price == 100.75


def test_vacuums_are_reported_only_inside_the_known_range():
    bid_px, bid_q = side(60, 99, 1.0, {})
    bid_q[(bid_px >= 70) & (bid_px < 75)] = 0.0  # a thin band inside
    out = book(bid_px=bid_px, bid_qty=bid_q, known_low=60.0, known_high=140.0)
    assert out.vacuums == [(70.0, 75.0)]
    # a snapshot that covers less: nothing outside its range is called empty
    narrow = book(bid_px=bid_px, bid_qty=bid_q, known_low=72.0, known_high=90.0)
    assert narrow.vacuums == [(72.0, 75.0)]
    beyond = book(known_low=40.0, known_high=150.0)  # no levels 40..59 and 140..149: known empty
    assert beyond.vacuums == [(40.0, 60.0), (140.0, 150.0)]


def test_a_vacuum_must_be_a_fraction_of_the_price_wide_not_a_number_of_buckets():
    # the same book bucket for bucket, two thin buckets in it: at a price of ~100 they are 2 % of
    # it (a vacuum), at ~60,000 with the same bucket 3e-5 of it (under vacuum_min_width, 5e-5)
    qty = np.full(40, 5.0)
    qty[10:12] = 0.0
    for base, want in ((60.0, 1), (59_960.0, 0)):
        px = base + np.arange(40.0)
        ask_px = base + 40 + np.arange(40.0)
        out = analyse(px, qty, ask_px, np.full(40, 5.0), 1.0, base + 40, base, base + 80)
        assert len(out.vacuums) == want, base


def test_the_value_area_grows_by_a_fraction_of_the_price_not_by_a_number_of_rows():
    # CBOT's worked example (test_detection): one row a step gives 105-108, two rows 104-108. With
    # 1-unit rows the step of 3.2e-5 of the price is one row at ~100 and two at ~60,000
    vol = np.array([10, 15, 20, 60, 70, 150, 90, 80, 50, 10], dtype=float)
    none = np.empty(0)
    for base, low in ((0.0, 105.0), (59_900.0, 60_004.0)):
        px = base + np.arange(101.0, 111.0)
        out = analyse(none, none, none, none, 1.0, base + 105.5, 0.0, 0.0, px, vol)
        assert (out.value_area_low, out.value_area_high) == (low, base + 109.0)


def test_max_zones_caps_each_side():
    walls = {p: 10.0 + p % 7 for p in range(62, 99, 8)}
    bid_px, bid_q = side(60, 99, 1.0, walls)
    out = book(bid_px=bid_px, bid_qty=bid_q, params=PeakParams(max_zones=3))
    assert len(zs(out.support)) == 3
    ranks = [(z.confidence, z.strength) for z in zs(out.support)]
    assert ranks == sorted(ranks, reverse=True)


def row(low: float, strength: float, confidence: float) -> list[float]:
    """A zone row as the kernels hold it (ZONE_FIELDS, then the peak bucket's lower edge)."""
    return [low, low + 1, low + 0.5, 100 * strength, strength, confidence, 0.0, low]  # a wave


def test_book_and_trade_zones_compete_for_a_sides_places_by_confidence():
    book_rows = np.array([row(90, 0.5, 0.6), row(70, 0.3, 0.8)])
    trade_rows = np.array([row(80, 0.1, 0.9), row(60, 0.4, 0.8)])
    ranked = core._side(book_rows, trade_rows, 0.0, 3)
    # the trade zone at 80 is the most confident; 60 and 70 tie there: the larger share first
    assert ranked[:, 0].tolist() == [80, 60, 70]
    assert core._side(book_rows, trade_rows, 0.0, 1)[:, 0].tolist() == [80]


def test_walls_and_wave_peaks_are_both_zones_each_of_its_kind():
    bid_px, bid_q = side(60, 99, 1.0, {95: 30.0})
    bid_q[78 - 60 : 83 - 60] += [4.0, 10.0, 14.0, 10.0, 4.0]  # a hump around 80: a wave
    out = book(bid_px=bid_px, bid_qty=bid_q)
    kinds = {z.price: z.kind for z in zs(out.support)}
    assert kinds == {95.5: "wall", 80.5: "wave"}
    assert {z.kind for z in zs(out.resistance)} == {"wall"}  # 106 and 120: one bucket each


def test_empty_book_gives_empty_lists_and_levels_at_the_mid():
    e = np.empty(0)
    out = analyse(e, e, e, e, 1.0, 100.0, 0.0, 0.0)
    assert (out.poc, out.value_area_low, out.value_area_high) == (100.0, 100.0, 100.0)
    assert zs(out.support) == zs(out.resistance) == zs(out.resonance) == []
    assert out.vacuums == out.high_volume_nodes == out.low_volume_nodes == []
    out = analyse(e, e, e, e, 1.0, 100.0, 0.0, 0.0, trade_px=e, trade_vol=e)
    assert zs(out.support) == []
    assert out.poc == 100.0


def test_degenerate_books_do_not_raise():
    one = np.array([99.0]), np.array([3.0])
    flat_px = np.arange(100.0, 140.0)
    cases = [
        (*one, *one),  # one bucket per side, both below the mid
        (np.arange(60.0, 100.0), np.full(40, 2.0), flat_px, np.full(40, 2.0)),  # all equal
        (np.arange(60.0, 100.0), np.zeros(40), flat_px, np.zeros(40)),  # all zero
        (np.array([99.0]), np.array([np.nan]), flat_px, np.full(40, np.inf)),  # garbage volumes
    ]
    for bp, bq, ap, aq in cases:
        for mid in (100.0, -5.0, 1e6, float("nan")):
            out = analyse(bp, bq, ap, aq, 1.0, mid, 60.0, 140.0)
            assert all(z.high <= mid for z in zs(out.support))
            assert all(z.low >= mid for z in zs(out.resistance))
    assert zs(analyse(*one, *one, 0.0, 100.0, 0.0, 1.0).support) == []  # no bucket size


def test_mid_outside_the_data_leaves_the_other_side_empty():
    out = book(mid=1000.0)
    assert zs(out.resistance) == []  # every ask is below a mid of 1000: no resistance
    assert prices(zs(out.support)) == [80.5, 95.5]  # support still comes from the bids only
    out = book(mid=10.0)
    assert zs(out.support) == []
    assert prices(zs(out.resistance)) == [106.5, 120.5]


def test_a_profile_far_from_the_mid_still_has_zones():
    # a lone trade bucket ~700 x 0.0006 above the mid (once, weights exp(-distance / length)
    # underflowed there): alone on an empty stretch, it is a wall
    none = np.empty(0)
    out = analyse(none, none, none, none, 0.01, 0.12109375, 0.0, 0.01, np.array([0.55]), np.array([1.0]),
                  PeakParams(min_relative_volume=0.0))
    assert prices(zs(out.resistance)) == [0.555]


def test_the_grid_cap_keeps_the_buckets_nearest_the_mid():
    bid_px, bid_q = side(60, 99, 1.0, {95: 30.0})
    bid_px = np.concatenate(([1.0], bid_px))  # a stray level far away
    bid_q = np.concatenate(([500.0], bid_q))
    out = book(bid_px=bid_px, bid_qty=bid_q, params=PeakParams(max_buckets=50))
    assert 95.5 in prices(zs(out.support))
    assert 1.5 not in prices(zs(out.support))


# --- properties -------------------------------------------------------------------------------------


@st.composite
def sparse_side(draw: st.DrawFn, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(draw(st.sets(st.integers(lo, hi), max_size=80)))
    qty = draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(0, 1e4, allow_nan=False, allow_infinity=False)),
            min_size=len(keys),
            max_size=len(keys),
        )
    )
    return np.array(keys, dtype=float), np.array(qty, dtype=float)


@settings(max_examples=150, deadline=None)
@given(
    sparse_side(0, 120),
    sparse_side(80, 200),
    sparse_side(50, 150),
    st.floats(-10, 210),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.sampled_from([0.7, 1.5]),
    st.sampled_from([0.0, 0.01, 0.05]),  # value-area step: one row, a few, many
)
def test_zones_are_on_their_side_and_inside_the_data(bids, asks, trades, mid, size, smooth, step):
    (bp, bq), (ap, aq), (tp, tq) = bids, asks, trades
    bp, ap, tp = bp * size, ap * size, tp * size
    known_low = min([*bp.tolist(), *ap.tolist()], default=0.0)
    known_high = max([*bp.tolist(), *ap.tolist()], default=0.0) + size
    params = replace(PeakParams(smooth=smooth, min_relative_volume=0.0), value_area_step=step)
    out = analyse(bp, bq, ap, aq, size, mid, known_low, known_high, tp, tq, params)

    data = np.concatenate((bp, ap, tp))
    lo_all = data.min() if data.size else mid
    hi_all = data.max() + size if data.size else mid
    for z in zs(out.support):
        assert z.low <= z.price < mid
        assert z.low < z.high <= mid
        assert lo_all <= z.low
        assert z.high <= hi_all
    for z in zs(out.resistance):
        assert mid < z.price <= z.high
        assert mid <= z.low < z.high
        assert lo_all <= z.low
        assert z.high <= hi_all
    for z in [*zs(out.support), *zs(out.resistance), *zs(out.resonance)]:
        assert 0 <= z.confidence <= 1
        assert 0 <= z.strength <= 1 + 1e-9
        assert z.volume >= 0
    assert len(zs(out.support)) <= params.max_zones
    assert len(zs(out.resistance)) <= params.max_zones
    for zones in (zs(out.support), zs(out.resistance), zs(out.resonance)):  # one level, one zone
        for i, z in enumerate(zones):  # (a wall may stand inside a hump's band)
            assert all(z.high <= y.low or y.high <= z.low for y in zones[:i] if y.kind == z.kind)
    for a, b in out.vacuums:
        assert known_low <= a < b <= known_high
    if (tq > 0).any() or (bq > 0).any() or (aq > 0).any():
        assert out.value_area_low <= out.poc < out.value_area_high
        assert lo_all <= out.value_area_low
        assert out.value_area_high <= hi_all


@settings(max_examples=150, deadline=None)
@given(
    sparse_side(0, 120),
    sparse_side(80, 200),
    sparse_side(50, 150),
    st.integers(90, 110),
    st.floats(0.05, 0.95),
    st.sampled_from([1, 2, 5]),
    st.integers(-6, 3),
    st.sampled_from([0.7, 1.5]),
)
def test_scaling_every_price_and_the_bucket_by_a_power_of_ten_scales_the_output_and_nothing_else(
    bids, asks, trades, mid_key, mid_frac, multiple, k, smooth
):
    """A coin at 0.000083 and one at 83,000 with the same book shape get the same analysis: every
    threshold is relative to the price or to the profile's own volume, none counts dollars."""
    (bk, bq), (ak, aq), (tk, tq) = bids, asks, trades
    params = PeakParams(smooth=smooth)

    def run(size: float) -> Analysis:
        # prices are bucket edges as the aggregator labels them; the sizes decimals, as it picks them
        bp, ap, tp = bucket_edges(bk, size), bucket_edges(ak, size), bucket_edges(tk, size)
        mid = float(bucket_edges(mid_key, size)) + mid_frac * size
        known_low = float(bucket_edges(min([*bk, *ak], default=mid_key), size))
        known_high = float(bucket_edges(max([*bk, *ak], default=mid_key) + 1, size))
        return analyse(bp, bq, ap, aq, size, mid, known_low, known_high, tp, tq, params)

    base, scaled = run(float(multiple)), run(float(f"{multiple}e{k}"))
    factor = 10.0**k
    for name in ("support", "resistance", "resonance"):
        want, got = getattr(base, name), getattr(scaled, name)
        assert got.shape == want.shape, name
        prices_at = [ZONE_FIELDS.index(f) for f in ("low", "high", "price")]
        rest = [ZONE_FIELDS.index(f) for f in ("volume", "strength", "confidence", "kind")]
        np.testing.assert_allclose(got[:, prices_at], want[:, prices_at] * factor, rtol=1e-9)
        np.testing.assert_allclose(got[:, rest], want[:, rest], rtol=1e-9)
    levels = ("poc", "value_area_low", "value_area_high")
    want_levels = [getattr(base, n) * factor for n in levels]
    np.testing.assert_allclose([getattr(scaled, n) for n in levels], want_levels, rtol=1e-9)
    for name in ("high_volume_nodes", "low_volume_nodes", "vacuums"):
        want, got = np.array(getattr(base, name)), np.array(getattr(scaled, name))
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want * factor, rtol=1e-9)


def same(a: object, b: object) -> bool:
    """Equal structure, floats equal up to the rounding of differently ordered sums."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return same(np.asarray(a).tolist(), np.asarray(b).tolist())
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    sparse_side(0, 120),
    sparse_side(80, 200),
    sparse_side(50, 150),
    st.one_of(st.floats(-10, 210), st.just(float("nan"))),
    st.sampled_from([0.5, 1.0, 2.0, 0.01]),
    st.sampled_from([0.7, 1.5]),
    st.sampled_from([0.0, 0.01, 0.05]),  # value-area step: one row, a few, many
    st.sampled_from([20_000, 30]),
)
# (issue 9, when the detectors weighted buckets by their distance from the mid) the weighted mean
# of the bids sat far from their first bucket: a one-pass variance cancelled there
@example(
    (np.array([0.0, 1.0, 2.0, 3.0, 96.0]), np.array([1.53125, 0.0, 0.0, 0.0, 1.0])),
    (np.empty(0), np.empty(0)),
    (np.array([50.0, 51.0, 94.0]), np.array([0.0, 1.0, 1.0])),
    41.02169223669082, 0.5, 1.5, 0.0, 20_000,
)
# (issue 9) the only volume lay ~720 weight lengths beyond the nearest bucket
@example(
    (np.empty(0), np.empty(0)),
    (np.empty(0), np.empty(0)),
    (np.array([50.0, 51.0, 52.0, 94.0]), np.array([0.0, 0.0, 0.0, 1.0])),
    25.0, 2.0, 1.5, 0.0, 20_000,
)
def test_the_kernels_agree_with_the_object_by_object_reference(
    bids, asks, trades, mid, size, smooth, step, max_buckets
):
    (bp, bq), (ap, aq), (tp, tq) = bids, asks, trades
    bp, ap, tp = bp * size, ap * size, tp * size
    params = PeakParams(smooth=smooth, min_relative_volume=0.0, value_area_step=step, max_buckets=max_buckets)
    args = (bp, bq, ap, aq, size, mid, bp.min(initial=0.0), ap.max(initial=0.0) + size, tp, tq, params)
    got, want = analyse(*args), reference.analyse(*args)
    for name in Analysis.__dataclass_fields__:
        assert same(getattr(got, name), getattr(want, name)), name


def test_levels_summing_past_the_float_range_fail_closed():
    # two finite levels in one bucket sum to inf: the analysis refuses, naming why, and nothing
    # non-finite reaches a zone
    big = np.finfo(np.float64).max
    bpx, bq = np.array([95.0, 95.25, 97.0]), np.array([big, big, 1.0])
    with pytest.raises(ValueError, match="sum past the float range"):
        analyse(bpx, bq, np.array([105.0]), np.array([1.0]), 1.0, 100.0, 90.0, 110.0)


def test_the_analysis_finds_the_waves_and_walls_find_wave_peaks_finds():
    # the service's zones come from the public detector's kernel with the service's parameters:
    # a trade profile alone (its grid: one zero bucket padded on each side), every zone below the
    # mid, room for all of them, and parameters that are not the defaults
    rng = np.random.default_rng(5)
    x = np.arange(300)
    vol = 20.0 + rng.normal(0.0, 1.0, x.size)
    for centre, width, height in ((60, 4, 12.0), (150, 6, 9.0), (260, 3, 10.0)):
        vol += height * np.exp(-0.5 * ((x - centre) / width) ** 2)
    vol[100] = vol[230] = 400.0  # walls
    px = 1000.0 + x
    params = PeakParams(max_zones=100, prominence_z=2.0, wall_z=5.0, narrow_z=0.0)
    none = np.empty(0)
    out = analyse(none, none, none, none, 1.0, 2000.0, 0.0, 0.0, px, vol, params)
    grid_px, grid_vol = np.concatenate(([999.0], px, [1300.0])), np.concatenate(([0.0], vol, [0.0]))
    found = find_wave_peaks(grid_px, grid_vol, params=params)
    want = sorted((float(grid_px[f.low_index]), float(grid_px[f.high_index]) + 1.0, f.price + 0.5,
                   f.confidence, float(kind))
                  for kind, features in enumerate((found.peaks, found.walls)) for f in features)
    got = sorted(tuple(row) for row in out.support[:, [0, 1, 2, 5, 6]].tolist())
    assert len(found.peaks) >= 3
    assert len(found.walls) == 2
    assert got == want

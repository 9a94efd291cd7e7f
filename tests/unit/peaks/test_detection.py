"""Peaks, point of control and value area on profiles with known answers."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from depthflow.peaks.detection import point_of_control, value_area, zscore_peaks


def test_planted_peaks_are_found_with_their_zone():
    vol = np.ones(100)
    vol[30:33] = [10, 20, 10]
    vol[70] = 30
    peaks = zscore_peaks(vol, z_min=1.5, min_volume=5)
    assert [p.index for p in peaks] == [31, 70]
    assert (peaks[0].low_index, peaks[0].high_index) == (30, 32)


def test_flat_or_tiny_profiles_have_no_peaks():
    assert zscore_peaks(np.ones(50)) == []
    assert zscore_peaks(np.array([1.0, 9.0])) == []


def test_min_volume_filters_statistical_peaks_that_are_too_small():
    vol = np.full(50, 0.1)
    vol[10] = 4.0
    assert zscore_peaks(vol, min_volume=5.0) == []
    assert [p.index for p in zscore_peaks(vol, min_volume=1.0)] == [10]


def test_point_of_control_ties_go_to_the_middle():
    px = np.arange(10, dtype=float)
    vol = np.array([5, 1, 1, 1, 5, 1, 1, 1, 1, 5], dtype=float)
    assert point_of_control(px, vol) == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=200), st.floats(0.1, 1.0))
def test_value_area_holds_the_fraction_and_contains_the_poc(values, fraction):
    vol = np.array(values)
    px = np.arange(vol.size, dtype=float)
    poc = point_of_control(px, vol)
    lo, hi = value_area(vol, poc, fraction)
    assert lo <= poc <= hi
    assert vol[lo : hi + 1].sum() >= fraction * vol.sum() - 1e-9

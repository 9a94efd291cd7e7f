"""The suite's properties draw the same examples on every run (the ci profile of
tests/conftest.py): a property cannot pass on one run and fail on the next."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.skipif(os.environ.get("DEPTHFLOW_HYPOTHESIS", "ci") != "ci", reason="exploring on purpose")
def test_two_runs_of_a_property_draw_the_same_examples() -> None:
    runs: list[list[float]] = [[], []]
    for drawn in runs:

        @given(st.floats(allow_nan=False))
        def prop(x: float) -> None:
            drawn.append(x)  # noqa: B023 (each run appends to its own list, on purpose)

        prop()
    assert len(runs[0]) > 10
    assert runs[0] == runs[1]

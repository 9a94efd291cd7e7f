"""``check_quantities`` refuses exactly what is not finite and >= 0, whatever the array's byte
order, and names the first offender."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from depthflow.common.messages import check_quantities

special = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7e308, -1.0, np.inf, -np.inf, np.nan])


@given(st.lists(special | st.floats(allow_nan=True, allow_infinity=True), max_size=40), st.booleans())
def test_a_quantity_is_refused_exactly_when_not_finite_and_non_negative(values, big_endian):
    a = np.array(values, dtype=">f8" if big_endian else "<f8")
    bad = [i for i, x in enumerate(values) if not 0.0 <= x < np.inf]
    if not bad:
        check_quantities("q", a)
        return
    with pytest.raises(ValueError, match=rf"^q\[{bad[0]}\] is "):
        check_quantities("q", a)

"""Logged input rows are packed (numbers as float64 bytes) and come back exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from predictions.fields import pack_rows, unpack_rows

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
words = st.text(max_size=12)


@given(st.data())
def test_any_table_of_numbers_and_words_comes_back_as_it_went_in(data):
    kinds = data.draw(st.lists(st.sampled_from("ft"), min_size=1, max_size=6))
    rows = data.draw(st.lists(st.tuples(*[finite if k == "f" else words for k in kinds]),
                              max_size=20))
    rows = [list(row) for row in rows]
    assert unpack_rows(pack_rows(rows)) == rows
    if rows:
        matrix = np.asarray(rows, dtype=object if "t" in kinds else np.float64)
        assert unpack_rows(pack_rows(matrix)) == rows


def test_numbers_take_eight_bytes_each_not_their_decimal_text():
    rows = np.random.default_rng(0).normal(size=(1000, 20))
    packed = pack_rows(rows)
    assert len(packed) < 1000 * 20 * 8 + 64
    np.testing.assert_array_equal(np.asarray(unpack_rows(packed)), rows)


def test_a_log_that_kept_no_rows_packs_to_an_empty_table():
    assert unpack_rows(pack_rows([])) == []
    assert unpack_rows(pack_rows(np.empty((0, 3)))) == []

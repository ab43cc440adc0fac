"""Intensity helpers shared by the backends: the finiteness check agrees with torch.isfinite."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.backends.intensity import all_finite

special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, -1e-45])


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.floats(width=32), special), min_size=1, max_size=40))
def test_all_finite_agrees_with_isfinite(values):
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor(values, dtype=dtype)
        assert all_finite(x) == bool(torch.isfinite(x).all())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_one_bad_value_anywhere_in_a_volume_is_found(bad):
    x = torch.rand(2, 3, 9, 8, 7)
    x[1, 2, 4, 0, 6] = bad
    assert not all_finite(x)
    assert all_finite(torch.rand(2, 3, 9, 8, 7))


def test_integer_and_empty_tensors_are_finite():
    assert all_finite(torch.arange(5))
    assert all_finite(torch.empty(0))

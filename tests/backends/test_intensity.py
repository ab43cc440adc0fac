"""Intensity helpers shared by the backends: the finiteness check agrees with torch.isfinite."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from extreme_inputs import image_batches
from monai_hsmix.backends.intensity import all_finite, channels_to_uint8_range, float32_maps

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


@settings(max_examples=80, deadline=None)
@given(batch=image_batches())
def test_float32_maps_keep_every_images_min_max_scaling(batch):
    # values at float32's limits, float64 beyond them: the [0, 1] scaling computed in float32 from
    # these maps is finite and within a few float32 ulps of the exact one
    x, kind, dtype, _ = batch
    maps, lo, hi = float32_maps(x)
    assert maps.dtype == lo.dtype == hi.dtype == torch.float32 and maps.shape == x.shape
    view = (x.shape[0],) + (1,) * (x.ndim - 1)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    unit = (maps - lo.view(view)) / span.view(view)
    exact = x.double() if dtype == torch.float64 else x.float().double()  # what each dtype holds
    flat = exact.reshape(x.shape[0], -1)
    # in quarters: the range of values near 1.7e308 is finite there
    e_lo, e_hi = flat.amin(1).view(view) / 4, flat.amax(1).view(view) / 4
    e_span = torch.where(e_hi > e_lo, e_hi - e_lo, torch.ones_like(e_hi))
    truth = (exact / 4 - e_lo) / e_span
    assert bool(torch.isfinite(unit).all()), f"{kind} {dtype}"
    assert float((unit.double() - truth).abs().max()) <= 2.0**-21, f"{kind} {dtype}"
    levels = channels_to_uint8_range(x)
    assert bool(((levels >= 0) & (levels <= 255)).all())


def test_float32_maps_leave_safe_float32_maps_as_they_are():
    x = torch.rand(2, 3, 8, 8) * 1e6 - 5
    maps, lo, hi = float32_maps(x)
    assert maps.data_ptr() == x.data_ptr()  # no copy on the hot path
    assert torch.equal(lo, x.flatten(1).amin(1)) and torch.equal(hi, x.flatten(1).amax(1))


def test_a_huge_image_quantises_like_the_same_image_scaled_by_a_power_of_two():
    # 8-bit levels depend on the min-max scaling only: 3e38 images (whose float32 range overflows)
    # get the levels of the same image divided by 2**100, exactly
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 2, 16, 16, generator=g) * 2 - 1) * 3.4e38
    assert torch.equal(channels_to_uint8_range(x), channels_to_uint8_range((x.double() * 2.0**-100).float()))
    tiny = torch.randint(0, 50, (1, 1, 16, 16), generator=g).float() * 1.4e-45  # subnormals only
    assert torch.equal(channels_to_uint8_range(tiny), channels_to_uint8_range((tiny.double() * 2.0**140).float()))

import numpy as np
import pytest

from monai_hsmix.core.ssd_constraints import (
    SSDConstraints,
    find_nucleus_placement,
    forbidden_region,
    mask_centroid,
    scale_factor,
    shape_factor,
)


def _disk(radius: int, size: int = None) -> np.ndarray:
    size = size or 2 * radius + 1
    r, c = np.mgrid[0:size, 0:size] - (size - 1) / 2
    return r**2 + c**2 <= radius**2


def test_scale_factor_is_max_over_min_and_symmetric():
    assert scale_factor(10, 40) == 4.0
    assert scale_factor(40, 10) == 4.0
    np.testing.assert_allclose(scale_factor(10, np.array([5, 10, 30])), [2.0, 1.0, 3.0])
    assert np.isinf(scale_factor(0, 5))


def test_shape_factor_is_zero_for_a_shifted_copy_and_ignores_crop_offsets():
    blob = np.zeros((9, 9), dtype=bool)
    blob[2:6, 3:8] = True
    padded = np.pad(blob, ((5, 0), (0, 7)))  # same shape, different place in its crop
    assert shape_factor(blob, padded) == 0.0


def test_shape_factor_counts_symmetric_difference_over_larger_area():
    square = np.ones((4, 4), dtype=bool)  # area 16, centroid (1.5, 1.5)
    bar = np.ones((2, 4), dtype=bool)  # area 8, centroid (0.5, 1.5): shifted down by 1 onto rows 1-2
    # aligned, the bar covers rows 1-2 of the square: the xor is the other 8 pixels
    assert shape_factor(square, bar) == pytest.approx(8 / 16)
    # a disk vs a long thin bar of similar area differs a lot
    assert shape_factor(_disk(5), np.ones((3, 27), dtype=bool)) > 0.8


def test_forbidden_region_grows_by_one_pixel_unless_touching_is_allowed():
    occupied = np.zeros((7, 7), dtype=bool)
    occupied[3, 3] = True
    assert forbidden_region(occupied, allow_touching=True).sum() == 1
    assert forbidden_region(occupied, allow_touching=False).sum() == 9


def test_find_nucleus_placement_respects_distance_bounds_and_free_space():
    rng = np.random.RandomState(0)
    constraints = SSDConstraints(delta=10, gamma=14)
    template = _disk(3)
    forbidden = np.zeros((64, 64), dtype=bool)
    forbidden[28:36, 28:36] = True
    for _ in range(20):
        corner = find_nucleus_placement(forbidden, template, (32.0, 32.0), constraints, rng)
        assert corner is not None
        top, left = corner
        cr, cc = mask_centroid(template)
        assert 10 <= np.hypot(top + cr - 32, left + cc - 32) <= 14
        assert top >= 0 and left >= 0 and top + 7 <= 64 and left + 7 <= 64
        assert not np.any(forbidden[top : top + 7, left : left + 7] & template)


def test_find_nucleus_placement_returns_none_when_nothing_fits():
    forbidden = np.ones((40, 40), dtype=bool)
    assert find_nucleus_placement(forbidden, _disk(2), (20.0, 20.0), SSDConstraints(), np.random.RandomState(0)) is None
    # annulus entirely outside a small image
    free = np.zeros((12, 12), dtype=bool)
    far = SSDConstraints(delta=30, gamma=40)
    assert find_nucleus_placement(free, _disk(2), (6.0, 6.0), far, np.random.RandomState(0)) is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilon": 0.5}, "epsilon"),
        ({"rho": -1}, "rho"),
        ({"delta": 5, "gamma": 2}, "delta"),
        ({"gamma": float("inf")}, "delta"),
    ],
)
def test_invalid_constraints_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SSDConstraints(**kwargs)

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from monai_hsmix.core.soft_mask import SoftMask, blend_weights, gaussian_mask, soft_mask, support_radius


def _expected(mask, alpha, num_rings, ring_width, metric):
    """Oracle from a distance transform: ring k holds voxels at distance in ((k-1)w, kw]."""
    dist = ndimage.distance_transform_cdt(~mask, metric=metric)
    ring = np.ceil(dist / ring_width)
    return np.where(mask, 1.0, np.where(ring <= num_rings, alpha**ring, 0.0))


masks_2d = arrays(np.bool_, st.tuples(st.integers(3, 12), st.integers(3, 12)))
masks_3d = arrays(np.bool_, st.tuples(st.integers(2, 6), st.integers(2, 6), st.integers(2, 6)))


@settings(max_examples=60, deadline=None)
@given(
    mask=st.one_of(masks_2d, masks_3d),
    alpha=st.floats(0.05, 0.95),
    num_rings=st.integers(0, 4),
    ring_width=st.integers(1, 3),
    connectivity=st.sampled_from(["full", "face"]),
    backend=st.sampled_from(["torch", "scipy"]),
)
def test_soft_mask_matches_ring_oracle(mask, alpha, num_rings, ring_width, connectivity, backend):
    if not mask.any():
        mask[(0,) * mask.ndim] = True
    out = soft_mask(mask, alpha, num_rings, ring_width, connectivity, backend=backend)
    metric = "chessboard" if connectivity == "full" else "taxicab"
    np.testing.assert_allclose(out, _expected(mask, alpha, num_rings, ring_width, metric), rtol=1e-6)
    assert np.all(out[mask] == 1.0)
    # non-increasing outward: sorted by distance from the lesion, weights never go up
    dist = ndimage.distance_transform_cdt(~mask, metric=metric).ravel()
    order = np.argsort(dist, kind="stable")
    by_ring = [out.ravel()[dist == d].max() for d in np.unique(dist[order])]
    assert all(a >= b for a, b in zip(by_ring, by_ring[1:]))


@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_soft_mask_empty_mask_is_zero_and_types_round_trip(backend):
    assert np.all(soft_mask(np.zeros((5, 5)), backend=backend) == 0)
    t = soft_mask(torch.zeros(4, 4, 4, dtype=torch.bool), backend=backend)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and torch.all(t == 0)


@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_soft_mask_batches_over_leading_axes(backend):
    rng = np.random.RandomState(0)
    batch = rng.rand(3, 2, 9, 9) > 0.9
    batch[0, 0] = False  # an empty item among non-empty ones
    out = soft_mask(batch, 0.5, 2, 1, spatial_dims=2, backend=backend)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(out[i, j], soft_mask(batch[i, j], 0.5, 2, 1, backend="torch"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": -0.2}, "alpha"),
        ({"num_rings": -1}, "num_rings"),
        ({"ring_width": 0}, "ring_width"),
        ({"connectivity": "diagonal"}, "connectivity"),
        ({"backend": "cuda"}, "backend"),
    ],
)
def test_soft_mask_rejects_bad_parameters(kwargs, match):
    mask = np.zeros((4, 4))
    mask[1, 1] = 1
    with pytest.raises(ValueError, match=match):
        soft_mask(mask, **kwargs)
    with pytest.raises(ValueError, match=match):
        SoftMask(**kwargs)


def test_soft_mask_needs_spatial_dims_for_4d():
    with pytest.raises(ValueError, match="spatial_dims"):
        soft_mask(np.zeros((2, 3, 4, 4)))


def test_soft_mask_class_equals_function():
    mask = np.zeros((7, 7, 7))
    mask[3, 2:4, 3] = 1
    np.testing.assert_array_equal(SoftMask(0.6, 2, 2)(mask), soft_mask(mask, 0.6, 2, 2))


def test_gaussian_mask_is_a_bounded_blur_inside_its_support():
    mask = np.zeros((41, 41), dtype=bool)
    mask[15:26, 15:26] = True
    out = gaussian_mask(mask, sigma=2.0)
    assert out.min() >= 0 and out.max() <= 1
    assert out[20, 20] > 0.97 and 0.3 < out[15, 20] < 0.7  # centre near 1, edge near 1/2
    r = support_radius("gaussian", sigma=2.0)
    grown = ndimage.binary_dilation(mask, iterations=r, structure=np.ones((3, 3)))
    assert np.all(out[~grown] == 0)
    np.testing.assert_allclose(out, out.T, atol=1e-6)


def test_blend_weights_modes():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    np.testing.assert_array_equal(blend_weights(mask, "hard"), mask.astype(np.float32))
    np.testing.assert_array_equal(blend_weights(mask, "soft", alpha=0.5, num_rings=1), soft_mask(mask, 0.5, 1))
    with pytest.raises(ValueError, match="mode"):
        blend_weights(mask, "cutmix")
    with pytest.raises(ValueError, match="mode"):
        support_radius("cutmix")
    with pytest.raises(ValueError, match="sigma"):
        gaussian_mask(mask, sigma=0)


@pytest.mark.parametrize("shape, spatial_dims", [((2, 17, 13), 2), ((1, 9, 8, 7), 3)])
@pytest.mark.parametrize("iterations", [1, 2])
def test_full_dilation_is_monais_dilate(shape, spatial_dims, iterations):
    # kept rather than monai.transforms.utils_morphological_ops.dilate: that one has only the full
    # (square / cube) element, which this test shows it matches, and convolves a (2k+1)^d kernel
    # (slower, docs/performance.md); "face" connectivity has no MONAI counterpart
    from monai.transforms.utils_morphological_ops import dilate as monai_dilate

    from monai_hsmix.core.soft_mask import dilate

    mask = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) > 0.9).float()
    ours = dilate(mask, spatial_dims, iterations, "full")
    theirs = monai_dilate(mask.unsqueeze(1), 2 * iterations + 1).squeeze(1)
    assert torch.equal(ours, theirs.float())

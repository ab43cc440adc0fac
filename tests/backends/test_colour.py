"""sRGB -> CIELAB on tensors: equal to scikit-image's rgb2lab, and the feature-space checks."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from monai_hsmix.backends.colour import check_slic_space, rgb_to_lab


def _skimage_lab(x: np.ndarray) -> np.ndarray:
    return np.stack([np.moveaxis(rgb2lab(np.moveaxis(img, 0, -1)), -1, 0) for img in x])


@pytest.mark.parametrize("shape", [(2, 3, 17, 19), (1, 3, 5, 6, 4)])
def test_matches_scikit_image_including_the_dark_linear_segment(shape):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=shape)
    x.reshape(shape[0], 3, -1)[0, :, :8] = np.linspace(0, 0.02, 8)  # below both breakpoints
    x.reshape(shape[0], 3, -1)[0, :, 8] = 1.0
    expected = np.stack(
        [np.moveaxis(rgb2lab(np.moveaxis(img.reshape(3, -1, 1), 0, -1)), -1, 0).reshape(img.shape) for img in x]
    )
    np.testing.assert_allclose(rgb_to_lab(torch.from_numpy(x)).numpy(), expected, atol=1e-9)
    ours32 = rgb_to_lab(torch.from_numpy(x).float())
    assert ours32.dtype == torch.float32
    np.testing.assert_allclose(ours32.numpy(), expected, atol=1e-3)


def test_primaries_land_on_the_textbook_lab_values():
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).T.reshape(1, 3, 3, 1)
    lab = rgb_to_lab(rgb.double())[0, :, :, 0].T
    np.testing.assert_allclose(lab[1].numpy(), [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(lab[2, 0].item(), 100.0, atol=1e-3)
    assert abs(lab[2, 1].item()) < 0.01 and abs(lab[2, 2].item()) < 0.01  # white is neutral under D65
    np.testing.assert_allclose(
        lab[0].numpy(), _skimage_lab(np.array([[[[1.0]], [[0.0]], [[0.0]]]]))[0, :, 0, 0], atol=1e-6
    )


def test_feature_space_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="3 channels, got 4"):
        check_slic_space("lab", 4)
    with pytest.raises(ValueError, match="slic_space must be one of"):
        check_slic_space("rgb", 3)
    check_slic_space("intensity", 3)  # three modalities or slices are never converted
    with pytest.raises(ValueError, match=r"\(B, 3"):
        rgb_to_lab(torch.rand(2, 4, 5, 5))

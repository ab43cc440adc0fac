"""Reference backends on main: scikit-image SLIC and OpenCV saliency wrappers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_hsmix.backends.reference import opencv_saliency, skimage_slic


def _acdc_slice(acdc_dir, size: int = 128) -> np.ndarray:
    nib = pytest.importorskip("nibabel")
    f = sorted((acdc_dir / "imagesTr").glob("*frame01.nii.gz"))[0]
    vol = np.asarray(nib.load(str(f)).dataobj, dtype=np.float32)
    h0, w0 = (vol.shape[0] - size) // 2, (vol.shape[1] - size) // 2
    return np.ascontiguousarray(vol[h0 : h0 + size, w0 : w0 + size, vol.shape[2] // 2])


def test_slic_contract_shape_dtype_contiguity():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 30, 40, generator=g)
    seg = skimage_slic(x, torch.tensor([5, 20, 60]), 1.0)
    assert seg.shape == (3, 30, 40) and seg.dtype == torch.int64 and seg.device == x.device
    for i in range(3):
        ids = torch.unique(seg[i])
        assert torch.equal(ids, torch.arange(len(ids)))
    vol = skimage_slic(torch.rand(2, 1, 12, 10, 8, generator=g), torch.tensor([4, 9]), 1.0, spacing=(2.0, 1.0, 1.0))
    assert vol.shape == (2, 12, 10, 8) and vol.dtype == torch.int64


def test_slic_does_not_convert_three_channels_to_lab(acdc_dir):
    img = _acdc_slice(acdc_dir)
    # three channels of one MRI slice: Lab conversion would treat them as RGB and, with a small
    # compactness, collapse the count to a few dozen segments
    x = torch.from_numpy(np.stack([img, img**2, np.sqrt(img)]))[None]
    seg = skimage_slic(x, torch.tensor([200]), 0.1)
    count = int(seg.max()) + 1
    assert 0.7 * 200 <= count <= 1.3 * 200


def test_slic_reads_channels_from_axis_one():
    # channel 0 has a vertical edge, channel 1 a horizontal one: with the channel axis moved
    # (not reshaped across) every superpixel lies inside one quadrant
    x = torch.zeros(1, 2, 32, 48)
    x[0, 0, :, 24:] = 1.0
    x[0, 1, 16:] = 1.0
    seg = skimage_slic(x, torch.tensor([24]), 0.1)[0].numpy()
    quadrant = (x[0, 0] + 2 * x[0, 1]).long().numpy()
    for v in np.unique(seg):
        assert len(np.unique(quadrant[seg == v])) == 1
    assert len(np.unique(seg)) >= 4


def test_saliency_contract_and_slicewise_3d():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 24, 20, generator=g)
    sal = opencv_saliency(x)
    assert sal.shape == (2, 24, 20) and sal.dtype == torch.float32
    assert sal.min() >= 0 and sal.max() <= 1
    vol = torch.rand(1, 2, 24, 20, 3, generator=g)
    sal3 = opencv_saliency(vol)
    assert sal3.shape == (1, 24, 20, 3)
    # the reference is 2D: slice z of a volume is the saliency of that slice alone once every
    # slice spans the same range (the 8-bit scaling is over the whole volume)
    vol[:, :, 0, 0], vol[:, :, 0, 1] = 0.0, 1.0
    torch.testing.assert_close(opencv_saliency(vol)[..., 1], opencv_saliency(vol[..., 1]))


def test_saliency_reads_float_intensities_as_levels():
    g = torch.Generator().manual_seed(2)
    levels = torch.randint(0, 256, (1, 1, 40, 40), generator=g).float()
    levels[0, 0, 0, 0], levels[0, 0, 0, 1] = 0.0, 255.0
    # any affine rescaling of the intensities maps back to the same 8-bit levels
    torch.testing.assert_close(opencv_saliency(levels), opencv_saliency(levels / 255 * 3.5 - 1.25))
    assert float(opencv_saliency(levels).max()) == 1.0


def test_saliency_rejects_1d_and_4d_spatial():
    with pytest.raises(ValueError):
        opencv_saliency(torch.rand(1, 1, 8))
    with pytest.raises(ValueError):
        opencv_saliency(torch.rand(1, 1, 4, 4, 4, 4))

"""HSMix in reduced precision and on every device: float16 / bfloat16 batches and ``torch.autocast``.

The inputs are multiples of 1/256, exactly representable in float16 and bfloat16, so a low-precision
batch holds the same values as its float32 twin: superpixels and saliency (computed on 8-bit levels in
float32) are then the same, and the outputs differ from float32 only by the rounding of the blends.
Tolerances (values in [0, 1]): float16 4e-3, bfloat16 2e-2, about two units in the last place of each
format's 11- and 8-bit significand at 1.0 (a blend rounds its operands and its result).
"""

import pytest
import torch

from monai_hsmix import RandHSMix

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
)
DEVICES = ["cpu", CUDA]
TOLERANCE = {torch.float16: 4e-3, torch.bfloat16: 2e-2}


def _batch(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d if len(shape) == 4 else torch.nn.functional.avg_pool3d
    images = smooth(torch.rand(shape, generator=g), 5, 1, 2)
    images = torch.round(images * 255) / 256  # exact in float16 and bfloat16
    labels = (images[:, :1] * 4).floor().clamp(0, 3).long()
    return images, labels


def _mix(**kw):
    opts = dict(num_classes=4, n_segments=(20, 40), compactness=0.1, p=0.3, mode="both")
    opts.update(kw)
    return RandHSMix(**opts)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(4, 2, 64, 64), (2, 1, 24, 24, 24)], ids=["2d", "3d"])
def test_low_precision_batch_matches_float32(device, dtype, shape):
    images, labels = _batch(shape)
    images, labels = images.to(device), labels.to(device)
    x32, y32, m32 = _mix().set_random_state(3)(images, labels, return_masks=True)
    x16, y16, m16 = _mix().set_random_state(3)(images.to(dtype), labels, return_masks=True)
    assert x16.dtype == dtype and x16.device.type == device
    assert bool(torch.isfinite(x16).all()) and bool(torch.isfinite(y16).all())
    # same superpixels and hard mask: the low-precision values are the float32 values
    assert torch.equal(m16.segments, m32.segments) and torch.equal(m16.hard_mask, m32.hard_mask)
    b = images.shape[0]
    assert torch.equal(x16[:b].float(), x32[:b])  # the hard sample copies pixels: exact
    tol = TOLERANCE[dtype]
    assert float((x16.float() - x32).abs().max()) <= tol
    assert float((y16.float() - y32).abs().max()) <= tol
    assert float((y16.float().sum(1) - 1).abs().max()) <= tol


@pytest.mark.parametrize("device", DEVICES)
def test_inside_autocast_same_as_outside(device):
    images, labels = _batch((4, 2, 64, 64), seed=1)
    images, labels = images.to(device), labels.to(device)
    x, y = _mix().set_random_state(5)(images, labels)
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    with torch.autocast(device_type=device, dtype=dtype):
        xa, ya = _mix().set_random_state(5)(images, labels)
    # autocast changes no dtype of HSMix (no matmul or convolution inside): the same float32 result
    assert xa.dtype == torch.float32 and ya.dtype == torch.float32
    torch.testing.assert_close(xa, x, atol=1e-6, rtol=0)
    torch.testing.assert_close(ya, y, atol=1e-6, rtol=0)

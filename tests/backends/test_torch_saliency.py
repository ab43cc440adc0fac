"""Torch fine-grained saliency: agreement with OpenCV, 3D behaviour, invariants and errors.

Every CPU test runs both implementations (``engine="torch"``: the torch operations a GPU runs;
``"numba"``: the fused CPU kernel), so each stays covered on a machine without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.backends.reference import opencv_saliency
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency

skimage_data = pytest.importorskip("skimage.data")

engines = pytest.mark.parametrize("engine", ["torch", "numba"])


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.reshape(-1).numpy(), b.reshape(-1).numpy())[0, 1])


def _acdc_mid_slices(acdc_dir, n_volumes: int = 3) -> list:
    nib = pytest.importorskip("nibabel")
    files = sorted((acdc_dir / "imagesTr").glob("*.nii.gz"))[:n_volumes]
    slices = []
    for f in files:
        vol = np.asarray(nib.load(str(f)).dataobj, dtype=np.float32)
        for z in (vol.shape[2] // 2 - 1, vol.shape[2] // 2):
            slices.append(torch.from_numpy(np.ascontiguousarray(vol[:, :, z])))
    return slices


@engines
@pytest.mark.parametrize("name", ["camera", "coins", "astronaut"])
def test_matches_opencv_on_sample_images(name, engine):
    img = getattr(skimage_data, name)()
    x = torch.from_numpy(img.astype(np.float32))
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]  # astronaut: 3 channels
    ours = torch_fine_grained_saliency(x, engine=engine)
    ref = opencv_saliency(x)
    assert ours.shape == ref.shape == (1,) + tuple(x.shape[2:])
    assert _pearson(ours, ref) >= 0.99
    # the port is step by step, so most pixels agree to the last 8-bit level
    assert float((ours - ref).abs().max()) <= 2 / 255 + 1e-6


@engines
def test_matches_opencv_on_acdc_slices(acdc_dir, engine):
    for sl in _acdc_mid_slices(acdc_dir):
        x = sl[None, None]
        assert _pearson(torch_fine_grained_saliency(x, engine=engine), opencv_saliency(x)) >= 0.99


@engines
def test_multichannel_batch_averages_channel_maps(engine):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 50, generator=g) * torch.tensor([1.0, 100.0, 0.01]).view(1, 3, 1, 1)
    batched = torch_fine_grained_saliency(x, engine=engine)
    per_channel = torch.stack([torch_fine_grained_saliency(x[:, c : c + 1], engine=engine) for c in range(3)]).mean(0)
    torch.testing.assert_close(batched, per_channel)
    torch.testing.assert_close(batched, opencv_saliency(x), atol=2 / 255 + 1e-6, rtol=0)


@engines
def test_output_contract_and_constant_image(engine):
    x = torch.rand(3, 2, 17, 23, dtype=torch.float64)
    x[1] = 5.0  # constant image: OpenCV would divide by zero
    out = torch_fine_grained_saliency(x, engine=engine)
    assert out.shape == (3, 17, 23) and out.dtype == torch.float32 and out.device == x.device
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[1], torch.zeros(17, 23))


@engines
def test_depth_one_volume_equals_2d(engine):
    x = torch.rand(2, 2, 30, 31)
    torch.testing.assert_close(
        torch_fine_grained_saliency(x[..., None], engine=engine)[..., 0], torch_fine_grained_saliency(x, engine=engine)
    )


@engines
def test_3d_saliency_sees_structure_along_the_third_axis(engine):
    # a bright slab that fills whole slices: every slice is uniform, so slice-wise 2D saliency is
    # blind to it, while true 3D saliency must single it out
    vol = torch.zeros(1, 1, 24, 24, 40)
    vol[..., 18:22] = 1.0
    sal3d = torch_fine_grained_saliency(vol, engine=engine)
    assert torch.equal(opencv_saliency(vol), torch.zeros_like(sal3d))
    profile = sal3d[0].mean(dim=(0, 1))  # mean saliency of every slice
    assert profile.max() - profile.min() > 0.2
    # bright slab "on" and its dark surround "off" are each rescaled to full range
    assert sal3d.max() == 1.0


@engines
def test_3d_blob_is_salient(engine):
    vol = torch.zeros(1, 2, 32, 32, 32)
    vol[:, :, 12:18, 14:20, 10:16] = 1.0
    vol[:, 1] += 0.05 * torch.rand(32, 32, 32, generator=torch.Generator().manual_seed(1))
    sal = torch_fine_grained_saliency(vol, engine=engine)[0]
    assert sal.shape == (32, 32, 32)
    around = torch.zeros(32, 32, 32, dtype=torch.bool)
    around[10:20, 12:22, 8:18] = True
    inside = torch.zeros_like(around)
    inside[12:18, 14:20, 10:16] = True
    # the blob stands out from the shell of voxels just around it
    assert sal[inside].mean() > 2 * sal[around & ~inside].mean()


@engines
@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 2),
    c=st.integers(1, 2),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    seed=st.integers(0, 10_000),
)
def test_property_range_and_peak(engine, b, c, h, w, seed):
    x = torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 10 - 3
    out = torch_fine_grained_saliency(x, engine=engine)
    assert out.shape == (b, h, w) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    if c == 1:
        # on and off maps are each rescaled to 255 and their sum to the larger maximum: a map
        # is either empty or peaks at exactly 1
        peaks = out.reshape(b, -1).amax(dim=1)
        assert all(float(p) in (0.0, 1.0) for p in peaks)
    assert torch.equal(out, torch_fine_grained_saliency(x, engine=engine))


@engines
@pytest.mark.parametrize(
    "bad, error",
    [
        (torch.rand(1, 8, 8), ValueError),
        (torch.rand(1, 1, 1, 8, 8, 8), ValueError),
        (np.zeros((1, 1, 8, 8)), TypeError),
        (torch.full((1, 1, 8, 8), float("nan")), ValueError),
        (torch.zeros(1, 0, 8, 8), ValueError),
    ],
)
def test_bad_input_raises(bad, error, engine):
    with pytest.raises(error):
        torch_fine_grained_saliency(bad, engine=engine)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    x = torch.rand(2, 3, 64, 64)
    out = torch_fine_grained_saliency(x.cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), torch_fine_grained_saliency(x), atol=2 / 255 + 1e-6, rtol=0)
    vol = torch.rand(1, 1, 24, 24, 24)
    torch.testing.assert_close(
        torch_fine_grained_saliency(vol.cuda()).cpu(), torch_fine_grained_saliency(vol), atol=2 / 255 + 1e-6, rtol=0
    )

"""The backends ignore an enclosing ``torch.autocast`` region: same labels and maps inside as outside."""

import pytest
import torch

from monai_hsmix.backends.precision import autocast_off
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency
from monai_hsmix.backends.torch_slic import torch_slic

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
)


def _images(device):
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.avg_pool2d(torch.rand(2, 3, 48, 48, generator=g), 5, 1, 2).to(device)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_slic_and_saliency_inside_autocast_equal_outside(device):
    images = _images(device)
    n = torch.tensor([20, 40])
    engine = "torch"  # the engine a GPU runs; its nearest-centre search is a matrix product autocast would lower
    seg = torch_slic(images, n, 10.0, engine=engine)
    sal = torch_fine_grained_saliency(images, engine=engine)
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    with torch.autocast(device_type=device, dtype=dtype):
        seg_ac = torch_slic(images, n, 10.0, engine=engine)
        sal_ac = torch_fine_grained_saliency(images, engine=engine)
        assert torch.is_autocast_enabled(device)  # left on for the caller after the backends return
    assert torch.equal(seg_ac, seg) and torch.equal(sal_ac, sal)


def test_autocast_off_restores_the_callers_region():
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        with autocast_off():
            assert not torch.is_autocast_enabled("cpu")
            assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
        assert torch.is_autocast_enabled("cpu")
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast_off():  # no region: nothing to leave
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32


def test_gpu_sized_chunks_and_groups_give_the_same_maps(monkeypatch):
    """A GPU runs each pass in one chunk and the batch's saliency in one group (fewer launches); chunking
    is only a loop over independent slices, so the CPU's small chunks must give the same labels and maps."""
    import monai_hsmix.backends.torch_saliency as saliency_module
    import monai_hsmix.backends.slic_torch_engine as slic_engine

    g = torch.Generator().manual_seed(1)
    images = torch.nn.functional.avg_pool2d(
        torch.rand(4, 2, 192, 192, generator=g), 5, 1, 2
    )  # 2 saliency groups on a CPU
    n = torch.tensor([30, 60, 90, 120])
    seg = torch_slic(images, n, 0.1, engine="torch")
    sal = torch_fine_grained_saliency(images, engine="torch")
    monkeypatch.setattr(slic_engine, "CHUNK_ELEMENTS", slic_engine.DEVICE_ELEMENTS)
    monkeypatch.setattr(slic_engine, "CANDIDATE_GROUP_ELEMENTS", slic_engine.DEVICE_ELEMENTS)
    monkeypatch.setattr(saliency_module, "_GROUP_VOXELS", saliency_module._DEVICE_GROUP_VOXELS)
    assert torch.equal(torch_slic(images, n, 0.1, engine="torch"), seg)
    assert torch.equal(torch_fine_grained_saliency(images, engine="torch"), sal)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tf32_matmul_changes_superpixels_little():
    """Training scripts often allow TF32 matrix products (``set_float32_matmul_precision("high")``); SLIC's
    nearest-centre search is a matrix product, so its superpixels may move where two centres nearly tie.
    The backends leave that global setting to the user; this measures how far it moves them."""
    from monai_hsmix.backends.quality import adjusted_rand_index

    images = _images("cuda")
    n = torch.tensor([20, 40], device="cuda")
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        exact = torch_slic(images, n, 10.0)
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = torch_slic(images, n, 10.0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    ari = [adjusted_rand_index(exact[i].cpu().numpy(), tf32[i].cpu().numpy()) for i in range(2)]
    print(f"adjusted Rand index TF32 vs float32 superpixels: {ari}")
    assert min(ari) >= 0.9

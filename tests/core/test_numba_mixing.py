"""The CPU kernels behind mix_with_masks and segment_mean give what the torch operations give."""

from __future__ import annotations

import pytest
import torch

from monai_hsmix.core import numba_mixing
from monai_hsmix.core.hsmix_equations import blend, blend_index_labels
from monai_hsmix.core.segment_ops import segment_mean


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("binary", [True, False])
def test_blend_rows_equal_torch_lerp(dtype, binary):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 17, 9, generator=g, dtype=dtype)
    mask = torch.rand(3, 17, 9, generator=g, dtype=dtype)
    if binary:
        mask = (mask > 0.5).to(dtype)
    partner = torch.tensor([2, 0, 1])
    out = numba_mixing.blend_rows(x, partner, mask, torch.empty_like(x))
    expected = torch.cat([blend(x[b : b + 1], x[p : p + 1], mask[b : b + 1]) for b, p in enumerate(partner.tolist())])
    # torch's vectorised lerp may fuse a multiply-add: one rounding apart at most
    torch.testing.assert_close(out, expected, rtol=0, atol=2 * torch.finfo(dtype).eps)
    if binary:  # hard mixing copies values exactly
        assert torch.equal(out, torch.where(mask[:, None] > 0.5, x[partner], x))


@pytest.mark.parametrize("binary", [True, False])
def test_blend_index_rows_equal_the_one_hot_blend(binary):
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (4, 1, 11, 6, 3), generator=g)
    mask = torch.rand(4, 11, 6, 3, generator=g)
    if binary:
        mask = (mask > 0.5).float()
    partner = torch.tensor([1, 0, 3, 2])
    out = numba_mixing.blend_index_rows(labels, partner, mask, torch.empty(4, 5, 11, 6, 3))
    expected = torch.cat([blend_index_labels(labels[b : b + 1], labels[p : p + 1], mask[b : b + 1], 5, binary=binary)
                          for b, p in enumerate(partner.tolist())])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert torch.allclose(out.sum(dim=1), torch.ones(()))


def test_segment_mean_kernel_equals_the_scatter_path():
    g = torch.Generator().manual_seed(2)
    values = torch.rand(3, 20, 30, generator=g)
    segments = torch.randint(0, 50, (3, 20, 30), generator=g) * 3  # non-contiguous labels
    out = segment_mean(values, segments)  # CPU float32: the kernel
    for b in range(3):
        for s in segments[b].unique():
            inside = segments[b] == s
            torch.testing.assert_close(out[b][inside], values[b][inside].double().mean().float().expand(int(inside.sum())))
    # float16 takes the torch path and keeps its dtype
    half = segment_mean(values.half(), segments)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), out, atol=2e-3, rtol=0)


def test_kernels_refuse_what_they_cannot_take():
    x = torch.rand(2, 3, requires_grad=True)
    assert not numba_mixing.can_run(x)
    assert not numba_mixing.can_run(torch.rand(2).half())
    assert numba_mixing.can_run(torch.rand(2), torch.arange(3))

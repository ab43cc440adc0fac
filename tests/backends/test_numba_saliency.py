"""The numba saliency kernel gives the torch operations' maps bit for bit; engine selection and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.backends import numba_saliency
from monai_hsmix.backends.dispatch import resolve_engine
from monai_hsmix.backends.intensity import channels_to_uint8_range
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency


def _both(x: torch.Tensor):
    return torch_fine_grained_saliency(x, engine="torch"), torch_fine_grained_saliency(x, engine="numba")


def _assert_identical(x: torch.Tensor) -> torch.Tensor:
    ref, ours = _both(x)
    assert ours.dtype == ref.dtype == torch.float32 and ours.shape == ref.shape
    mismatched = int((ours != ref).sum())
    assert mismatched == 0, f"{mismatched} of {ref.numel()} values differ for shape {tuple(x.shape)}"
    return ref


@pytest.mark.parametrize(
    "shape",
    [
        (2, 3, 40, 50),  # even and odd sides
        (1, 1, 1, 1),  # one voxel: no surround at all
        (1, 1, 1, 7),
        (1, 1, 3, 1),
        (1, 2, 2, 2),
        (2, 1, 13, 11),  # smaller than every scale
        (1, 1, 30, 131),  # larger than some scales, smaller than others
        (1, 1, 300, 17),
        (1, 2, 5, 6, 7),
        (1, 1, 1, 1, 1),
        (1, 1, 24, 1, 40),
        (1, 1, 1, 9, 1),
        (1, 2, 33, 30, 27),
    ],
)
def test_identical_to_torch_on_random_maps(shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 7 - 2
    out = _assert_identical(x)
    if min(shape[2:]) >= 5:  # not all blurred flat: the comparison covers nonzero maps
        assert bool((out > 0).any())


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=2, max_size=3),
    channels=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    levels=st.sampled_from([2, 7, 256, 0]),  # 0: continuous values
)
def test_property_identical_to_torch(shape, channels, seed, levels):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, *shape, generator=g)
    if levels:  # few distinct values: ties, flat regions and exact halves when scaled
        x = torch.floor(x * levels)
    _assert_identical(x)


def test_identical_on_structured_images_above_float32_exact_sums():
    # 300 x 300 x 255 > 2**24: the torch form switches its box sums from float32 to int32
    yy, xx = torch.meshgrid(torch.arange(300.0), torch.arange(300.0), indexing="ij")
    disc = (((yy - 140) ** 2 + (xx - 170) ** 2) < 60**2).float()
    x = torch.stack([disc + 0.1 * torch.sin(xx / 7), torch.cos(yy / 13)])[None]
    _assert_identical(x)


def test_large_constant_maps_are_zero():
    x = torch.full((2, 2, 257, 301), 3.5)
    ref, ours = _both(x)
    assert torch.equal(ours, ref) and torch.equal(ours, torch.zeros(2, 257, 301))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.uint8, torch.int32])
def test_identical_for_every_input_dtype(dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 2, 37, 41, generator=g) * 200
    x = x.to(dtype)
    _assert_identical(x)
    _assert_identical(x[..., :9, None])  # 3D as well


def test_levels_round_half_to_even_like_the_torch_helper():
    # values whose scaled level is exactly k + 1/2 (round half to even), and spans whose
    # 255 / span differs from reciprocal(span) * 255 in float32 (torch's order)
    x = torch.arange(511, dtype=torch.float32).reshape(1, 1, 7, 73) / 2
    g = torch.Generator().manual_seed(4)
    spans = torch.rand(64, 1, 1, 1, generator=g) * 1e3 + 1e-3
    maps = torch.cat([x.expand(64, 1, 7, 73) * spans / 255, torch.rand(64, 1, 7, 73, generator=g) * spans - 3])
    expected = channels_to_uint8_range(maps)[:, 0].to(torch.int32).numpy()
    flat = maps.numpy().reshape(len(maps), -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    for i in range(len(maps)):
        levels = np.empty((1, 7, 73), dtype=np.int32)
        numba_saliency._levels(maps[i].numpy(), lo[i], hi[i], levels)
        np.testing.assert_array_equal(levels[0], expected[i])


def test_wide_integral_gives_the_same_maps():
    # maps of 2**31 / 255 voxels and more sum in int64; that specialisation must agree with
    # the int32 one (a map that large is too slow for a unit test, so force it on a small one)
    x = torch.rand(2, 2, 19, 23, 17, generator=torch.Generator().manual_seed(5))
    expected = torch_fine_grained_saliency(x, engine="numba")
    pad = 17 + 1
    maps = x.numpy().reshape(4, 19, 23, 17)
    flat = maps.reshape(4, -1)
    integral = np.empty((20, 24, pad + 17 + pad), dtype=np.int64)
    out = np.zeros((2, 19, 23, 17), dtype=np.float32)
    numba_saliency._saliency_maps(
        maps, flat.min(axis=1), flat.max(axis=1), 2, integral, pad, numba_saliency.SCALES, out
    )
    assert torch.equal(torch.from_numpy(out), expected)


def test_auto_runs_numba_on_cpu(monkeypatch):
    calls = []
    real = numba_saliency.numba_fine_grained_saliency
    monkeypatch.setattr(numba_saliency, "numba_fine_grained_saliency", lambda images: calls.append(1) or real(images))
    x = torch.rand(1, 1, 16, 16)
    torch_fine_grained_saliency(x)
    assert calls == [1]
    torch_fine_grained_saliency(x, engine="torch")
    assert calls == [1]


def test_resolve_engine():
    cpu, meta = torch.device("cpu"), torch.device("meta")
    assert resolve_engine("auto", cpu) == "numba" and resolve_engine("auto", meta) == "torch"
    assert resolve_engine("torch", cpu) == "torch" and resolve_engine("numba", cpu) == "numba"
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve_engine("cuda", cpu)
    with pytest.raises(ValueError, match="CPU tensors only"):
        resolve_engine("numba", meta)


@pytest.mark.parametrize(
    "engine, device, match", [("Numba", "cpu", "engine must be one of"), ("numba", "meta", "CPU tensors only")]
)
def test_saliency_engine_errors_fire_before_any_work(engine, device, match):
    # a meta tensor has no data: any computation before the check would fail differently
    x = torch.rand(1, 1, 8, 8, device=device)
    with pytest.raises(ValueError, match=match):
        torch_fine_grained_saliency(x, engine=engine)

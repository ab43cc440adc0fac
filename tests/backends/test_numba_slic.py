"""The numba SLIC engine: what the torch path's tests cannot see from outside.

The behaviour both engines share (quality on ACDC and MoNuSeg, batch mates, 3D, errors) is tested
once per engine in test_torch_slic.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_hsmix.backends import slic_numba_engine
from monai_hsmix.backends.dispatch import resolve_engine
from monai_hsmix.backends.slic_numba_engine import plan_for
from monai_hsmix.backends.slic_plan import scaled_colour
from monai_hsmix.backends.torch_slic import torch_slic


def _kmeans(x: torch.Tensor, count: int, compactness: float, max_num_iter: int, stop: bool):
    full = tuple(x.shape[2:])
    factors = (1,) * len(full)
    colour = scaled_colour(x, compactness, factors).numpy()[0]
    plan = plan_for(full, count, (1.0,) * len(full), factors)
    feat = colour.reshape((colour.shape[0],) + (1,) * (3 - len(full)) + full)
    scale, cz, cy, cx, per_axis, fz, fy, fx, reach, sampled, _ = plan
    return slic_numba_engine.kmeans(
        np.ascontiguousarray(feat), scale, cz, cy, cx, per_axis, fz, fy, fx, reach, sampled, max_num_iter, stop
    )


def test_stopping_at_a_fixed_point_changes_nothing():
    # at a high compactness k-means settles within a few iterations; the early stop must give
    # exactly what running every iteration gives
    g = torch.Generator().manual_seed(5)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 2, 64, 64, generator=g), 5, 1, 2)
    stopped, _, _, ran = _kmeans(x, 30, 10.0, 30, True)
    every, _, _, ran_all = _kmeans(x, 30, 10.0, 30, False)
    assert ran < ran_all == 29, "the test needs an image that converges"
    assert np.array_equal(stopped, every)


def test_every_voxel_takes_a_centre_seeded_next_to_its_cell():
    # the candidate window: a voxel's label is a centre seeded within `reach` cells of its own
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 48, 40, generator=g)
    labels, _, _, _ = _kmeans(x, 30, 0.05, 10, True)
    plan = plan_for((48, 40), 30, (1.0, 1.0), (1, 1))
    _, _, cy, cx, per_axis, _, _, _, reach, _, _ = plan
    gy, gx = int(per_axis[1]), int(per_axis[2])
    ky, kx = np.divmod(labels[0], gx)
    assert ky.max() < gy
    assert np.abs(ky - cy[:, None]).max() <= reach[1] and np.abs(kx - cx[None, :]).max() <= reach[2]


def test_labels_come_back_at_full_size_for_odd_sizes_when_pooled():
    # pooling by 2 with an odd side: the last pooled voxel covers one full-size voxel
    g = torch.Generator().manual_seed(2)
    x = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 99, 97, generator=g), 5, 1, 2)
    seg = torch_slic(x, torch.tensor([20, 30]), 1.0, half_resolution=True, engine="numba")
    assert seg.shape == (2, 99, 97)
    # blocks of 2x2 carry one label (the pooled voxel they came from)
    assert torch.equal(seg[:, :98:2, :96:2], seg[:, 1:98:2, 1:97:2])


def test_engine_choice():
    assert resolve_engine("auto", torch.device("cpu")) == "numba"
    assert resolve_engine("auto", torch.device("meta")) == "torch"
    assert resolve_engine("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve_engine("fast", torch.device("cpu"))
    with pytest.raises(ValueError, match="CPU tensors only"):
        resolve_engine("numba", torch.device("meta"))
    with pytest.raises(ValueError, match="engine must be one of"):
        torch_slic(torch.rand(1, 1, 16, 16), torch.tensor([4]), 1.0, engine="cuda")


def test_a_seed_grid_that_does_not_fit_the_image_is_refused():
    # the kernels index with the plan's seeds and cells unchecked: the glue checks them first
    colour = np.zeros((1, 1, 16, 12), dtype=np.float32)
    good = plan_for((16, 12), 6, (1.0, 1.0), (1, 1))
    assert slic_numba_engine.slic_labels(colour, [good], 5, (1, 1), (16, 12)).shape == (1, 16, 12)
    scale, cz, cy, cx, per_axis, fz, fy, fx, reach, sampled, min_size = good
    bad_first = (scale, cz, cy, cx, per_axis, fz, fy + int(per_axis[1]), fx, reach, sampled, min_size)
    bad_cell = (scale, cz, cy, cx + int(per_axis[2]), per_axis, fz, fy, fx, reach, sampled, min_size)
    short_first = (scale, cz, cy, cx, per_axis, fz, fy[:-1], fx, reach, sampled, min_size)
    for plan in (bad_first, bad_cell, short_first):
        with pytest.raises(ValueError, match="seed grid of axis"):
            slic_numba_engine.slic_labels(colour, [plan], 5, (1, 1), (16, 12))
    with pytest.raises(ValueError, match="pooled size"):
        slic_numba_engine.slic_labels(colour, [good], 5, (2, 2), (16, 12))

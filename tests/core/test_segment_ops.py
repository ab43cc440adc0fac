import math
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.core import grid_cells, segment_mean


def _loop_mean(values, segments):
    out = np.empty_like(values)
    for b in range(values.shape[0]):
        for s in np.unique(segments[b]):
            m = segments[b] == s
            out[b][m] = values[b][m].mean()
    return out


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 9), seed=st.integers(0, 999))
def test_segment_mean_matches_per_segment_loop(b, h, w, k, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(b, h, w)).astype(np.float64)
    segments = rng.integers(0, k, size=(b, h, w))
    got = segment_mean(torch.from_numpy(values), torch.from_numpy(segments)).numpy()
    np.testing.assert_allclose(got, _loop_mean(values, segments), rtol=1e-10, atol=1e-12)


def test_segment_mean_is_per_image_not_shared_across_batch():
    values = torch.tensor([[[0.0, 0.0]], [[1.0, 1.0]]])
    segments = torch.zeros(2, 1, 2, dtype=torch.long)  # same label in both images
    assert segment_mean(values, segments).tolist() == [[[0.0, 0.0]], [[1.0, 1.0]]]


def test_segment_mean_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        segment_mean(torch.zeros(1, 3, 3), torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="non-negative"):
        segment_mean(torch.zeros(1, 2), -torch.ones(1, 2, dtype=torch.long))


@pytest.mark.parametrize(
    "shape, grid", [((64, 64), 7), ((224, 224), 7), ((48, 80), 7), ((24, 24, 16), 7), ((30, 50), (3, 5))]
)
def test_grid_cells_are_the_papers_fixed_grid_whatever_the_size(shape, grid):
    seg = grid_cells(2, shape, grid)
    per_axis = (grid,) * len(shape) if isinstance(grid, int) else grid
    assert seg.shape == (2,) + shape and torch.equal(seg[0], seg[1])
    labels = torch.unique(seg[0])
    assert labels.tolist() == list(range(math.prod(per_axis)))  # 7 x 7 cells for a 64 or a 224 image
    # near-equal cells: widths differ by at most one voxel per axis
    widths = [
        torch.unique(seg[0].movedim(a, -1).reshape(-1, shape[a])[0], return_counts=True)[1] for a in range(len(shape))
    ]
    for a, w in enumerate(widths):
        assert int(w.max()) - int(w.min()) <= 1
    # cells are axis-aligned boxes: every cell's pixels fill its bounding box
    for k in (0, len(labels) - 1):
        cell = seg[0] == k
        idx = cell.nonzero()
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx.T)
        assert bool(cell[box].all())


def test_grid_cells_on_an_axis_shorter_than_the_grid_and_bad_sizes():
    seg = grid_cells(1, (3, 20), 7)
    assert torch.unique(seg).numel() == 3 * 7
    with pytest.raises(ValueError, match="grid_size"):
        grid_cells(1, (8, 8), (7,))
    with pytest.raises(ValueError, match="grid_size"):
        grid_cells(1, (8, 8), 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_segment_mean_of_half_precision_large_segments_is_finite_and_exact(dtype):
    # one segment of 80,000 voxels: its count overflows float16 (max 65,504)
    values = torch.full((1, 80_000), 0.25, dtype=dtype)
    values[0, :40_000] = 0.75
    segments = torch.zeros(1, 80_000, dtype=torch.long)
    out = segment_mean(values, segments)
    assert out.dtype == dtype and bool(torch.isfinite(out).all())
    assert float(out[0, 0]) == 0.5

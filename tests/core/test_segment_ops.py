import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.core import segment_mean, square_grid_segments


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


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (24, 24, 16)])
def test_grid_segments_count_and_contiguity(shape):
    counts = torch.tensor([16, 64])
    seg = square_grid_segments(shape, counts)
    assert seg.shape == (2,) + shape
    for b, n in enumerate(counts.tolist()):
        labels = torch.unique(seg[b])
        assert labels.tolist() == list(range(len(labels)))
        assert 0.5 * n <= len(labels) <= 2.0 * n
    # cells are axis-aligned boxes: every cell's pixels fill its bounding box
    cell = seg[1] == seg[1].flatten()[0]
    idx = cell.nonzero()
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx.T)
    assert bool(cell[box].all())

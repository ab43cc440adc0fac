import numpy as np
import pytest
import torch

from monai_hsmix.core.labels import relabel_contiguous


@pytest.mark.parametrize(
    "maps",
    [
        torch.tensor([[[5, 5, 9], [2, 9, 2]], [[0, 7, 7], [7, 0, 3]]]),  # gaps, per-image label sets
        torch.tensor([[[-3, 4], [4, 100000]]]),  # negative and large ids: the sorting path
        torch.tensor([[[0.5, -1.0], [0.5, 2.0]]]),  # float labels
        torch.randint(0, 50, (3, 7, 6, 5), generator=torch.Generator().manual_seed(1)),
    ],
)
def test_relabel_matches_numpy_unique_per_image(maps):
    out = relabel_contiguous(maps)
    assert out.dtype == torch.int64 and out.shape == maps.shape
    for got, m in zip(out, maps):
        want = np.unique(m.numpy().ravel(), return_inverse=True)[1].reshape(m.shape)
        np.testing.assert_array_equal(got.numpy(), want)


def test_relabel_of_empty_and_scalar_input():
    assert relabel_contiguous(torch.zeros(0, 4, 4, dtype=torch.long)).shape == (0, 4, 4)
    with pytest.raises(ValueError, match="batch"):
        relabel_contiguous(torch.tensor(3))

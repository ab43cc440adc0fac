import numpy as np
import pytest

from monai_hsmix.data import cardiac_batch, cardiac_phantom, cardiac_volume


def test_phantom_is_deterministic_and_has_every_class():
    a, la = cardiac_phantom(64, seed=4)
    b, lb = cardiac_phantom(64, seed=4)
    c, _ = cardiac_phantom(64, seed=5)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert a.shape == (1, 64, 64) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert set(np.unique(la)) == {0, 1, 2, 3}
    # the left-ventricle blood pool is brighter than the myocardium around it, as in cine-MRI
    assert a[la == 3].mean() > a[la == 2].mean() + 0.2


def test_batch_and_volume_shapes():
    images, labels = cardiac_batch(3, 32)
    assert images.shape == (3, 1, 32, 32) and labels.shape == (3, 1, 32, 32)
    vol, lab = cardiac_volume(32, 6)
    assert vol.shape == (1, 32, 32, 6) and lab.shape == (1, 32, 32, 6)
    assert (lab[..., 0] > 0).sum() > (lab[..., -1] > 0).sum()  # the heart narrows towards the apex
    with pytest.raises(ValueError, match="at least 16"):
        cardiac_phantom(8)

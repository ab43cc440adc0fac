"""Soft-CP on real BraTS 2015 cases (FLAIR + T1c), downsampled 3x so the test stays quick."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from monai_hsmix.transforms.soft_copy_paste import RandSoftCopyPasted, object_augmentation

STEP = (slice(None, None, 3),) * 3


def _load(case_dir):
    def vol(name):
        return np.asarray(nib.load(str(case_dir / name)).dataobj, dtype=np.float32)[STEP]

    return {
        "flair": vol("Flair_subtrMeanDivStd.nii.gz")[None],
        "t1c": vol("T1c_subtrMeanDivStd.nii.gz")[None],
        "label": vol("OTMultiClass.nii.gz").round().astype(np.int64)[None],
        "brain": (vol("brainmask.nii.gz") != 0)[None],
    }


@pytest.fixture(scope="module")
def cases(brats2015_dir):
    dirs = sorted(p for p in brats2015_dir.glob("*/*") if (p / "OTMultiClass.nii.gz").is_file())
    if len(dirs) < 2:
        pytest.skip(f"need 2 BraTS 2015 cases under {brats2015_dir}, found {len(dirs)}")
    return _load(dirs[0]), _load(dirs[2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tumour_pasted_inside_the_other_brain(cases, seed):
    main, donor = cases
    t = RandSoftCopyPasted(
        ["flair", "t1c"],
        "label",
        reference_key="brain",
        donor_bank=[donor],
        label_values=(1, 2, 3, 4),
        min_lesion_voxels=50,
        num_rings=3,
        s1=0.95,
        s2=1e-6,
        object_transform=object_augmentation(3, flip_prob=0.5, rotate_prob=0.5, scale_prob=0.5),
        max_tries=100,
    )
    t.set_random_state(seed)
    out = t(main)
    assert out["softcp"]["pasted"] == 1, out["softcp"]
    pasted = (out["label"] != main["label"])[0]
    brain = main["brain"][0]
    assert (pasted & brain).sum() / pasted.sum() > 0.95
    assert set(np.unique(out["label"])) <= {0, 1, 2, 3, 4}
    assert set(np.unique(out["label"][0][pasted])) <= {1, 2, 3, 4}
    # the main case's own tumour keeps its labels; nothing changes beyond the soft mask's support
    own = main["label"][0] > 0
    np.testing.assert_array_equal(out["label"][0][own], main["label"][0][own])
    support = ndimage.binary_dilation(pasted, np.ones((3, 3, 3)), iterations=3)
    for key in ("flair", "t1c"):
        changed = (out[key] != main[key])[0]
        assert changed.any() and not np.any(changed & ~support)
        assert np.all(np.isfinite(out[key]))

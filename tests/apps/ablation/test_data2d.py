"""Patient-wise splits of a Decathlon dataset, and slicing of its volumes."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_hsmix.apps.ablation.data2d import load_volume, patient_of, split_dataset, to_slices


def _manifest(tmp_path, training, validation=None, labels=None):
    meta = {"labels": labels or {"0": "bg", "1": "fg"}, "training": training}
    if validation is not None:
        meta["validation"] = validation
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    return tmp_path


def _pairs(names):
    return [{"image": f"./imagesTr/{n}.nii.gz", "label": f"./labelsTr/{n}.nii.gz"} for n in names]


def test_frames_of_a_patient_stay_together(tmp_path):
    names = [f"patient{p:03d}_frame{f:02d}" for p in range(1, 9) for f in (1, 2)]
    split = split_dataset(_manifest(tmp_path, _pairs(names)), train_patients=3, val_patients=2, split_seed=4)
    assert len(split.train) == 3 and len(split.val) == 2 and not set(split.train) & set(split.val)
    assert all(len(files) == 2 for files in list(split.train.values()) + list(split.val.values()))
    again = split_dataset(tmp_path, train_patients=3, val_patients=2, split_seed=4)
    assert again.train == split.train and again.val == split.val


def test_training_patients_are_those_the_published_runs_drew(tmp_path):
    # the split now comes from MONAI's partition_dataset; with a 'validation' list (ACDC) the training
    # patients must be the ones the earlier RandomState(split_seed).choice drew, or published runs'
    # train_ids (docs/results) would no longer be reproduced by their command
    names = [f"patient{p:03d}_frame01" for p in range(1, 41)]
    root = _manifest(tmp_path, _pairs(names), _pairs(["patient100_frame01"]))
    for seed in (0, 1, 7):
        split = split_dataset(root, train_patients=10, split_seed=seed)
        patients = sorted(n.split("_")[0] for n in names)
        assert sorted(split.train) == sorted(
            np.random.RandomState(seed).choice(patients, size=10, replace=False).tolist()
        )
        assert list(split.val) == ["patient100"]


@pytest.mark.parametrize("num_patients", [5, 13, 40])
def test_held_out_and_training_patients_have_the_asked_sizes_and_never_overlap(tmp_path, num_patients):
    names = [f"patient{p:03d}_frame{f:02d}" for p in range(num_patients) for f in (1, 2)]
    root = _manifest(tmp_path, _pairs(names))
    for val in range(1, num_patients):
        for train in sorted({1, (num_patients - val) // 2 or 1, num_patients - val}):
            split = split_dataset(root, train_patients=train, val_patients=val, split_seed=val)
            assert (len(split.train), len(split.val)) == (train, val) and not set(split.train) & set(split.val)
        everyone = split_dataset(root, train_patients=None, val_patients=val)
        assert len(everyone.train) == num_patients - val and not set(everyone.train) & set(everyone.val)


def test_a_patient_in_training_and_validation_is_refused(tmp_path):
    root = _manifest(tmp_path, _pairs(["patient001_frame01", "patient002_frame01"]), _pairs(["patient001_frame02"]))
    with pytest.raises(ValueError, match="patient001"):
        split_dataset(root, train_patients=None)


def test_bad_manifests_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        split_dataset(tmp_path, None)
    with pytest.raises(ValueError, match="0..K-1"):
        split_dataset(_manifest(tmp_path, _pairs(["a"]), labels={"0": "bg", "2": "x"}), None)
    with pytest.raises(ValueError, match="train_patients"):
        split_dataset(_manifest(tmp_path, _pairs(["p1", "p2", "p3"])), train_patients=5, val_patients=1)


def test_patient_id_falls_back_to_the_file_name(tmp_path):
    assert patient_of(tmp_path / "patient012_frame01.nii.gz") == "patient012"
    assert patient_of(tmp_path / "case7.nii.gz") == "case7"


def test_load_and_slice_keep_labels_and_refuse_bad_labels(tmp_path):
    label = np.zeros((10, 12, 3), np.uint8)
    label[2:6, 3:9] = 1
    image = np.random.RandomState(0).rand(10, 12, 3).astype(np.float32) * 500
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(tmp_path / "img.nii.gz"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(tmp_path / "lab.nii.gz"))
    volume = load_volume(tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz", 2, "p")
    assert (
        volume.image.shape == (1, 10, 12, 3) and 0.0 <= float(volume.image.min()) and float(volume.image.max()) <= 1.0
    )
    slices = to_slices([volume], 24)
    assert slices.images.shape == (3, 1, 24, 24) and slices.labels.shape == (3, 1, 24, 24)
    assert torch.equal(slices.labels.unique(), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"outside \[0, 0\]"):
        load_volume(tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz", 1, "p")


def test_acdc_split_uses_its_validation_list(acdc_dir):
    split = split_dataset(acdc_dir, train_patients=10)
    assert len(split.val) == 10 and sum(len(v) for v in split.val.values()) == 20
    assert len(split.train) == 10 and not set(split.train) & set(split.val)
    assert split.class_names == ["background", "right ventricle", "myocardium", "left ventricle"]

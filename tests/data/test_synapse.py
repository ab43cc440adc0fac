"""Synapse: HU windowing, BTCV label mapping, the BTCV converter and TransUNet-layout readers."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_hsmix.data.io import DatasetError, load_h5, load_npz
from monai_hsmix.data.synapse import (
    SYNAPSE_TEST_CASES,
    SYNAPSE_TRAIN_CASES,
    LoadSynapseVolumed,
    convert_btcv,
    ct_to_unit_range,
    map_btcv_labels,
    synapse_test_datalist,
    synapse_train_datalist,
)


RAW_AFFINE = np.diag([0.8, 0.8, 3.0, 1.0])


def _write_raw_case(raw, case, hu, label):
    for sub, name, arr in (("img", f"img{case:04d}", hu), ("label", f"label{case:04d}", label)):
        (raw / "RawData" / "Training" / sub).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(arr, RAW_AFFINE), str(raw / "RawData" / "Training" / sub / f"{name}.nii.gz"))


def test_transunet_split_is_18_train_12_test_disjoint():
    assert len(SYNAPSE_TRAIN_CASES) == 18 and len(SYNAPSE_TEST_CASES) == 12
    assert not set(SYNAPSE_TRAIN_CASES) & set(SYNAPSE_TEST_CASES)


def test_ct_window_clips_and_scales():
    out = ct_to_unit_range(np.array([-1000, -125, 75, 275, 3000], dtype=np.int16))
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])
    assert out.dtype == np.float32


def test_btcv_label_mapping_keeps_the_eight_organs():
    mapped = map_btcv_labels(np.arange(14))
    np.testing.assert_array_equal(mapped, [0, 1, 2, 3, 4, 0, 5, 6, 7, 0, 0, 8, 0, 0])


@pytest.mark.parametrize("bad", [np.array([0, 14]), np.array([-1, 2]), np.array([1.5, 2.0])])
def test_btcv_label_mapping_rejects_unknown_values(bad):
    with pytest.raises(DatasetError, match="lab"):
        map_btcv_labels(bad, source="lab.nii.gz")


def test_convert_btcv_writes_transunet_layout(tmp_path):
    rng = np.random.default_rng(0)
    raw, out = tmp_path / "raw", tmp_path / "out"
    hu = rng.integers(-400, 500, size=(12, 10, 3)).astype(np.int16)
    label = rng.integers(0, 14, size=(12, 10, 3)).astype(np.uint8)
    for case in (5, 1):
        _write_raw_case(raw, case, hu, label)
    counts = convert_btcv(raw, out, train_cases=[5], test_cases=[1])
    assert counts == {"train_slices": 3, "test_volumes": 1}
    train = synapse_train_datalist(out)
    assert [x["name"] for x in train] == ["case0005_slice000", "case0005_slice001", "case0005_slice002"]
    s1 = load_npz(train[1]["path"], ["image", "label"])
    # slice z of the (x, y, z) NIfTI, rows = y
    np.testing.assert_allclose(s1["image"], ct_to_unit_range(hu[:, :, 1]).T, atol=1e-6)
    np.testing.assert_array_equal(s1["label"], map_btcv_labels(label[:, :, 1]).T)
    vol = load_h5(synapse_test_datalist(out)[0]["path"], ["image", "label"])
    assert vol["image"].shape == (3, 10, 12)
    np.testing.assert_array_equal(vol["label"], map_btcv_labels(label).transpose(2, 1, 0))
    # read back as a scan: (x, y, z) with the scan's affine
    back = LoadSynapseVolumed()({"path": synapse_test_datalist(out)[0]["path"]})
    np.testing.assert_array_equal(back["label"][0].numpy(), map_btcv_labels(label))
    np.testing.assert_allclose(back["image"].affine.numpy(), RAW_AFFINE)


def test_convert_btcv_names_the_missing_case_and_writes_nothing(tmp_path):
    raw = tmp_path / "raw"
    _write_raw_case(raw, 5, np.zeros((4, 4, 2), np.int16), np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"case 6.*img0006\.nii\.gz"):
        convert_btcv(raw, tmp_path / "out", train_cases=[5, 6], test_cases=[])
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="both the training and the test"):
        convert_btcv(raw, tmp_path / "out", train_cases=[5], test_cases=[5])


def test_convert_btcv_names_a_corrupt_nifti(tmp_path):
    raw = tmp_path / "raw"
    _write_raw_case(raw, 5, np.zeros((4, 4, 2), np.int16), np.zeros((4, 4, 2), np.uint8))
    bad = raw / "RawData" / "Training" / "label" / "label0005.nii.gz"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DatasetError, match="label0005.nii.gz"):
        convert_btcv(raw, tmp_path / "out", train_cases=[5], test_cases=[])


def test_datalists_fail_on_empty_list_or_missing_slice(tmp_path):
    lists = tmp_path / "lists" / "lists_Synapse"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n \n")
    with pytest.raises(DatasetError, match=r"empty.*train\.txt"):
        synapse_train_datalist(tmp_path)
    (lists / "train.txt").write_text("case0005_slice000\n")
    with pytest.raises(DatasetError, match=r"case0005_slice000\.npz"):
        synapse_train_datalist(tmp_path)
    with pytest.raises(DatasetError, match="test_vol.txt"):
        synapse_test_datalist(tmp_path)


def test_load_volume_moves_depth_last_and_names_bad_files(tmp_path):
    import h5py

    path = tmp_path / "case0001.npy.h5"
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    with h5py.File(path, "w") as f:
        f["image"], f["label"] = img, img * 0
    out = LoadSynapseVolumed()({"path": str(path)})
    # (D, H, W) = (z, y, x) comes back in the scan's (x, y, z) order
    assert out["image"].shape == (1, 4, 3, 2)
    assert torch.equal(out["image"][0, :, :, 1], torch.from_numpy(img[1].T))
    assert out["image"].meta["filename_or_obj"] == str(path)
    with h5py.File(path, "w") as f:
        f["image"] = img
    with pytest.raises(DatasetError, match=r"case0001\.npy\.h5.*label"):
        LoadSynapseVolumed()({"path": str(path)})
    path.write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match=r"cannot read .*case0001\.npy\.h5"):
        LoadSynapseVolumed()({"path": str(path)})


def test_convert_btcv_shows_progress_over_the_cases(tmp_path, capsys):
    raw = tmp_path / "raw"
    for case in (5, 1):
        _write_raw_case(raw, case, np.zeros((4, 4, 2), np.int16), np.zeros((4, 4, 2), np.uint8))
    convert_btcv(raw, tmp_path / "out", train_cases=[5], test_cases=[1])
    err = capsys.readouterr().err
    assert "converting BTCV" in err and "2/2" in err
    convert_btcv(raw, tmp_path / "out2", train_cases=[5], test_cases=[1], progress=False)
    assert "converting BTCV" not in capsys.readouterr().err

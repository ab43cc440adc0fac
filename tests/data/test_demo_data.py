"""Synthetic demo datasets: deterministic, in the real layouts, with valid and nested labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from monai_hsmix.data.brats import find_brats_cases, labels_to_regions, load_brats_case
from monai_hsmix.data.demo_data import make_demo_dataset, resolve_dataset_dir, synthetic_abdomen, synthetic_brain
from monai_hsmix.data.io import load_h5, load_npz
from monai_hsmix.data.synapse import synapse_test_datalist, synapse_train_datalist


@given(seed=st.integers(0, 2**31 - 1))
@settings(max_examples=8, deadline=None)
def test_synthetic_brain_regions_are_nested_and_labels_valid(seed):
    images, seg = synthetic_brain(np.random.default_rng(seed), size=24, depth=6)
    assert set(np.unique(seg).tolist()) <= {0, 1, 2, 4}
    wt, tc, et = labels_to_regions(seg).astype(bool)
    assert not (tc & ~wt).any() and not (et & ~tc).any()
    brain = images["flair"] != 0
    assert not (wt & ~brain).any(), "tumour outside the brain"
    assert all(v.shape == (24, 24, 6) for v in images.values()) and seg.shape == (24, 24, 6)


def test_synthetic_abdomen_uses_btcv_ids_and_ct_range():
    hu, label = synthetic_abdomen(np.random.default_rng(0), size=48, depth=6)
    assert set(np.unique(label).tolist()) <= set(range(14))
    assert {1, 2, 3, 6, 8}.issubset(set(np.unique(label).tolist()))
    assert hu.min() < -500 and hu.max() > 150  # air outside the body and contrast-enhanced aorta


def test_synapse_demo_is_deterministic_and_in_transunet_layout(tmp_path):
    a = make_demo_dataset("synapse", tmp_path / "a", seed=3, size=32, depth=4)
    b = make_demo_dataset("synapse", tmp_path / "b", seed=3, size=32, depth=4)
    c = make_demo_dataset("synapse", tmp_path / "c", seed=4, size=32, depth=4)
    train_a, train_b = synapse_train_datalist(a), synapse_train_datalist(b)
    assert len(train_a) == 4 * 4 and [x["name"] for x in train_a] == [x["name"] for x in train_b]
    assert train_a[0]["name"] == "case0005_slice000"
    slice_a = load_npz(train_a[5]["path"], ["image", "label"])
    np.testing.assert_array_equal(slice_a["image"], load_npz(train_b[5]["path"], ["image"])["image"])
    assert not np.array_equal(slice_a["image"], load_npz(synapse_train_datalist(c)[5]["path"], ["image"])["image"])
    assert slice_a["image"].shape == (32, 32) and 0.0 <= slice_a["image"].min() and slice_a["image"].max() <= 1.0
    test = synapse_test_datalist(a)
    assert [x["case"] for x in test] == ["case0001", "case0002"]
    vol = load_h5(test[0]["path"], ["image", "label"])
    assert vol["image"].shape == vol["label"].shape == (4, 32, 32)
    assert set(np.unique(vol["label"]).tolist()) <= set(range(9))


def test_brats_demo_has_four_modalities_in_brats2018_naming(tmp_path):
    root = make_demo_dataset("brats2018", tmp_path / "brats", seed=0, size=24, depth=6)
    cases = find_brats_cases(root, "brats2018")
    assert len(cases) == 8 and {c.parent.name for c in cases} == {"HGG", "LGG"}
    for suffix in ("t1", "t1ce", "t2", "flair", "seg"):
        assert (cases[0] / f"{cases[0].name}_{suffix}.nii.gz").is_file()
    image, regions, _ = load_brats_case(cases[0])
    assert image.shape == (4, 24, 24, 6) and regions.shape == (3, 24, 24, 6)
    assert regions[0].sum() > 0


def test_make_demo_refuses_to_overwrite_and_rejects_bad_arguments(tmp_path):
    make_demo_dataset("synapse", tmp_path / "d", size=24, depth=2)
    with pytest.raises(FileExistsError, match="not empty"):
        make_demo_dataset("synapse", tmp_path / "d", size=24, depth=2)
    with pytest.raises(ValueError, match="unknown demo dataset"):
        make_demo_dataset("acdc", tmp_path / "e")
    with pytest.raises(ValueError, match="size >= 16"):
        make_demo_dataset("brats2018", tmp_path / "f", size=8)
    assert not (tmp_path / "f").exists()


def test_resolve_dataset_dir_generates_once_and_passes_real_dirs_through(tmp_path):
    demo = tmp_path / "demo"
    assert resolve_dataset_dir("", "synapse", demo, size=24, depth=2) == str(demo)
    marker = next(demo.glob("train_npz/*.npz"))
    mtime = marker.stat().st_mtime_ns
    resolve_dataset_dir(None, "synapse", demo, size=24, depth=2)
    assert marker.stat().st_mtime_ns == mtime, "demo data regenerated on second use"
    assert resolve_dataset_dir(str(tmp_path), "synapse", demo) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_dataset_dir(str(tmp_path / "missing"), "synapse", demo)

"""BraTS: label conventions of both layouts, the paper's normalisation, slice preparation, loaders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from monai_hsmix.data.brats import (
    LoadBratsCased,
    brats_volume_datalist,
    crop_in_plane,
    find_brats_cases,
    labels_to_regions,
    load_brats_case,
    normalize_modality,
    prepare_brats_slices,
    regions_to_labels,
)
from monai_hsmix.data.demo_data import make_demo_dataset
from monai_hsmix.data.io import DatasetError, load_npz


@pytest.fixture(scope="module")
def demo_brats(tmp_path_factory):
    return make_demo_dataset("brats2018", tmp_path_factory.mktemp("brats") / "data", seed=0, size=24, depth=6)


def test_region_channels_follow_each_layout():
    labels = np.array([0, 1, 2, 3, 4])
    np.testing.assert_array_equal(
        labels_to_regions(labels[[0, 1, 2, 4]], "brats2018"), [[0, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]]
    )
    # 2015: non-enhancing tumour (3) belongs to the core
    np.testing.assert_array_equal(
        labels_to_regions(labels, "brats2015_deepmedic"), [[0, 1, 1, 1, 1], [0, 1, 0, 1, 1], [0, 0, 0, 0, 1]]
    )


def test_unknown_labels_and_layouts_fail_clearly():
    with pytest.raises(DatasetError, match=r"seg\.nii\.gz.*\[3\]"):
        labels_to_regions(np.array([0, 3]), "brats2018", source="seg.nii.gz")
    with pytest.raises(ValueError, match="unknown BraTS layout"):
        labels_to_regions(np.array([0]), "brats2020")


@given(st.lists(st.sampled_from([0, 1, 2, 4]), min_size=1, max_size=50))
@settings(max_examples=30, deadline=None)
def test_regions_to_labels_inverts_the_2018_conversion(values):
    lab = np.array(values)
    np.testing.assert_array_equal(regions_to_labels(labels_to_regions(lab))[0], lab)


def test_normalize_modality_zscores_inside_the_brain_after_percentile_clip():
    rng = np.random.default_rng(0)
    vol = rng.normal(100.0, 10.0, (20, 20, 10)).astype(np.float32)
    brain = np.zeros(vol.shape, bool)
    brain[2:18, 2:18] = True
    vol[5, 5, 5] = 1e6  # an outlier the 99th percentile clips
    out = normalize_modality(vol, brain)
    assert abs(out[brain].mean()) < 1e-4 and abs(out[brain].std() - 1.0) < 1e-3
    assert (out[~brain] == 0).all()
    assert out[5, 5, 5] == pytest.approx(out[brain].max())
    with pytest.raises(DatasetError, match="constant"):
        normalize_modality(np.ones_like(vol), brain, "case x")
    with pytest.raises(DatasetError, match="empty"):
        normalize_modality(vol, np.zeros_like(brain))


def test_normalize_modality_differs_from_monai_on_the_whole_volume_and_is_the_right_one():
    """MONAI's ClipIntensityPercentiles + NormalizeIntensity(nonzero=True) on the whole volume is not
    what the paper's preprocessing (and ours) does, and it is wrong for skull-stripped MRI:

    - the percentiles count the zero background (most of a BraTS volume), so the upper clip falls
      far below the brain's 99th percentile and flattens bright tumour;
    - ``nonzero`` is not the brain mask: brain voxels whose intensity is exactly 0 are left out.
    So we apply those same MONAI transforms to the brain's voxels only.
    """
    from monai.transforms import ClipIntensityPercentiles, NormalizeIntensity

    rng = np.random.default_rng(1)
    vol = np.zeros((40, 40, 10), np.float32)
    brain = np.zeros(vol.shape, bool)
    brain[14:26, 14:26] = True  # 9% of the volume, about BraTS's share
    vol[brain] = rng.gamma(4.0, 25.0, int(brain.sum()))
    vol[15, 15, :3] = 0.0  # dark brain voxels
    ours = normalize_modality(vol, brain)
    theirs = np.asarray(NormalizeIntensity(nonzero=True)(ClipIntensityPercentiles(1.0, 99.0)(vol[None])))[0]
    inside = vol[brain]
    # ours: clipped at the brain's own percentiles and z-scored over every brain voxel
    lo, hi = np.percentile(inside, [1.0, 99.0])
    expected = (np.clip(inside, lo, hi) - np.clip(inside, lo, hi).mean()) / np.clip(inside, lo, hi).std()
    np.testing.assert_allclose(ours[brain], expected, rtol=1e-5, atol=1e-5)
    # theirs: the whole-volume 99th percentile lies well inside the brain's range, so many more brain voxels are clipped
    whole_hi = np.percentile(vol, 99.0)
    assert whole_hi < np.percentile(inside, 95.0)
    assert np.unique(theirs[brain]).size < np.unique(ours[brain]).size - 20
    assert not np.allclose(theirs[brain], ours[brain], atol=1e-2)


def test_crop_in_plane_keeps_the_centre():
    arr = np.arange(6 * 6).reshape(1, 6, 6, 1)
    np.testing.assert_array_equal(crop_in_plane(arr, 2)[0, :, :, 0], [[14, 15], [20, 21]])
    padded = crop_in_plane(arr, 8)
    assert isinstance(padded, np.ndarray)
    assert padded.shape == (1, 8, 8, 1) and padded[0, 1:7, 1:7, 0].tolist() == arr[0, :, :, 0].tolist()


def test_crop_in_plane_centres_like_the_inference_crop():
    """MONAI's ResizeWithPadOrCrop replaced a hand-written crop (start = (n - size) // 2). They agree
    except for an even side cropped to an odd size: MONAI starts at n // 2 - size // 2, one voxel later.
    MONAI's is the right one here: the bundles' inference crops whole volumes with ResizeWithPadOrCropd,
    so training slices cropped the same way put every voxel where inference puts it. (Both are half a
    voxel off the true centre; the paper's 240 -> 224 is even and identical either way.)"""
    arr = np.arange(6 * 7).reshape(1, 6, 7, 1)
    cropped = crop_in_plane(arr, 3)
    np.testing.assert_array_equal(cropped[0, :, :, 0], arr[0, 2:5, 2:5, 0])  # rows: 6 // 2 - 1 = 2 (the old crop: 1)
    padded = crop_in_plane(arr, 8)  # an odd pad puts the extra zero row at the end
    assert padded.shape == (1, 8, 8, 1)
    np.testing.assert_array_equal(padded[0, 1:7, 0:7, 0], arr[0, :, :, 0])
    assert padded[0, 0].sum() == 0 and padded[0, 7].sum() == 0 and padded[0, :, 7].sum() == 0


def test_splits_are_disjoint_seeded_and_cover_all(demo_brats):
    train = find_brats_cases(demo_brats, split="train", val_fraction=0.25)
    val = find_brats_cases(demo_brats, split="val", val_fraction=0.25)
    assert len(val) == 2 and not set(train) & set(val)
    assert sorted(train + val) == find_brats_cases(demo_brats)
    assert find_brats_cases(demo_brats, split="val", val_fraction=0.25, seed=0) == val  # seeded, repeatable
    with pytest.raises(ValueError, match="split 'test'"):
        find_brats_cases(demo_brats, split="test")


def test_prepared_slices_hold_tumour_only_and_are_cached(demo_brats, tmp_path):
    items = prepare_brats_slices(demo_brats, tmp_path, "val", crop_size=16, val_fraction=0.25)
    cases = {x["case"] for x in items}
    assert cases == {c.name for c in find_brats_cases(demo_brats, split="val", val_fraction=0.25)}
    first = load_npz(items[0]["path"], ["image", "label"])
    assert first["image"].shape == (4, 16, 16) and first["label"].shape == (3, 16, 16)
    for item in items:
        assert load_npz(item["path"], ["label"])["label"].any()
    # every slice of the case with tumour is kept, in order
    case_dir = next(c for c in find_brats_cases(demo_brats) if c.name == items[0]["case"])
    _, regions, _ = load_brats_case(case_dir)
    expected = np.flatnonzero(crop_in_plane(regions, 16).any(axis=(0, 1, 2)))
    assert [x["slice"] for x in items if x["case"] == case_dir.name] == expected.tolist()
    mtime = (tmp_path / next(tmp_path.iterdir()).name / "manifest.json").stat().st_mtime_ns
    again = prepare_brats_slices(demo_brats, tmp_path, "val", crop_size=16, val_fraction=0.25)
    assert again == items
    assert (tmp_path / next(tmp_path.iterdir()).name / "manifest.json").stat().st_mtime_ns == mtime
    other = prepare_brats_slices(demo_brats, tmp_path, "val", modalities=["flair"], crop_size=16, val_fraction=0.25)
    assert load_npz(other[0]["path"], ["image"])["image"].shape == (1, 16, 16)


def test_missing_modality_and_corrupt_nifti_name_the_case_and_file(demo_brats, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_brats, data)
    case = find_brats_cases(data)[0]
    (case / f"{case.name}_t2.nii.gz").unlink()
    with pytest.raises(DatasetError, match=rf"{case.name}.*'t2' missing.*{case.name}_t2\.nii\.gz"):
        prepare_brats_slices(data, tmp_path / "cache", "all", crop_size=16)
    # the same data without T2 works: modalities are configurable
    assert prepare_brats_slices(data, tmp_path / "cache", "all", modalities=["t1", "flair"], crop_size=16)
    flair = case / f"{case.name}_flair.nii.gz"
    flair.write_bytes(flair.read_bytes()[:60])
    with pytest.raises(DatasetError, match=rf"cannot read .*{case.name}_flair\.nii\.gz"):
        load_brats_case(case, modalities=["flair"])
    assert not [p for p in (tmp_path / "cache").iterdir() if ".tmp" in p.name], "partial cache left behind"
    with pytest.raises(ValueError, match="'t1gd' does not exist"):
        load_brats_case(case, modalities=["t1gd"])
    with pytest.raises(DatasetError, match="no BraTS cases"):
        find_brats_cases(tmp_path / "cache")


def test_load_brats_cased_gives_cropped_volumes(demo_brats):
    item = brats_volume_datalist(demo_brats, "val", val_fraction=0.25)[0]
    out = LoadBratsCased(keys=["image", "label"], crop_size=16)(item)
    assert out["image"].shape == (4, 16, 16, 6) and out["label"].shape == (3, 16, 16, 6)
    assert out["image"].meta["filename_or_obj"].endswith(item["case"])
    only_image = LoadBratsCased(keys="image", modalities=["flair", "t1ce"], crop_size=16)(item)
    assert only_image["image"].shape[0] == 2 and "label" not in only_image


def test_brats2015_deepmedic_two_modalities(brats2015_dir, tmp_path):
    """The real 2015 cases (FLAIR + T1c only, brain masks, labels 0-4) prepare with the same code."""
    val = find_brats_cases(brats2015_dir, "brats2015_deepmedic", "val")
    assert [c.parent.name for c in val] == ["validation", "validation"]
    image, regions, _ = load_brats_case(val[0], "brats2015_deepmedic", ["flair", "t1ce"])
    assert image.shape[0] == 2 and regions.shape[0] == 3 and regions[2].sum() <= regions[1].sum() <= regions[0].sum()
    with pytest.raises(DatasetError, match=r"'t2' missing.*T2_subtrMeanDivStd\.nii\.gz"):
        load_brats_case(val[0], "brats2015_deepmedic", ["flair", "t2"])
    items = prepare_brats_slices(
        brats2015_dir, tmp_path, "test", layout="brats2015_deepmedic", modalities=["flair", "t1ce"], crop_size=224
    )
    assert items and load_npz(items[0]["path"], ["image"])["image"].shape == (2, 224, 224)


def test_slice_preparation_shows_progress_over_the_cases(demo_brats, tmp_path, capsys):
    prepare_brats_slices(demo_brats, tmp_path / "a", "val", crop_size=16, val_fraction=0.25)
    err = capsys.readouterr().err
    assert "preparing val slices" in err and "2/2" in err
    prepare_brats_slices(demo_brats, tmp_path / "b", "val", crop_size=16, val_fraction=0.25, progress=False)
    assert "preparing" not in capsys.readouterr().err

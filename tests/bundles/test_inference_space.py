"""Inference writes label maps in the input's space: shape, axis order and affine of the source, and a
structure of known position where it is. Hand-set networks whose output follows the image intensity stand
in for trained ones, so the expected label map is known voxel by voxel."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from monai_hsmix.bundle.utils import bundle_dir
from monai_hsmix.data.brats import brats2015_to_2018_labels, load_brats_case
from monai_hsmix.data.synapse import convert_btcv

from .conftest import configs

# a non-identity affine: anisotropic spacing, a flipped x axis, an offset
AFFINE = np.array([[-0.8, 0.0, 0.0, 120.0], [0.0, 0.7, 0.0, -30.5], [0.0, 0.0, 3.0, 12.0], [0.0, 0.0, 0.0, 1.0]])
LIVER = 5


class IntensityToClass(torch.nn.Module):
    """Synapse stand-in: class ``LIVER`` where the windowed CT is above 0.5, background elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(40.0))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 9, *x.shape[2:], dtype=x.dtype, device=x.device)
        logits[:, LIVER] = self.gain * (x[:, 0] - 0.5)
        return logits


class IntensityToRegions(torch.nn.Module):
    """BraTS stand-in: WT where FLAIR > t_wt, TC where T1c > t_tc, ET where T1c > t_et (normalised values)."""

    def __init__(self, t_wt: float, t_tc: float, t_et: float) -> None:
        super().__init__()
        self.register_buffer("thresholds", torch.tensor([t_wt, t_tc, t_et]))

    def forward(self, x):
        flair, t1c = x[:, 0], x[:, 1]
        th = self.thresholds
        return 50.0 * torch.stack([flair - th[0], t1c - th[1], t1c - th[2]], dim=1)


def _run_inference(bundle: str, output_dir: Path, network, **overrides) -> Path:
    ckpt = output_dir / "model.pt"
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), ckpt)
    wf = ConfigWorkflow(
        config_file=configs(bundle, "inference"),
        workflow_type=None,
        bundle_root=str(bundle_dir(bundle)),
        output_dir=str(output_dir),
        ckpt_path=str(ckpt),
        network_def=network,
        sw_batch_size=4,
        **overrides,
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    return output_dir / "predictions"


def _box(shape, lo, hi) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask


def _check_synapse_prediction(pred_file: Path, expected: np.ndarray) -> None:
    written = nib.load(str(pred_file))
    got = np.asarray(written.dataobj)
    assert got.shape == expected.shape
    np.testing.assert_allclose(written.affine, AFFINE, atol=1e-5)
    # resizing each slice to the network's size and back may move the border by a voxel; the interior
    # and the centre of the box are exact, and a transposed or shifted result would miss them
    interior = (
        expected
        & np.roll(expected, 1, 0)
        & np.roll(expected, -1, 0)
        & np.roll(expected, 1, 1)
        & np.roll(expected, -1, 1)
    )
    assert np.all(got[interior] == LIVER)
    far = ~(
        expected
        | np.roll(expected, 2, 0)
        | np.roll(expected, -2, 0)
        | np.roll(expected, 2, 1)
        | np.roll(expected, -2, 1)
    )
    assert np.all(got[far] == 0)
    centre_got = np.argwhere(got == LIVER).mean(axis=0)
    np.testing.assert_allclose(centre_got, np.argwhere(expected).mean(axis=0), atol=0.5)


def test_synapse_inference_on_a_nifti_scan_keeps_its_space(tmp_path):
    shape = (27, 19, 5)  # odd, not square
    box = _box(shape, (3, 10, 1), (11, 16, 4))  # off-centre, longer in x than in y
    hu = np.where(box, 200.0, -800.0).astype(np.int16)
    scan = tmp_path / "img0001.nii.gz"
    nib.save(nib.Nifti1Image(hu, AFFINE), str(scan))
    preds = _run_inference(
        "synapse_hsmix", tmp_path / "out", IntensityToClass(), img_size=32, datalist=[{"path": str(scan)}]
    )
    _check_synapse_prediction(preds / "img0001_seg.nii.gz", box)


def test_synapse_inference_on_a_converted_btcv_case_comes_back_in_the_scan_space(tmp_path):
    shape = (21, 17, 4)
    box = _box(shape, (2, 9, 0), (9, 14, 3))
    raw = tmp_path / "raw"
    for folder, name, arr in (("img", "img0001", np.where(box, 200, -800)), ("label", "label0001", box * 6)):
        (raw / folder).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(arr.astype(np.int16), AFFINE), str(raw / folder / f"{name}.nii.gz"))
    convert_btcv(raw, tmp_path / "synapse", train_cases=[], test_cases=[1])
    preds = _run_inference(
        "synapse_hsmix", tmp_path / "out", IntensityToClass(), img_size=32, dataset_dir=str(tmp_path / "synapse")
    )
    # test_vol_h5/case0001.npy.h5 -> case0001.npy_seg.nii.gz (SaveImaged drops the last suffix)
    _check_synapse_prediction(preds / "case0001.npy_seg.nii.gz", box)


def _write_brats2015_case(case_dir: Path, shape) -> np.ndarray:
    """A 2015-layout case whose FLAIR marks the whole tumour and whose T1c marks core (5) and enhancing (10)."""
    label = np.zeros(shape, np.uint8)
    # off-centre, inside the crop; enhancing > 1 % of the brain, so normalisation does not clip it onto the core
    label[_box(shape, (4, 18, 0), (20, 32, 5))] = 2  # oedema
    label[_box(shape, (7, 21, 1), (17, 29, 4))] = 1  # necrosis
    label[_box(shape, (7, 21, 2), (10, 24, 3))] = 3  # non-enhancing
    label[_box(shape, (12, 21, 1), (17, 29, 4))] = 4  # enhancing
    brain = _box(shape, (2, 2, 0), (shape[0] - 2, shape[1] - 2, shape[2]))
    flair = np.where(label > 0, 10.0, 0.0) * brain
    t1c = np.select([label == 4, np.isin(label, (1, 3))], [10.0, 5.0], 0.0) * brain
    case_dir.mkdir(parents=True)
    for name, arr in (
        ("Flair_subtrMeanDivStd", flair),
        ("T1c_subtrMeanDivStd", t1c),
        ("brainmask", brain),
        ("OTMultiClass", label),
    ):
        nib.save(
            nib.Nifti1Image(arr.astype(np.float32 if "Std" in name else np.uint8), AFFINE),
            str(case_dir / f"{name}.nii.gz"),
        )
    return label


def test_brats2015_inference_undoes_the_crop_and_writes_2018_labels(tmp_path):
    shape = (41, 37, 5)  # odd; cropped in x and y to the network's 32
    case_dir = tmp_path / "brats2015" / "test" / "case_a"
    truth = _write_brats2015_case(case_dir, shape)
    image, _, _ = load_brats_case(case_dir, "brats2015_deepmedic", ["flair", "t1ce"], with_label=False)

    def between(channel, lower_labels, upper_labels):  # a threshold between two groups of labels
        return float(
            (image[channel][np.isin(truth, lower_labels)].max() + image[channel][np.isin(truth, upper_labels)].min())
            / 2
        )

    net = IntensityToRegions(
        between(0, [0], [1, 2, 3, 4]), between(1, [0, 2], [1, 3, 4]), between(1, [0, 1, 2, 3], [4])
    )
    # the anisotropic AFFINE is not BraTS's 1 mm: the space is what is tested here, so the spacing check is off
    preds = _run_inference(
        "brats2018_hsmix",
        tmp_path / "out",
        net,
        img_size=32,
        layout="brats2015_deepmedic",
        modalities=["flair", "t1ce"],
        dataset_dir=str(tmp_path / "brats2015"),
        infer_split="test",
        expected_spacing=None,
    )
    written = nib.load(str(preds / "case_a_seg.nii.gz"))
    assert written.shape == shape
    np.testing.assert_allclose(written.affine, AFFINE, atol=1e-5)
    got = np.asarray(written.dataobj)
    assert 3 in truth and 3 not in got
    np.testing.assert_array_equal(got, brats2015_to_2018_labels(truth))


def test_brats2015_mapping_merges_label_3_into_1():
    np.testing.assert_array_equal(brats2015_to_2018_labels(np.array([0, 1, 2, 3, 4])), [0, 1, 2, 1, 4])


class Zeros(torch.nn.Module):
    """A stand-in whose prediction is empty: only the written geometry is checked."""

    def __init__(self, out_channels: int = 3) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.full((out_channels,), -10.0))

    def forward(self, x):
        return self.bias.view(1, -1, 1, 1) + torch.zeros_like(x[:, :1])


@pytest.mark.slow
def test_real_brats2015_case_is_written_on_its_240_x_240_x_155_grid(brats2015_dir, tmp_path):
    from monai_hsmix.data.brats import brats_volume_datalist

    case = brats_volume_datalist(brats2015_dir, "test", layout="brats2015_deepmedic")[0]
    preds = _run_inference(
        "brats2018_hsmix",
        tmp_path / "out",
        Zeros(),
        layout="brats2015_deepmedic",
        modalities=["flair", "t1ce"],
        dataset_dir=str(brats2015_dir),
        datalist=[case],
    )
    source = nib.load(str(Path(case["case_dir"]) / "Flair_subtrMeanDivStd.nii.gz"))
    written = nib.load(str(preds / f"{case['case']}_seg.nii.gz"))
    assert written.shape == source.shape == (240, 240, 155)
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-5)

"""The Soft-CP ablation on tiny synthetic BraTS-like cases: sampler, resume, settings check, report; real
cases if present."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_hsmix.apps.mix_sweep import SettingsMismatchError
from monai_hsmix.apps.softcp_ablation import SOFTCP_ARMS, SoftCPAblationConfig, main, run
from monai_hsmix.apps.softcp_ablation.data import (
    DEFAULT_CHANNELS,
    LesionPasteSampler,
    brain_slices,
    list_cases,
    load_case,
)

SHAPE = (24, 24, 6)


def _write_case(folder: Path, rng: np.random.RandomState) -> None:
    folder.mkdir(parents=True)
    xx, yy = np.meshgrid(np.arange(24), np.arange(24), indexing="ij")
    brain = np.repeat((np.hypot(xx - 12, yy - 12) < 10)[..., None], SHAPE[2], 2)
    cx, cy = rng.randint(8, 16, size=2)
    tumour = np.repeat((np.hypot(xx - cx, yy - cy) < 3)[..., None], SHAPE[2], 2)
    tumour[..., :2] = False  # some brain slices without tumour
    label = np.where(tumour, rng.randint(1, 5), 0).astype(np.uint8)
    for k, name in enumerate(DEFAULT_CHANNELS):
        image = (brain * (0.5 + 1.5 * tumour * (k + 1)) + 0.1 * rng.randn(*SHAPE)).astype(np.float32)
        nib.save(nib.Nifti1Image(image, np.eye(4)), str(folder / name))
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), np.eye(4)), str(folder / "brainmask.nii.gz"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(folder / "OTMultiClass.nii.gz"))


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brats_like")
    rng = np.random.RandomState(0)
    for split, names in (("train", ("a", "b")), ("validation", ("c",)), ("test", ("d",))):
        for name in names:
            _write_case(root / split / name, rng)
    return root


def _config(data: Path, out: Path, **kw) -> SoftCPAblationConfig:
    base = dict(
        arms=("none", "softcp_online", "softcp_offline"),
        seeds=(0,),
        image_size=16,
        steps=2,
        batch_size=4,
        channels=(4, 8),
    )
    return SoftCPAblationConfig(data, out, **{**base, **kw})


def _slices(cases):
    return brain_slices([load_case(p) for p in list_cases(cases, ["train"])], 16)


def test_case_loading_and_slices(cases):
    case = load_case(list_cases(cases, ["train"])[0])
    assert (
        tuple(case.volume.image.shape) == (2, *SHAPE)
        and 0 <= float(case.volume.image.min()) <= float(case.volume.image.max()) <= 1
    )
    assert set(torch.unique(case.volume.label).tolist()) == {0, 1}  # every tumour label value is whole tumour
    data = _slices(cases)
    assert (
        data.images.shape == (12, 2, 16, 16)
        and data.labels.shape == (12, 1, 16, 16)
        and data.brain.shape == (12, 16, 16)
    )


def test_sampler_pastes_only_in_pasting_arms_and_offline_twins_are_fixed(cases):
    data = _slices(cases)
    draws = {}
    for name, (mode, offline, _) in SOFTCP_ARMS.items():
        sampler = LesionPasteSampler(data, mode, offline, prob=1.0, seed=0)
        draws[name] = (sampler.draw(6, torch.Generator().manual_seed(1)), sampler.pastes)
    (x0, y0), n0 = draws["none"]
    assert n0 == 0
    idx = torch.randint(12, (6,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(x0, data.images[idx])  # 'none' returns the drawn slices themselves
    for name in ("hard_cp", "softcp_online", "softcp_offline"):
        (x, y), n = draws[name]
        assert n == 6 and int(y.sum()) > int(y0.sum())  # tumours were added
    # hard and soft pastes of the same lesion at the same place differ only in the blend around it
    (xh, yh), _ = draws["hard_cp"]
    (xs, ys), _ = draws["softcp_online"]
    assert not torch.equal(xh, xs)
    # offline: the twin of a slice is the same every time it is drawn
    sampler = LesionPasteSampler(data, "soft", True, prob=1.0, seed=0)
    a, _ = sampler.draw(4, torch.Generator().manual_seed(2))
    b, _ = sampler.draw(4, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_offline_needs_a_mode(cases):
    with pytest.raises(ValueError, match="offline synthesis needs a mode"):
        LesionPasteSampler(_slices(cases), None, True)


def test_sweep_report_resume_and_settings_check(cases, tmp_path):
    out = tmp_path / "sweep"
    report = run(_config(cases, out))
    names = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert names == ["none_seed0.json", "softcp_offline_seed0.json", "softcp_online_seed0.json"]
    run_json = json.loads((out / "runs" / "softcp_online_seed0.json").read_text())
    assert run_json["sampler_pastes"] > 0 and [r["volume"] for r in run_json["volumes"]] == ["c", "d"]
    text = report.read_text()
    assert text.startswith("# Soft-CP ablation report") and "Finished runs: 3 of 3." in text and "whole tumour" in text
    assert (
        "| row − column | none | softcp_online | softcp_offline |" in text
        and "## Runs that predicted no tumour" in text
    )
    stamps = [p.stat().st_mtime_ns for p in sorted((out / "runs").glob("*.json"))]
    run(_config(cases, out))
    assert [p.stat().st_mtime_ns for p in sorted((out / "runs").glob("*.json"))] == stamps
    with pytest.raises(SettingsMismatchError, match=r"arm\.alpha: stored 0\.7, now 0\.5"):
        run(_config(cases, out, alpha=0.5))


def test_command_line_rejects_overlapping_splits(cases, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data-dir", str(cases), "--out", str(tmp_path), "--test-splits", "train"])
    assert "both training and test" in capsys.readouterr().err


def test_real_case_loads(brats2015_dir):
    case = load_case(list_cases(brats2015_dir, ["train"])[0])
    assert tuple(case.volume.image.shape) == (2, 240, 240, 155)
    assert int(case.volume.label.sum()) > 0 and bool(case.brain.any())

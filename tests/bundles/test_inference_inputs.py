"""Inputs checked as the model zoo checks them (issue 25, item 5): scans at another spacing or orientation stop
inference naming the case, Synapse warns on scans that do not look like CT, and BraTS inference takes a list
of NIfTI files per case as well as case folders."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from monai.data import MetaTensor

from monai_hsmix.bundle.cases import CaseError, CheckGeometryd
from monai_hsmix.data.brats import LoadBratsCased, find_brats_cases, load_brats_case
from monai_hsmix.data.io import DatasetError
from monai_hsmix.data.synapse import LoadSynapseVolumed, ct_intensity_problem

from .conftest import configs, log_records, run_bundle, tiny_overrides

nib = pytest.importorskip("nibabel")


def _scan(affine):
    return {"name": "c1", "image": MetaTensor(torch.zeros(1, 4, 4, 2), affine=torch.as_tensor(affine))}


def test_geometry_check_names_what_differs(caplog):
    lps_1mm = np.diag([-1.0, -1.0, 1.0, 1.0])
    CheckGeometryd("image", axcodes="LPS", spacing=[1, 1, 1])(_scan(lps_1mm))
    with pytest.raises(DatasetError, match=r"case c1: orientation RAS.*expects orientation LPS"):
        CheckGeometryd("image", axcodes="LPS")(_scan(np.eye(4)))
    with pytest.raises(DatasetError, match=r"case c1: .*spacing 1, 1, 3 mm.*expects spacing \[1.0, 1.0, 1.0\]"):
        CheckGeometryd("image", spacing=[1, 1, 1])(_scan(np.diag([1.0, 1.0, 3.0, 1.0])))
    CheckGeometryd("image", spacing=[1, 1, None])(_scan(np.diag([1.0, 1.0, 3.0, 1.0])))  # z unchecked
    with pytest.raises(ValueError, match="positive"):
        CheckGeometryd("image", spacing=[1, 0, 1])


def test_ct_check_tells_mri_from_ct():
    rng = np.random.default_rng(0)
    ct = np.concatenate([np.full(2000, -1000.0), rng.normal(40, 30, 6000), np.full(2000, 400.0)])
    assert ct_intensity_problem(ct) is None
    problem = ct_intensity_problem(rng.uniform(0, 1, 10000))  # an MRI scaled to [0, 1], as ACDC gave
    assert problem and "Hounsfield" in problem


def test_synapse_loader_warns_on_a_scan_that_is_not_ct(tmp_path):
    path = tmp_path / "mri.nii.gz"
    nib.save(
        nib.Nifti1Image(np.random.default_rng(0).uniform(0, 1, (8, 8, 3)).astype(np.float32), np.eye(4)), str(path)
    )
    with log_records("monai_hsmix.data.synapse", logging.WARNING) as records:
        LoadSynapseVolumed(keys="image")({"path": str(path)})
    seen = [r.getMessage() for r in records]
    assert len(seen) == 1 and str(path) in seen[0] and "does not look like CT" in seen[0]


def test_brats_case_as_a_list_of_files_equals_its_folder(demo_roots, tmp_path):
    case = find_brats_cases(demo_roots["brats2018_hsmix"])[0]
    files = [str(case / f"{case.name}_{m}.nii.gz") for m in ("t1", "t1ce", "t2", "flair")]
    from_files = LoadBratsCased(keys=["image"])({"image": files})
    from_folder = LoadBratsCased(keys=["image"])({"case_dir": str(case)})
    assert torch.equal(from_files["image"], from_folder["image"])
    assert from_files["image"].meta["filename_or_obj"].endswith(case.name)  # output <case>_seg.nii.gz
    with pytest.raises(DatasetError, match="3 files given for 4 modalities"):
        LoadBratsCased(keys=["image"])({"image": files[:3]})
    with pytest.raises(DatasetError, match="has no label"):
        LoadBratsCased(keys=["image", "label"])({"image": files})


@pytest.mark.slow
def test_brats_inference_on_files_and_a_scan_at_another_spacing(demo_roots, tmp_path):
    bundle = "brats2018_hsmix"
    data = tmp_path / "data"
    shutil.copytree(demo_roots[bundle], data)
    out = tmp_path / "out"
    opts = tiny_overrides(bundle, data, out)
    run_bundle(bundle, ["train"], **opts)
    cases = find_brats_cases(data)
    datalist = [{"image": [str(c / f"{c.name}_{m}.nii.gz") for m in ("t1", "t1ce", "t2", "flair")]} for c in cases[:2]]
    # the second case resampled on paper: 3 mm slices
    for f in datalist[1]["image"]:
        img = nib.load(f)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), np.diag([1.0, 1.0, 3.0, 1.0])), f)
    infer = {
        k: v
        for k, v in opts.items()
        if "#" not in k and k not in ("max_epochs", "batch_size", "val_batch_size", "num_workers", "log_every")
    }
    with pytest.raises(RuntimeError) as excinfo:
        wf = ConfigWorkflow(config_file=configs(bundle, "inference"), workflow_type=None, datalist=datalist, **infer)
        wf.initialize()
        wf.run()
    chain, err = [], excinfo.value
    while err is not None and not isinstance(err, CaseError):
        chain.append(f"{type(err).__name__}: {str(err)[:200]}")
        err = err.__cause__ or err.__context__
    assert err is not None, chain
    assert cases[1].name in str(err) and "spacing" in str(err), str(err)
    written = sorted(p.name for p in (out / "predictions").glob("*.nii.gz"))
    assert written == [f"{cases[0].name}_seg.nii.gz"]
    # the files of the first case give the same prediction file as its folder would: shape of the source
    pred = nib.load(str(out / "predictions" / written[0]))
    assert pred.shape == load_brats_case(cases[0], with_label=False)[0].shape[1:]

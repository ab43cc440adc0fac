"""One bad file (issue 25, item 3): the error names the case and the file first and last, and inference and
evaluation can leave unreadable cases out (``skip_unreadable``), saying which."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow

from monai_hsmix.bundle.cases import CaseDataset, CaseError
from monai_hsmix.bundle.utils import bundle_dir
from monai_hsmix.data.brats import LoadBratsCased, brats_volume_datalist, find_brats_cases
from monai_hsmix.data.io import DatasetError

from .conftest import configs, run_bundle, tiny_overrides

pytestmark = pytest.mark.slow

BRATS = "brats2018_hsmix"
SYNAPSE = "synapse_hsmix"


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def trained(demo_roots, tmp_path_factory):
    """A BraTS demo copy with one truncated modality in a validation case, and a model trained on the good data."""
    root = tmp_path_factory.mktemp("bad_case")
    data = root / "data"
    shutil.copytree(demo_roots[BRATS], data)
    out = root / "out"
    opts = tiny_overrides(BRATS, data, out)
    run_bundle(BRATS, ["train"], **opts)
    bad_case = find_brats_cases(data, split="val", val_fraction=opts["val_fraction"])[0]
    bad_file = bad_case / f"{bad_case.name}_t1ce.nii.gz"
    _truncate(bad_file)
    return {"data": data, "out": out, "opts": opts, "case": bad_case.name, "file": bad_file}


def _cli(args, cwd, env):
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    return proc


def _error_lines(text: str):
    return [ln for ln in text.splitlines() if re.search(r"\bERROR\b|^error:", ln)]


def _cli_opts(trained, **extra):
    opts = {k: v for k, v in trained["opts"].items() if "#" not in k}
    opts.update(extra)
    out = []
    for k, v in opts.items():
        out += [f"--{k}", str(v)]
    return out


@pytest.mark.parametrize("mode", ["inference", "evaluate"])
def test_a_truncated_file_is_named_first_and_last(trained, subprocess_env, mode):
    folder = bundle_dir(BRATS)
    if mode == "inference":
        args = ["--config_file", "configs/inference.yaml"] + _cli_opts(trained, num_workers=0)
    else:  # a DataLoader worker, whose error used to arrive as "Caught RuntimeError in DataLoader worker process 0"
        args = ["--config_file", "['configs/train.yaml','configs/evaluate.yaml']"] + _cli_opts(trained, num_workers=1)
    proc = _cli(args + ["--logging_file", "configs/logging.conf"], folder, subprocess_env)
    both = proc.stdout + proc.stderr
    first = _error_lines(proc.stdout) or _error_lines(proc.stderr)
    assert first, both[-3000:]
    name = str(trained["file"])
    assert trained["case"] in first[0] and name in first[0], first[0]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CaseError") and name in last and trained["case"] in last, last
    assert "applying transform" not in last and "Caught" not in last


def test_case_error_from_a_worker_keeps_its_own_line_first():
    worker_text = (
        "Caught CaseError in DataLoader worker process 3.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nmonai_hsmix.bundle.cases.CaseError: case A: cannot read /d/a.nii.gz\n'
    )
    err = CaseError(worker_text)
    lines = str(err).splitlines()
    assert lines == ["case A: cannot read /d/a.nii.gz [in DataLoader worker process 3]"]
    assert str(CaseError("case B: plain")) == "case B: plain"


def test_dataset_names_the_case_and_skips_only_on_request(trained):
    items = brats_volume_datalist(trained["data"], "val", val_fraction=trained["opts"]["val_fraction"])
    loader = LoadBratsCased(keys=["image"])
    strict = CaseDataset(items, loader)
    bad = [i for i, it in enumerate(items) if it["name"] == trained["case"]][0]
    with pytest.raises(CaseError) as excinfo:
        strict[bad]
    assert str(excinfo.value).splitlines()[0].startswith(f"case {trained['case']}")
    assert str(trained["file"]) in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, DatasetError)

    lenient = CaseDataset(items, loader, skip_unreadable=True)
    assert len(lenient) == len(items) - 1 and lenient.total == len(items)
    assert [s[0] for s in lenient.skipped] == [trained["case"]]
    assert str(trained["file"]) in lenient.skipped[0][1]

    # a bug (not a dataset error) is never skipped nor renamed
    def broken(item):
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        CaseDataset(items, broken, skip_unreadable=True)


def _run_listening(names, bundle, **opts):
    wf, records = run_bundle(bundle, names, listen="monai_hsmix.bundle.cases", **opts)
    return wf, [r.getMessage() for r in records]


def test_evaluation_skips_the_unreadable_case_on_request(trained, tmp_path):
    opts = dict(trained["opts"], output_dir=str(tmp_path), skip_unreadable=True)
    shutil.copytree(trained["out"] / "models", tmp_path / "models")
    _, messages = _run_listening(["train", "evaluate"], BRATS, **opts)
    rows = (tmp_path / "eval" / "per_case.csv").read_text().splitlines()
    cases = {r.split(",")[0] for r in rows[1:]}
    assert trained["case"] not in cases and cases
    summary = [m for m in messages if "skipped as unreadable" in m]
    assert summary and trained["case"] in summary[-1] and str(trained["file"]) in summary[-1]


def test_synapse_inference_on_a_datalist_skips_the_unreadable_scan(demo_roots, tmp_path):
    nib = pytest.importorskip("nibabel")
    out = tmp_path / "out"
    opts = tiny_overrides(SYNAPSE, demo_roots[SYNAPSE], out)
    run_bundle(SYNAPSE, ["train"], **opts)
    rng = np.random.default_rng(0)
    scans = []
    for i in range(3):
        path = tmp_path / f"scan{i}.nii.gz"
        nib.save(nib.Nifti1Image(rng.uniform(-200, 300, (32, 32, 4)).astype(np.float32), np.eye(4)), str(path))
        scans.append(path)
    _truncate(scans[1])
    infer = {
        k: v
        for k, v in opts.items()
        if "#" not in k and k not in ("max_epochs", "batch_size", "val_batch_size", "num_workers", "log_every")
    }
    datalist = [{"path": str(p)} for p in scans]
    with pytest.raises(RuntimeError) as excinfo:  # off by default: the bad scan stops the run, named
        wf = ConfigWorkflow(config_file=configs(SYNAPSE, "inference"), workflow_type=None, datalist=datalist, **infer)
        wf.initialize()
        wf.run()
    err = next(e for e in _chain(excinfo.value) if isinstance(e, CaseError))
    assert str(scans[1]) in str(err).splitlines()[0]

    _, messages = _run_listening(["inference"], SYNAPSE, datalist=datalist, skip_unreadable=True, **infer)
    written = sorted(p.name for p in (out / "predictions").glob("*.nii.gz"))
    assert written == ["scan0_seg.nii.gz", "scan2_seg.nii.gz"]
    assert any("skipping 1 of 3" in m and str(scans[1]) in m for m in messages)
    assert any("2 of 3 cases done; 1 skipped" in m for m in messages)


def _chain(exc):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__

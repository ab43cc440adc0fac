"""Command-line apps: the BTCV converter and the demo data generator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monai_hsmix.apps import convert_btcv, make_demo_data
from monai_hsmix.data.io import DatasetError
from monai_hsmix.data.synapse import synapse_test_datalist, synapse_train_datalist

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_data_cli_writes_the_layout(tmp_path, capsys):
    assert (
        make_demo_data.main(["--dataset", "synapse", "--out", str(tmp_path / "syn"), "--size", "24", "--depth", "2"])
        == 0
    )
    assert "synapse demo dataset written" in capsys.readouterr().out
    assert len(synapse_train_datalist(tmp_path / "syn")) == 8
    with pytest.raises(FileExistsError):
        make_demo_data.main(["--dataset", "synapse", "--out", str(tmp_path / "syn")])
    with pytest.raises(SystemExit):
        make_demo_data.main(["--dataset", "monuseg", "--out", str(tmp_path / "x")])


def test_convert_btcv_cli_round_trip_through_demo_raw_data(tmp_path, capsys):
    make_demo_data.main(["--dataset", "synapse", "--out", str(tmp_path / "demo"), "--size", "24", "--depth", "3"])
    out = tmp_path / "converted"
    convert_btcv.main(
        ["--raw-dir", str(tmp_path / "demo"), "--out", str(out), "--train-cases", "5", "6", "--test-cases", "1"]
    )
    assert "wrote 6 training slices and 1 test volumes" in capsys.readouterr().out
    assert [x["case"] for x in synapse_test_datalist(out)] == ["case0001"]
    # same conversion as the demo generator's own
    a = np.load(out / "train_npz" / "case0006_slice002.npz")["image"]
    b = np.load(tmp_path / "demo" / "train_npz" / "case0006_slice002.npz")["image"]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DatasetError, match="img0010.nii.gz"):
        convert_btcv.main(
            ["--raw-dir", str(tmp_path / "demo"), "--out", str(out), "--train-cases", "10", "--test-cases"]
        )


@pytest.mark.parametrize("app", ["convert_btcv"])  # one interpreter start is enough to check -m wiring
def test_apps_run_as_modules(app, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", f"monai_hsmix.apps.{app}", "--help"],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
    )
    assert proc.returncode == 0 and "--out" in proc.stdout

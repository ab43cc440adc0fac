"""python -m monai_hsmix.apps.bundle_metadata: installed versions and evaluation results into metadata.json."""

from __future__ import annotations

import json
import shutil

import pytest
from monai.bundle import verify_metadata

from monai_hsmix.apps.bundle_metadata import installed_version, main
from monai_hsmix.bundle.utils import bundle_dir

SCHEMA = bundle_dir("brats2018_hsmix").parents[1] / "monai_hsmix" / "bundle_schema" / "meta_schema_20240725.json"


@pytest.fixture
def meta_copy(tmp_path):
    path = tmp_path / "metadata.json"
    shutil.copy(bundle_dir("brats2018_hsmix") / "configs" / "metadata.json", path)
    meta = json.loads(path.read_text())
    meta["monai_version"], meta["required_packages_version"]["nibabel"] = "0.0.1", "1.0"  # stale
    path.write_text(json.dumps(meta))
    return path


def test_versions_and_eval_metrics_are_recorded(meta_copy, tmp_path):
    import monai

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "summary.csv").write_text(
        "metric,class,mean,median,std,count\nDice,WT,0.9,0.9,0,2\nDice,TC,0.7,0.7,0,2\nDice,ET,nan,nan,nan,0\n"
        "HD95 (mm),WT,3.5,3.5,0,2\nHD95 (mm),TC,4.0,4.0,0,2\nHD95 (mm),ET,nan,nan,nan,0\n"
    )
    assert main(["--meta-file", str(meta_copy), "--eval-dir", str(eval_dir), "--command", "make demo"]) == 0
    meta = json.loads(meta_copy.read_text())
    assert meta["monai_version"] == monai.__version__
    assert meta["required_packages_version"]["nibabel"] == installed_version("nibabel")
    assert meta["eval_metrics"]["mean_dice"] == pytest.approx(0.8)  # ET has no finite value: left out
    assert meta["eval_metrics"]["dice_TC"] == 0.7 and meta["eval_metrics"]["hd95_WT"] == 3.5
    assert meta["eval_metrics"]["dice_ET"] is None
    assert meta["eval_metrics_source"] == "make demo"
    verify_metadata(meta_file=str(meta_copy), filepath=str(SCHEMA))


def test_metrics_need_their_command_and_a_summary(meta_copy, tmp_path):
    before = meta_copy.read_text()
    with pytest.raises(ValueError, match="--command is required"):
        main(["--meta-file", str(meta_copy), "--eval-dir", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="summary.csv"):
        main(["--meta-file", str(meta_copy), "--eval-dir", str(tmp_path / "none"), "--command", "x"])
    assert meta_copy.read_text() == before  # nothing half-written
    meta = json.loads(before)
    meta["required_packages_version"]["no-such-package-here"] = "1"
    meta_copy.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no-such-package-here"):
        main(["--meta-file", str(meta_copy)])

"""What a user sees when a bundle run stops: the error itself on the first and the last line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from monai_hsmix.bundle.errors import error_chain, find_in_chain, root_cause
from monai_hsmix.bundle.utils import bundle_dir

pytestmark = pytest.mark.slow


def test_both_bundles_report_errors_plainly():
    for bundle in ("synapse_hsmix", "brats2018_hsmix"):
        imports = yaml.safe_load((bundle_dir(bundle) / "configs" / "train.yaml").read_text())["imports"]
        assert "$import monai_hsmix.bundle.errors" in imports, bundle


def test_a_missing_dataset_dir_is_named_first_and_last(tmp_path, subprocess_env):
    bundle = "synapse_hsmix"
    missing = tmp_path / "no_such_data"
    folder = bundle_dir(bundle)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            "configs/train.yaml",
            "--logging_file",
            "configs/logging.conf",
            "--dataset_dir",
            str(missing),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        cwd=folder,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    # MONAI warns about trusting the config before anything runs; the error comes next. The warning's
    # format depends on the environment (ITK, when installed, replaces warnings.formatwarning with a
    # bare message; Python's own adds "file:line: UserWarning:" and echoes the source line)
    lines, in_warning = [], False
    for ln in proc.stderr.splitlines():
        if "parsing config_file" in ln:
            in_warning = True
        elif not (in_warning and ln.startswith(" ")) and ln.strip():
            in_warning = False
            lines.append(ln)
    assert lines[0].startswith("error: FileNotFoundError") and str(missing) in lines[0], lines[:3]
    assert lines[-1].startswith("error: FileNotFoundError") and str(missing) in lines[-1], lines[-3:]
    assert "Traceback" in proc.stderr  # the full traceback is still there, between the two


def test_error_chain_helpers():
    try:
        try:
            raise FileNotFoundError("inner")
        except FileNotFoundError as e:
            raise RuntimeError("Failed to evaluate x") from e
    except RuntimeError as outer:
        caught = outer
    assert [type(e) for e in error_chain(caught)] == [RuntimeError, FileNotFoundError]
    assert str(root_cause(caught)) == "inner"
    assert isinstance(find_in_chain(caught, OSError), FileNotFoundError)
    assert find_in_chain(caught, KeyError) is None

"""``python -m monai_hsmix.apps.bundle verify`` from a copy of a bundle outside the repository (issue 25, item 1):
no download, no folder left behind, and a bad metadata file named with exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from monai_hsmix.apps.bundle import main, schema_path, shipped_schemas
from monai_hsmix.bundle.utils import BUNDLES, bundle_dir

pytestmark = pytest.mark.slow


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_verify_from_a_copy_outside_the_repository(tmp_path, subprocess_env):
    bundle = "synapse_hsmix"
    copy = tmp_path / "a" / "b" / bundle  # "../../monai_hsmix/..." from here is tmp_path/a/monai_hsmix: absent
    shutil.copytree(bundle_dir(bundle), copy)
    before = _tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "monai_hsmix.apps.bundle", "verify"],
        cwd=copy,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "valid against" in proc.stdout and "meta_schema_20240725.json" in proc.stdout
    assert _tree(tmp_path) == before, "the check created files or folders"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_verify_and_schema_in_process(bundle, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "a" / "b" / bundle
    shutil.copytree(bundle_dir(bundle), copy)
    before = _tree(tmp_path)
    monkeypatch.chdir(copy)
    assert main(["verify"]) == 0
    assert "valid against" in capsys.readouterr().out
    # the printed schema path is what MONAI's own command takes as --filepath
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(schema_path(copy)) and printed.endswith("meta_schema_20240725.json")
    assert _tree(tmp_path) == before, "the check created files or folders"


def test_verify_reports_bad_metadata_with_exit_code_2(tmp_path, capsys):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir("synapse_hsmix"), copy)
    meta_file = copy / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    del meta["version"]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(SystemExit) as excinfo:
        main(["verify", str(copy)])
    assert excinfo.value.code == 2
    assert "'version' is a required property" in capsys.readouterr().err

    meta["schema"] = "https://example.org/meta_schema_19990101.json"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(SystemExit):
        main(["verify", str(copy)])
    assert "meta_schema_19990101.json" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["schema", str(tmp_path / "nothing")])
    assert "no bundle metadata at" in capsys.readouterr().err


def test_the_schema_is_shipped_as_package_data():
    assert "meta_schema_20240725.json" in shipped_schemas()


def test_shipped_schema_hashes_cover_every_shipped_schema():
    import hashlib

    from monai_hsmix.apps.bundle import SCHEMA_SHA256

    assert set(SCHEMA_SHA256) == set(shipped_schemas())
    for name, digest in SCHEMA_SHA256.items():
        assert hashlib.sha256(schema_path_for(name).read_bytes()).hexdigest() == digest


def schema_path_for(name):
    from importlib import resources

    return resources.files("monai_hsmix").joinpath("bundle_schema", name)

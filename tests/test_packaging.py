"""The light install: the transforms import and run without the optional packages of the extras."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monai.utils import OptionalImportError

from monai_hsmix.optional import OPTIONAL_PACKAGES, require

REPO_ROOT = Path(__file__).resolve().parents[1]
OPTIONAL_MODULES = sorted(OPTIONAL_PACKAGES)

# Run in a fresh interpreter: uses the public API the way a user of the light install does, on a small
# batch, and prints what it saw as JSON. Shared by the in-place check and the clean-venv wheel check.
USE_TRANSFORM = r"""
import json, sys
import numpy as np, torch
import monai_hsmix, monai_hsmix.core, monai_hsmix.backends, monai_hsmix.transforms
from monai_hsmix import RandHSMixd
from monai_hsmix.data import cardiac_batch

images, labels = cardiac_batch(4, 32, seed=0)
out = {}
for backend in ("reference", "torch"):
    mix = RandHSMixd(["image", "label"], "label", num_classes=4, n_segments=12, backend=backend)
    mix.set_random_state(0)
    batch = mix({"image": torch.from_numpy(images), "label": torch.from_numpy(labels)})
    lab = batch["label"]
    out[backend] = {
        "image": list(batch["image"].shape), "label": list(lab.shape),
        "label_sums_to_one": bool(torch.allclose(lab.sum(1), torch.ones(()), atol=1e-5)),
        "changed": bool((batch["image"][-4:] != torch.from_numpy(images)).any()),  # the mixed half
    }
out["file"] = monai_hsmix.__file__
"""

# Makes the optional packages unimportable (as in an install without extras) and records every
# attempt to import one after MONAI and numba have loaded (both probe optional packages at import:
# MONAI via optional_import, numba tries yaml for a config file; they cope without them).
BLOCK_OPTIONAL = r"""
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
attempts = []
armed = [False]
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            if armed[0]:
                attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, Block())
import monai
import numba
armed[0] = True
"""

CHECK_LIGHT = (
    BLOCK_OPTIONAL
    + USE_TRANSFORM
    + r"""
out["attempts"] = list(attempts)  # a copy: the bundle import below adds to it
out["loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
try:
    import monai_hsmix.engines.checkpoint  # a bundle module: ignite at its top
except ImportError as err:
    out["bundle_module_error"] = f"{type(err).__name__}: {err}"
print("RESULT" + json.dumps(out))
"""
)


def _run(args, cwd: Path, pythonpath: str = "") -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": pythonpath}
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, proc.stdout[-3000:]
    return json.loads(line[-1][len("RESULT") :])


def _assert_transform_ran(out: dict) -> None:
    for backend in ("reference", "torch"):
        got = out[backend]
        assert got["image"] == [8, 1, 32, 32] and got["label"] == [8, 4, 32, 32], got  # originals + mixed
        assert got["label_sums_to_one"] and got["changed"], got


def test_transforms_never_import_the_optional_packages():
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    out = _run([sys.executable, "-c", CHECK_LIGHT, ",".join(OPTIONAL_MODULES)], REPO_ROOT, pythonpath)
    assert Path(out["file"]).resolve().parent == REPO_ROOT / "monai_hsmix"
    assert out["attempts"] == [], f"importing or running the transforms tried to import {out['attempts']}"
    assert out["loaded"] == []
    _assert_transform_ran(out)
    # the module that needs one fails with the package and the extra to install, not a bare "No module named"
    err = out["bundle_module_error"]
    assert "pytorch-ignite" in err and 'pip install "monai_hsmix[bundles]"' in err, err


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()  # default interpolation, as setuptools reads %(bundles)s
    cfg.read(REPO_ROOT / "setup.cfg")
    return cfg


def _names(requirements: str) -> set:
    lines = (ln.split("#")[0].strip() for ln in requirements.splitlines())
    return {ln.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip().lower() for ln in lines if ln}


def test_optional_table_matches_setup_cfg_extras():
    cfg = _setup_cfg()
    extras = {
        name: _names(cfg.get("options.extras_require", name)) for name in ("bundles", "preview", "tracking", "all")
    }
    core = _names(cfg.get("options", "install_requires"))
    for module, (package, named) in OPTIONAL_PACKAGES.items():
        assert package.lower() not in core, f"{package} is optional but a core requirement"
        assert set(named) == {e for e, pkgs in extras.items() if package.lower() in pkgs}, (module, package)
    listed = {package.lower() for package, _ in OPTIONAL_PACKAGES.values()}
    assert set().union(*extras.values()) == listed, "an extra lists a package that require() does not know"
    assert extras["all"] == extras["bundles"] | extras["preview"] | extras["tracking"]
    assert {"torch", "monai", "numpy", "scipy", "scikit-image", "opencv-contrib-python-headless", "numba"} == core


@pytest.mark.parametrize(
    "module, name, package, extra",
    [
        ("nibabel", "", "nibabel", "bundles"),
        ("ignite.engine", "Events", "pytorch-ignite", "bundles"),
        ("matplotlib.pyplot", "", "matplotlib", "preview"),
        ("mlflow", "", "mlflow", "tracking"),
    ],
)
def test_require_names_the_package_and_the_extra(monkeypatch, module, name, package, extra):
    # None in sys.modules makes the import fail as if the package were not installed
    monkeypatch.setitem(sys.modules, module.partition(".")[0], None)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as info:
        require(module, name)
    assert isinstance(info.value, OptionalImportError)
    message = str(info.value)
    assert repr(package) in message and f'pip install "monai_hsmix[{extra}]"' in message, message
    assert info.value.__cause__ is not None  # the original import error stays in the traceback


def test_require_returns_the_module_or_name_and_rejects_unknown_packages():
    import numpy  # noqa: F401  (a present module is returned as is)

    yaml = require("yaml")
    assert yaml.safe_load("a: 1") == {"a": 1}
    assert require("yaml", "safe_load") is yaml.safe_load
    with pytest.raises(KeyError, match="not an optional package"):
        require("numpy")


def _copy_sources(dst: Path) -> Path:
    """Only what the wheel is built from: a stale build/ in the checkout could add modules that moved."""
    dst.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dst / name)
    shutil.copytree(
        REPO_ROOT / "monai_hsmix", dst / "monai_hsmix", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dst


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_with_only_the_core_requirements(tmp_path):
    started = time.perf_counter()
    src = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), "."],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("monai_hsmix-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    # the torch pin first: unpinned, pip would resolve a multi-GB CUDA build on its own
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # without PYTHONPATH: a checkout on it (with an .egg-info) would pass for an installed monai_hsmix
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # the same pins as make install where a lock exists for this Python: a release on the index must not fail CI
    lock = REPO_ROOT / "constraints" / ("py%d.%d.txt" % sys.version_info[:2])
    pins = ["-c", str(lock)] if lock.is_file() else []
    for what in (["torch==2.13.0"], pins + [str(wheel)]):
        proc = subprocess.run(pip + what, capture_output=True, text=True, env=clean_env)
        assert proc.returncode == 0, f"pip install {what} failed:\n{proc.stderr[-3000:]}"
    absent = (
        "\nimport importlib.util\nout['absent'] = [m for m in %r if importlib.util.find_spec(m) is None]\n"
        % OPTIONAL_MODULES
    )
    out = _run([python, "-c", USE_TRANSFORM + absent + "print('RESULT' + json.dumps(out))"], tmp_path)
    assert Path(out["file"]).is_relative_to(venv), out["file"]  # the installed wheel, not the checkout
    # pillow arrives with scikit-image (a core requirement) and stays; every other optional package is absent
    assert out["absent"] == [m for m in OPTIONAL_MODULES if m != "PIL"]
    _assert_transform_ran(out)
    print(f"wheel build + clean venv + check: {time.perf_counter() - started:.0f} s")

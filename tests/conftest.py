"""Shared fixtures: the read-only research data beside the project, found or skipped with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``$MONAI_HSMIX_DATA`` if set, else ``../shared/data`` next to the project root."""
    env = os.environ.get("MONAI_HSMIX_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def _dataset(name: str) -> Path:
    path = shared_data_root() / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (set MONAI_HSMIX_DATA to its parent folder)")
    return path


@pytest.fixture(scope="session")
def acdc_dir() -> Path:
    return _dataset("acdc")


@pytest.fixture(scope="session")
def brats2015_dir() -> Path:
    return _dataset("brats2015_subset")


@pytest.fixture(scope="session")
def monuseg_dir() -> Path:
    return _dataset("monuseg_subset")


@pytest.fixture
def subprocess_env():
    """Environment for child processes that import this checkout's monai_hsmix, single-threaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["OMP_NUM_THREADS"] = "1"
    return env

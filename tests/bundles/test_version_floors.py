"""The version floors of setup.cfg (issue 25, item 7): ``make test-min`` pins each floor, and the MONAI floor
is one with what the bundles need. (The lowest versions themselves are installed and tested by
``make test-min``, not here: that needs the network and several GB.)"""

from __future__ import annotations

import configparser
import inspect
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def _floors():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    reqs = "\n".join(
        [
            cfg["options"]["install_requires"],
            cfg["options.extras_require"]["all"],
            cfg["options.extras_require"]["test"],
        ]
    )
    out = {}
    for line in reqs.splitlines():
        line = line.strip()
        if ">=" in line and not line.startswith("#"):
            name, floor = line.split(">=")
            out[name.strip()] = floor.strip()
    return out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_min_pins_every_floor(tmp_path):
    import sys

    target = tmp_path / "min.txt"
    subprocess.run(
        ["make", "-s", f"MIN_CONSTRAINTS={target}", f"PYTHON={sys.executable}", str(target)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    pins = dict(line.split("==") for line in target.read_text().split())
    assert pins == {name: f"{floor}.*" for name, floor in _floors().items()}


def test_monai_floor_has_what_the_bundles_use():
    import monai
    from monai.losses import DiceLoss

    floor = Version(_floors()["monai"])
    assert floor >= Version("1.6.1"), "MONAI below 1.6.1 fails the suite (see the comment in setup.cfg)"
    assert Version(monai.__version__.split("+")[0]) >= floor
    assert "soft_label" in inspect.signature(DiceLoss).parameters

"""The compiled kernels' extreme-input tests, run with numba's bounds checks on.

``NUMBA_BOUNDSCHECK`` is read when numba is imported and is not part of the on-disk cache's key: a
kernel cached without checks would silently be reused, and one cached with them would slow every
later run. So the tests run in a child process with ``NUMBA_BOUNDSCHECK=1`` and a cache folder of
its own (``build/numba-boundscheck-cache``, kept between runs so the checked kernels compile once).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numba
import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKED = [
    "tests/backends/test_kernels_extreme_inputs.py",
    "tests/core/test_numba_mixing_extreme_inputs.py",
    "tests/test_numba_boundscheck.py",
]
CACHE = REPO / "build" / "numba-boundscheck-cache"


@pytest.mark.skipif(not numba.config.BOUNDSCHECK, reason="the child process of the test below checks this")
def test_bounds_checks_are_on_in_this_process():
    @numba.njit  # not cached: compiled here, under this process's setting
    def read(a, i):
        return a[i]

    import numpy as np

    with pytest.raises(IndexError):
        read(np.zeros(3), 3)


@pytest.mark.skipif(bool(numba.config.BOUNDSCHECK), reason="this is the child process")
def test_kernels_stay_in_bounds_on_extreme_inputs():
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(CACHE))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    this = "tests/test_numba_boundscheck.py::test_kernels_stay_in_bounds_on_extreme_inputs"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHECKED, "--deselect", this],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    report = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, report
    # every test ran (a child without bounds checks would skip them all)
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, report

"""python -m monai_hsmix.warmup fills numba's cache with every kernel a later HSMix call needs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# a later process, 2D and 3D, float32 and float64 images, with and without labels: every kernel
# must come from the cache (one compiled version per kernel, which the warm-up compiled)
LATER_CALLS = r"""
import torch
from monai_hsmix.backends import numba_saliency, slic_numba_engine
from monai_hsmix.core import numba_mixing
from monai_hsmix.transforms import RandHSMix

g = torch.Generator().manual_seed(1)
for shape, dtype in [((3, 2, 40, 36), torch.float32), ((2, 1, 20, 18, 6), torch.float64)]:
    images = torch.rand(shape, generator=g).to(dtype)
    labels = torch.randint(0, 4, (shape[0], 1) + shape[2:], generator=g)
    RandHSMix(num_classes=4, n_segments=(5, 9), mode="both").set_random_state(0)(images, labels)
    RandHSMix(n_segments=(5, 9), mode="soft").set_random_state(0)(images)
misses = {}
for module in (slic_numba_engine, numba_saliency, numba_mixing):
    for name in dir(module):
        kernel = getattr(module, name)
        if hasattr(kernel, "stats") and kernel.signatures:
            misses[f"{module.__name__}.{name}"] = sum(kernel.stats.cache_misses.values())
print({k: v for k, v in misses.items() if v})
"""


@pytest.mark.slow
def test_warmup_compiles_what_later_calls_use(tmp_path, subprocess_env):
    env = dict(subprocess_env, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "monai_hsmix.warmup"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "compiled and cached" in done.stdout and str(tmp_path / "cache") in done.stdout
    assert any(name.endswith(".nbc") for _, _, files in os.walk(tmp_path / "cache") for name in files)
    later = subprocess.run([sys.executable, "-c", LATER_CALLS], env=env, capture_output=True, text=True)
    assert later.returncode == 0, later.stderr
    assert later.stdout.strip().splitlines()[-1] == "{}", f"kernels compiled again: {later.stdout}"

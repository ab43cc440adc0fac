"""Time to the first mixed batch of a fresh install: numba compiling its kernels, then with a warm cache.

Every run is a fresh Python process with its own empty numba cache folder (``NUMBA_CACHE_DIR``), so
it sees what a new install sees. It times, for the synapse preset on a (4, 1, 224, 224) batch:

* ``cold``: import and the first ``RandHSMixd`` call in one process, with an empty cache;
* ``warm``: the same in a second process once the first has filled the cache;
* ``workers``: a ``DataLoader`` with 2 workers whose ``collate_fn`` mixes (``BatchTransformCollate``
  style), empty cache, until the first batch of each worker has arrived;
* ``after warmup``: ``python -m monai_hsmix.warmup`` on an empty cache (its own time), then the
  first call in a new process (what ``make install`` leaves).

    python benchmarks/first_call.py              # all four
    python benchmarks/first_call.py --only cold  # one of them
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_common import host_note  # noqa: E402

FIRST_CALL = r"""
import resource, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0 = time.perf_counter()
import torch
from monai_hsmix.transforms import RandHSMixd
t1, c1 = time.perf_counter(), cpu()
g = torch.Generator().manual_seed(0)
batch = {"image": torch.rand(4, 1, 224, 224, generator=g), "label": torch.randint(0, 4, (4, 1, 224, 224), generator=g)}
mix = RandHSMixd.from_preset("synapse", keys=["image", "label"], label_keys="label", num_classes=4).set_random_state(0)
mix(batch)
t2, c2 = time.perf_counter(), cpu()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {c2 - c1:.2f}")
"""

WORKERS = r"""
import time
t0 = time.perf_counter()
import torch
from monai.data import DataLoader, list_data_collate
from monai.transforms import Compose
from monai_hsmix.transforms import RandHSMixd

class Slices(torch.utils.data.Dataset):
    def __len__(self):
        return 16
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"image": torch.rand(1, 224, 224, generator=g), "label": torch.randint(0, 4, (1, 224, 224), generator=g)}

mix = RandHSMixd.from_preset("synapse", keys=["image", "label"], label_keys="label", num_classes=4)
loader = DataLoader(
    Slices(), batch_size=4, num_workers=2, collate_fn=Compose([list_data_collate, mix], map_items=False)
)
firsts = []
for i, batch in enumerate(loader):
    firsts.append(time.perf_counter() - t0)
    if i == 1:
        break
print(" ".join(f"{t:.2f}" for t in firsts))
"""


def run(code: str, cache: str) -> str:
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=cache,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    # from a folder of its own: ``python -c`` puts the working folder first on sys.path, where a
    # checkout would shadow the REPO this script times
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=os.path.dirname(cache)
    )
    if out.returncode:
        raise RuntimeError(f"the timed process failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["cold", "warm", "workers", "warmup"])
    args = parser.parse_args()
    print(host_note())
    with tempfile.TemporaryDirectory() as root:
        if args.only in (None, "cold", "warm"):
            cache = os.path.join(root, "cold")
            imp, call, cpu = run(FIRST_CALL, cache).split()
            print(f"cold cache: import {imp} s, first RandHSMixd call {call} s ({cpu} s of CPU)")
            imp, call, cpu = run(FIRST_CALL, cache).split()
            print(f"warm cache (second process): import {imp} s, first call {call} s ({cpu} s of CPU)")
        if args.only in (None, "workers"):
            times = run(WORKERS, os.path.join(root, "workers")).split()
            print(
                f"2 DataLoader workers, cold cache: first batch after {times[0]} s, "
                f"second after {times[1]} s (from import)"
            )
        if args.only in (None, "warmup"):
            cache = os.path.join(root, "warmup")
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "monai_hsmix.warmup"], env=env, check=True, capture_output=True, cwd=root
            )
            warm = time.perf_counter() - start
            imp, call, cpu = run(FIRST_CALL, cache).split()
            print(
                f"python -m monai_hsmix.warmup: {warm:.1f} s; then import {imp} s, first call {call} s ({cpu} s of CPU)"
            )
    print(host_note().split("; ")[-1])


if __name__ == "__main__":
    main()

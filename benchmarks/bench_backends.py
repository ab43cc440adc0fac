"""Reference (scikit-image + OpenCV) against torch superpixel and saliency backends.

Runs both backends in one process on the same batches and prints, per configuration, the time per
image of SLIC and saliency (the best of 3 interleaved rounds of 10 calls), the speed-up, and the
extra peak memory of each call (measured in a fresh process).

    python benchmarks/bench_backends.py            # 2D on 1 and 2 threads, then 3D
    python benchmarks/bench_backends.py --quick    # smaller batches, fewer repeats
    python benchmarks/bench_backends.py --device cuda
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import torch

from bench_common import parse_args, batch_2d, batch_3d, best_times, extra_peak_memory_fresh, host_note, load_note, mib
from monai_hsmix.backends import resolve_backend

# (name, batch maker, shape args, n_segments range, compactness) with the paper's presets:
# synapse (200-400, 0.1) for 2D slices, brats2018 (50-150, 0.003) for volumes
CONFIGS_2D = [("2D B4 C4 224", batch_2d, (4, 4, 224)), ("2D B4 C1 224", batch_2d, (4, 1, 224))]
CONFIG_3D = ("3D B2 C4 128^3", batch_3d, (2, 4, 128))


def backend_call(backend: str, what: str, maker, shape, segments, compactness, device: str, threads: int):
    """A SLIC or saliency call on a fresh batch; module level so a fresh process can build it (memory)."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    images, _ = maker(*shape)
    images = images.to(device)
    rng = np.random.default_rng(0)
    counts = torch.as_tensor(rng.integers(segments[0], segments[1] + 1, size=images.shape[0]), device=device)
    slic, saliency = resolve_backend(backend)
    if what == "slic":
        return lambda: slic(images, counts, compactness)
    return lambda: saliency(images)


def run_config(name, maker, shape, segments, compactness, device, threads, repeats):
    b = shape[0]
    print(f"\n{name}, {threads} thread(s), device {device}, {load_note()}")
    results = {}
    calls = [(backend, what) for backend in ("reference", "torch") for what in ("slic", "saliency")]
    # every timing before any memory run: a memory run spawns a process, which must not share
    # the cores with a timing
    fns = {
        (backend, what): backend_call(backend, what, maker, shape, segments, compactness, str(device), threads)
        for backend, what in calls
    }
    results.update(best_times(fns, device, repeats))
    for backend, what in calls:
        args = (backend, what, maker, shape, segments, compactness, str(device), threads)
        memory = extra_peak_memory_fresh(backend_call, *args, device=device)
        seconds = results[backend, what]
        print(f"  {backend:9s} {what:8s} {1000 * seconds / b:9.2f} ms/image   extra peak {mib(memory)}")
    for what in ("slic", "saliency"):
        ratio = results["reference", what] / results["torch", what]
        print(f"  speed-up {what:8s} torch vs reference: {ratio:.1f}x")
    both_ref = results["reference", "slic"] + results["reference", "saliency"]
    both_torch = results["torch", "slic"] + results["torch", "saliency"]
    print(
        f"  slic + saliency: reference {1000 * both_ref / b:.2f} ms/image, "
        f"torch {1000 * both_torch / b:.2f} ms/image, {both_ref / both_torch:.1f}x"
    )


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    device = torch.device(args.device)
    repeats = 2 if args.quick else 10
    print(f"{host_note()}; OpenCV {cv2.__version__}")
    for threads in (1, 2):
        for name, maker, shape in CONFIGS_2D:
            run_config(name, maker, shape, (200, 400), 0.1, device, threads, repeats)
    if not args.no_3d:
        name, maker, shape = CONFIG_3D
        if args.quick:
            name, shape = "3D B2 C4 64^3 (quick)", (2, 4, 64)
        run_config(name, maker, shape, (50, 150), 0.003, device, args.threads_3d, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fine-grained saliency on the CPU: the fused numba kernel against the torch operations.

Both engines run in one process on the same batches, one thread, interleaved (best of 3 rounds);
prints ms per batch, the ratio and the host, and checks that the two give the same maps.

    python benchmarks/bench_saliency_engines.py           # 2D (4, 4, 224, 224) and 3D (2, 4, 128^3)
    python benchmarks/bench_saliency_engines.py --quick   # 3D at 64^3, fewer repeats
"""

from __future__ import annotations

import time

import torch

from bench_common import batch_2d, batch_3d, best_times, host_note, load_note, parse_args
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    torch.set_num_threads(1)
    print(host_note())
    start = time.perf_counter()
    torch_fine_grained_saliency(torch.rand(1, 1, 8, 8), engine="numba")
    torch_fine_grained_saliency(torch.rand(1, 1, 8, 8, 8), engine="numba")
    print(f"numba first calls (compile or load from cache): {time.perf_counter() - start:.2f} s")
    configs = [("2D (4, 4, 224, 224)", batch_2d(4, 4, 224)[0], 5 if args.quick else 20)]
    if not args.no_3d:
        side = 64 if args.quick else 128
        configs.append((f"3D (2, 4, {side}^3)", batch_3d(2, 4, side)[0], 1 if args.quick else 2))
    for name, images, repeats in configs:
        maps = {engine: torch_fine_grained_saliency(images, engine=engine) for engine in ("torch", "numba")}
        same = torch.equal(maps["torch"], maps["numba"])
        fns = {
            engine: (lambda e=engine: torch_fine_grained_saliency(images, engine=e)) for engine in ("torch", "numba")
        }
        best = best_times(fns, torch.device("cpu"), repeats)
        ratio = best["torch"] / best["numba"]
        print(
            f"{name}: torch {1e3 * best['torch']:.2f} ms, numba {1e3 * best['numba']:.2f} ms, "
            f"torch/numba {ratio:.1f}x, same maps: {same} ({load_note()})"
        )


if __name__ == "__main__":
    main()

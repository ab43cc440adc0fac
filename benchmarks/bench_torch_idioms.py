"""Two torch idioms the backends chose by measurement, each timed against the obvious alternative.

* truncation toward zero of the saliency differences (``|d| <= 255``): a ``copy_`` into an int16
  buffer (``torch_saliency``) against ``torch.trunc`` into a float32 one;
* per-image minimum and maximum of a batch (``intensity``): ``amin`` and ``amax`` along a dimension
  against ``torch.aminmax`` along it.

Both sides run in this process, interleaved in rounds (``bench_common.best_times``), with
``torch.set_num_threads`` set, and the ratio is printed with the host line, so a figure quoted from
here is a ratio measured in one run.

    python benchmarks/bench_torch_idioms.py --threads 1
"""

from __future__ import annotations

import argparse

import torch
from bench_common import best_times, host_note, load_note

CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(host_note())
    g = torch.Generator().manual_seed(0)

    # saliency: (B, H, W) float32 differences in [-255, 255], as the centre-surround step gives them
    diff = (torch.rand(8, 224, 224, generator=g) - 0.5) * 510
    levels = torch.empty(diff.shape, dtype=torch.int16)
    scratch = torch.empty_like(diff)
    best = best_times(
        {"cast": lambda: levels.copy_(diff), "trunc": lambda: torch.trunc(diff, out=scratch)}, CPU, args.repeats
    )
    cast, trunc = best["cast"] * 1e3, best["trunc"] * 1e3
    if not torch.equal(levels.float(), scratch):
        raise RuntimeError("the int16 cast does not truncate as torch.trunc does")
    print(
        f"truncation of (8, 224, 224): int16 copy_ {cast:.3f} ms, torch.trunc {trunc:.3f} ms, ratio {trunc / cast:.1f}x"
    )

    # intensity: per-image range of a (B, C*H*W) batch, as the [0, 1] scaling reads it
    flat = torch.rand(8, 4 * 224 * 224, generator=g)
    best = best_times(
        {"two": lambda: (flat.amin(dim=1), flat.amax(dim=1)), "one": lambda: torch.aminmax(flat, dim=1)},
        CPU,
        args.repeats,
    )
    two, one = best["two"] * 1e3, best["one"] * 1e3
    print(f"per-image range of (8, 200704): amin + amax {two:.3f} ms, aminmax {one:.3f} ms, ratio {one / two:.1f}x")
    print(load_note())


if __name__ == "__main__":
    main()

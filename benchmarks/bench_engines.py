"""What the numba kernels buy on a CPU: each stage of HSMix with both engines, in one run.

Times SLIC, saliency, the segment means of Eq. 5 and the blends of Eq. 2 / 7 (images and class
labels), then the whole ``RandHSMix`` call, once with the numba kernels (the CPU default) and
once with the torch operations (what a GPU runs, ``engine="torch"``), on the same batch, one
thread, and prints milliseconds and the ratio. Best of 3 rounds.

    python benchmarks/bench_engines.py            # (4, 4, 224, 224), synapse-like settings
    python benchmarks/bench_engines.py --quick    # fewer calls per round
"""

from __future__ import annotations

import sys

import torch

from bench_common import batch_2d, best_times, host_note, load_note, parse_args
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency
from monai_hsmix.backends.torch_slic import torch_slic
from monai_hsmix.core import class_indices
from monai_hsmix.core.hsmix_equations import mix_with_masks
from monai_hsmix.core.segment_ops import segment_mean
from monai_hsmix.transforms import RandHSMix

SETTINGS = dict(n_segments=(200, 400), compactness=0.1, p=0.3)


def _engine_call(engine: str, fn, args, kwargs):
    """``fn`` run with ``engine`` (every stage takes it as an argument)."""

    def call():
        return fn(*args, **kwargs, engine=engine)

    return call


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    torch.set_num_threads(1)
    repeats = 3 if args.quick else 10
    cpu = torch.device("cpu")
    images, labels = batch_2d(4, 4, 224)
    print(host_note())
    print(f"(4, 4, 224, 224), 1 thread, {load_note()}")
    counts = torch.tensor([250, 300, 350, 390])
    segments = torch_slic(images, counts, 0.1, max_segments=400)
    saliency = torch_fine_grained_saliency(images)
    mix = RandHSMix(num_classes=4, mode="both", backend="torch", **SETTINGS)
    mix.set_random_state(seed=0)
    mix.randomize(images)
    masks = mix.masks
    parts = masks.parts(True, True)
    index_labels = class_indices(labels, 4)
    stages = {
        "SLIC": (torch_slic, (images, counts, 0.1), {"max_segments": 400}),
        "saliency": (torch_fine_grained_saliency, (images,), {}),
        "segment means (Eq. 5)": (segment_mean, (saliency, segments), {}),
        "blend images (Eq. 2, 7)": (mix_with_masks, (images, masks.partner, parts), {}),
        "blend labels (Eq. 2, 7)": (mix_with_masks, (index_labels, masks.partner, parts), {"num_classes": 4}),
    }
    print(f"  {'stage':26s} {'numba':>9s} {'torch ops':>10s} {'ratio':>7s}")
    for name, (fn, fargs, fkwargs) in stages.items():
        t = best_times({e: _engine_call(e, fn, fargs, fkwargs) for e in ("numba", "torch")}, cpu, repeats)
        print(f"  {name:26s} {1000 * t['numba']:8.2f}  {1000 * t['torch']:9.2f}  {t['torch'] / t['numba']:6.1f}x")

    def whole(engine):
        m = RandHSMix(num_classes=4, mode="both", backend="torch", engine=engine, **SETTINGS)

        def call():
            m.set_random_state(seed=0)
            return m(images, labels)

        return call

    t = best_times({e: whole(e) for e in ("numba", "torch")}, cpu, repeats)
    print(
        f"  {'whole RandHSMix, per pair':26s} {250 * t['numba']:8.2f}  {250 * t['torch']:9.2f}  "
        f"{t['torch'] / t['numba']:6.1f}x"
    )
    print(f"  ({load_note()} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

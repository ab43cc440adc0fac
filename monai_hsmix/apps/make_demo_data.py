"""Write a small synthetic dataset in a real layout (deterministic for a seed).

``python -m monai_hsmix.apps.make_demo_data --dataset synapse|brats2018 --out DIR --seed 0``
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from monai_hsmix.data.demo_data import DEMO_DATASETS, make_demo_dataset

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monai_hsmix.apps.make_demo_data", description=__doc__)
    parser.add_argument("--dataset", required=True, choices=DEMO_DATASETS)
    parser.add_argument("--out", required=True, help="output folder (absent or empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=None, help="in-plane side (default 64 synapse, 72 brats2018)")
    parser.add_argument("--depth", type=int, default=None, help="slices per volume (default 10 synapse, 16 brats2018)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = parser.parse_args(argv)
    out = make_demo_dataset(
        args.dataset, args.out, seed=args.seed, size=args.size, depth=args.depth, overwrite=args.overwrite
    )
    print(f"{args.dataset} demo dataset written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

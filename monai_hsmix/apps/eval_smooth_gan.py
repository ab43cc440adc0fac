"""Measure what a Smooth-GAN checkpoint does to pasted nuclei.

    python -m monai_hsmix.apps.eval_smooth_gan --checkpoint runs/smooth_gan/smooth_gan.pt \\
        --data-dir ../shared/data/monuseg_subset --last 4

For fixed crops of the chosen images (two per image, seeded pastes), it prints:

* ``change``: mean absolute difference between harmonised and pasted pixels, inside the pasted masks
  (grey levels of the 0-255 range);
* ``gap_before`` / ``gap_after``: mean over channels of ``|mean colour of pasted nuclei - mean colour of the
  crop's original nuclei|``, before and after harmonisation (lower means pasted nuclei look more like
  the image's own nuclei by this crude colour statistic).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from monai_hsmix.apps.config import parse_config
from monai_hsmix.core.instance_bank import InstanceBank, to_instance_labels
from monai_hsmix.core.instance_paste import paste_instances
from monai_hsmix.data.nuclei_data import list_monuseg_pairs, read_monuseg_pair, synthetic_nuclei
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.networks.smooth_gan import harmonize, load_generator

__all__ = ["add_arguments", "evaluate", "main", "parse_args", "SmoothGANEvalConfig"]


@dataclass
class SmoothGANEvalConfig:
    """What to evaluate; the command-line options have the same names (``--crop-size`` is ``crop_size``)."""

    checkpoint: Path
    data_dir: Optional[Path] = None
    last: int = 4
    crop_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        self.checkpoint = Path(self.checkpoint)
        self.data_dir = None if self.data_dir is None else Path(self.data_dir)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, help="MoNuSeg-style folder; synthetic tiles when omitted")
    parser.add_argument("--last", type=int, help="evaluate the last N images (held out if training used the others)")
    parser.add_argument("--crop-size", type=int)
    parser.add_argument("--seed", type=int)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> SmoothGANEvalConfig:
    """The command line ``argv`` as a :class:`SmoothGANEvalConfig`."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.eval_smooth_gan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parse_config(SmoothGANEvalConfig, add_arguments(parser), argv)


def evaluate(args: SmoothGANEvalConfig) -> Dict[str, float]:
    generator, config = load_generator(args.checkpoint)
    value_range = tuple(config["value_range"])
    if args.data_dir is None:
        tiles = [synthetic_nuclei(2 * args.crop_size, 60, seed=1000 + i) for i in range(args.last)]
    else:
        tiles = [read_monuseg_pair(*p) for p in list_monuseg_pairs(args.data_dir)[-args.last :]]
    change, before, after = [], [], []
    for k, (image, inst) in enumerate(tiles):
        if image.shape[0] != generator.channels:
            image = np.round(image.mean(axis=0, keepdims=True)).astype(np.uint8)
        size = args.crop_size
        for top in (0, max(0, image.shape[1] - size)):
            window = (slice(top, top + size), slice(top, top + size))
            img, crop_inst = image[(slice(None), *window)].copy(), to_instance_labels(inst[window] > 0)
            if not crop_inst.any():
                continue
            bank = InstanceBank.from_pairs([(img, crop_inst)])
            if len(bank) == 0:
                continue
            res = paste_instances(img, crop_inst, bank, SSDConstraints(), np.random.RandomState(args.seed + k), 0.5)
            if not res.pasted.any():
                continue
            out = harmonize(
                generator,
                torch.from_numpy(res.image),
                torch.from_numpy(crop_inst > 0),
                torch.from_numpy(res.pasted),
                value_range,
            ).numpy()
            pasted_px = res.image[:, res.pasted].astype(np.float64)
            harmonised_px = out[:, res.pasted].astype(np.float64)
            original_mean = img[:, crop_inst > 0].astype(np.float64).mean(axis=1)
            change.append(np.abs(harmonised_px - pasted_px).mean())
            before.append(np.abs(pasted_px.mean(axis=1) - original_mean).mean())
            after.append(np.abs(harmonised_px.mean(axis=1) - original_mean).mean())
    if not change:
        raise ValueError("no crop received a pasted nucleus; nothing to evaluate")
    return {
        "crops": len(change),
        "change": float(np.mean(change)),
        "gap_before": float(np.mean(before)),
        "gap_after": float(np.mean(after)),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    result = evaluate(parse_args(argv))
    print(
        f"{result['crops']} crops: change {result['change']:.3f}, "
        f"gap_before {result['gap_before']:.2f}, gap_after {result['gap_after']:.2f} (grey levels)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does InsMix help nuclei instance segmentation? Train the same three-class UNet under each arm and compare AJI.

Example (CPU-sized)::

    python -m monai_hsmix.apps.insmix_ablation --data-dir ../shared/data/monuseg_subset --out runs/insmix \\
        --folds 3 --seeds 0 1 --crop-size 96 --steps 300

Reads ``images/`` and ``instances/`` (one id per nucleus) of ``--data-dir``, splits the annotated tiles
into ``--folds`` folds by image, trains a MONAI UNet on random crops to predict background / nucleus
interior / nucleus boundary, predicts every held-out tile whole by sliding window, turns the interior map
into instances by a seeded watershed and scores AJI, object Dice and pixel DSC. Arms:

- ``none``: flips, ±20° rotation and colour jitter only (every arm has them);
- ``copy_paste``: InsMix pasting with no constraints (any template, anywhere in the crop);
- ``ssd``: InsMix pasting under the scale, shape and distance constraints;
- ``ssd_bg``: ``ssd`` plus background perturbation (nucleus-free patches shuffled);
- ``cutmix``: MONAI CutMix on the three-class one-hot targets (the HSMix ablation's ``cutmix`` arm).

Smooth-GAN harmonisation is not an arm: on a CPU its training does not reach a useful generator (see
docs/insmix.md). Each arm x seed x fold writes ``OUT/runs/ARM_seedS_foldF.json`` atomically; a rerun with
the same options skips them (and refuses, naming the setting, runs made with other settings), then
rewrites ``OUT/report.md``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from monai_hsmix.apps.ablation.arms import MixOptions
from monai_hsmix.apps.ablation.image_folder import kfold_by_image
from monai_hsmix.apps.ablation.train2d import TrainConfig
from monai_hsmix.apps.insmix_ablation.data import (
    InstanceCropSampler,
    evaluate_instances,
    find_instance_pairs,
    insmix_transform,
    read_instance_pair,
)
from monai_hsmix.apps.insmix_ablation.report import write_instance_report
from monai_hsmix.apps.mix_sweep import (
    SweepConfig,
    add_training_arguments,
    check_training_arguments,
    plan_sweep,
    run_sweep,
    sweep_header,
    sweep_main,
    train_settings,
)

__all__ = ["build_parser", "check_arguments", "InsMixAblationConfig", "main", "NOTES", "NUM_CLASSES", "run"]

logger = logging.getLogger("monai_hsmix.insmix_ablation")

# arm -> (InsMix variant in the sampler, arm of the HSMix ablation's runner on top, description)
INSMIX_ARMS: Dict[str, tuple] = {
    "none": ("none", "none", "flips, ±20° rotation, colour jitter only"),
    "copy_paste": (
        "plain",
        "none",
        "InsMix copy-paste without constraints (any own-crop nucleus, anywhere, touching allowed)",
    ),
    "ssd": (
        "ssd",
        "none",
        "InsMix copy-paste under the SSD constraints (epsilon 2, rho 0.8, distance 8-40 px, no touching)",
    ),
    "ssd_bg": ("ssd_bg", "none", "SSD copy-paste + background perturbation (20 px nucleus-free patches, 20% shuffled)"),
    "cutmix": ("none", "cutmix", "MONAI CutMix of images and one-hot three-class targets (the HSMix ablation's arm)"),
}
NUM_CLASSES = 3  # background, interior, boundary


@dataclass
class InsMixAblationConfig(SweepConfig):
    """One sweep; the command-line options have the same names (``--data-dir`` is ``data_dir``)."""

    arms: Sequence[str] = tuple(INSMIX_ARMS)
    seeds: Sequence[int] = (0, 1)
    folds: int = 3
    only_folds: Optional[Sequence[int]] = None
    split_seed: int = 0
    crop_size: int = 96
    weight_decay: float = 5e-4
    max_paste_ratio: float = 0.5
    boundary_width: int = 1
    colour_jitter: float = 0.1
    cutmix_alpha: float = 1.0
    min_seed_size: int = 4
    min_size: int = 10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.insmix_ablation", description=__doc__.split("\n")[0]
    )
    add_training_arguments(parser, INSMIX_ARMS)
    parser.add_argument("--folds", type=int, help="k of the k-fold cross-validation by image")
    parser.add_argument("--only-folds", type=int, nargs="+", help="run only these folds (0-based)")
    parser.add_argument("--split-seed", type=int, help="seed of the fold split (same for every arm and seed)")
    parser.add_argument("--crop-size", type=int, help="training crop side (stored resolution) and sliding-window size")
    parser.add_argument(
        "--mix-prob",
        type=float,
        help="probability that a crop is pasted into (InsMix arms) or a batch is mixed (cutmix)",
    )
    parser.add_argument(
        "--max-paste-ratio", type=float, help="InsMix: up to this share of a crop's nuclei get a template"
    )
    parser.add_argument("--boundary-width", type=int, help="boundary class width in pixels")
    parser.add_argument("--colour-jitter", type=float, help="per-channel multiplicative jitter U(1-j, 1+j), every arm")
    parser.add_argument("--cutmix-alpha", type=float)
    parser.add_argument("--min-seed-size", type=int, help="post-processing: smallest interior seed (pixels)")
    parser.add_argument("--min-size", type=int, help="post-processing: smallest nucleus kept (pixels)")
    return parser


def check_arguments(args: InsMixAblationConfig) -> None:
    """Raise ``ValueError`` for a bad option before anything loads or trains."""
    check_training_arguments(args, INSMIX_ARMS)
    if not 0 <= args.colour_jitter < 1:
        raise ValueError(f"--colour-jitter must be in [0, 1), got {args.colour_jitter}")
    if args.boundary_width < 1 or args.min_seed_size < 1 or args.min_size < 1:
        raise ValueError("--boundary-width, --min-seed-size and --min-size must be >= 1")
    args.train_config(args.crop_size)  # steps, batch size, mix prob, crop size vs channels
    for arm in args.arms:
        insmix_transform(INSMIX_ARMS[arm][0], args.crop_size, args.max_paste_ratio, 0)  # max_paste_ratio


def _mix(args: InsMixAblationConfig) -> MixOptions:
    return MixOptions(num_classes=NUM_CLASSES, cutmix_alpha=args.cutmix_alpha)


def _arm_settings(args: InsMixAblationConfig, arm: str) -> Dict[str, Any]:
    variant, runner_arm, _ = INSMIX_ARMS[arm]
    out: Dict[str, Any] = {"variant": variant, "runner_arm": runner_arm}
    if variant != "none":
        out["max_paste_ratio"] = args.max_paste_ratio
    if runner_arm == "cutmix":
        out["cutmix_alpha"] = args.cutmix_alpha
    return out


def run(args: InsMixAblationConfig) -> Path:
    """Train the missing arm x seed x fold runs, then write the report; returns the report path."""
    torch.set_num_threads(args.threads)
    config = args.train_config(args.crop_size)
    pairs = find_instance_pairs(args.data_dir)
    splits = kfold_by_image(list(pairs), args.folds, args.split_seed)
    folds = list(range(args.folds)) if args.only_folds is None else sorted(set(args.only_folds))
    bad = [f for f in folds if not 0 <= f < args.folds]
    if bad:
        raise ValueError(f"--only-folds {bad} outside [0, {args.folds - 1}]")
    base = {
        "data_dir": str(args.data_dir.resolve()),
        "split_seed": args.split_seed,
        "folds": args.folds,
        "train": train_settings(config),
        "boundary_width": args.boundary_width,
        "colour_jitter": args.colour_jitter,
        "post": {"min_seed_size": args.min_seed_size, "min_size": args.min_size},
    }

    def settings_of(arm: str, fold: Optional[int]) -> Dict[str, Any]:
        return {
            **base,
            "fold": fold,
            "train_images": splits[fold][0],
            "test_images": splits[fold][1],
            "arm": _arm_settings(args, arm),
        }

    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo, planned = plan_sweep(runs_dir, args.arms, args.seeds, folds, settings_of)
    if todo and not args.report_only:
        loaded = {name: read_instance_pair(*pairs[name]) for name in sorted(pairs)}
        logger.info(
            "%d annotated tiles, %d folds (%s run here), %d runs to train", len(pairs), args.folds, folds, len(todo)
        )

        def sampler_of(arm: str, seed: int, fold: Optional[int]) -> InstanceCropSampler:
            train = splits[fold][0]
            return InstanceCropSampler(
                [loaded[n][0] for n in train],
                [loaded[n][1] for n in train],
                args.crop_size,
                insmix_transform(INSMIX_ARMS[arm][0], args.crop_size, args.max_paste_ratio, seed),
                args.mix_prob,
                seed,
                args.boundary_width,
                args.colour_jitter,
            )

        def evaluator_of(fold: Optional[int]):
            test = splits[fold][1]
            return lambda model: evaluate_instances(
                model,
                [loaded[n][0] for n in test],
                [loaded[n][1] for n in test],
                test,
                args.crop_size,
                args.min_seed_size,
                args.min_size,
            )

        run_sweep(
            todo,
            sampler_of,
            evaluator_of,
            lambda a: INSMIX_ARMS[a][1],
            lambda a: INSMIX_ARMS[a][2],
            NUM_CLASSES,
            config,
            _mix(args),
        )
    return write_instance_report(args.out, args.arms, _header(args, len(pairs), folds, config), NOTES, planned)


NOTES = (
    "Every arm trains the same MONAI UNet (3 outputs: background, nucleus interior, nucleus boundary) with the same "
    "AdamW/poly schedule, steps and batch; softmax Dice (soft labels) + cross-entropy. Crops are cut at the stored "
    "resolution; all arms share flips, ±20° rotation and colour jitter, drawn from the same generator, so a seed's "
    "crops match across arms before mixing. InsMix pastes (with probability `mix prob` per crop) into the crop's "
    "instance map with the crop's own nuclei as templates (as the authors' code does), before the three-class target "
    "is made; CutMix mixes a whole batch with probability `mix prob`. Held-out tiles are predicted whole (sliding "
    "window = crop size, overlap 0.25, Gaussian), instances come from a watershed on 1 - p(interior) seeded by the "
    "interior components and bounded by the foreground. AJI: Kumar et al. 2017 (a predicted nucleus may be matched "
    "by several reference nuclei); object Dice: GlaS; pixel DSC: foreground masks."
)


def _header(args: InsMixAblationConfig, n_images: int, folds: Sequence[int], config: TrainConfig) -> Dict[str, Any]:
    data = (
        f"{args.data_dir} — {n_images} tiles with instance maps, {args.folds}-fold cross-validation by image "
        f"(split seed {args.split_seed}), folds run: {list(folds)}"
    )
    extra = (
        f"mix prob {config.mix_prob}, max paste ratio {args.max_paste_ratio}, boundary width {args.boundary_width}, "
        f"colour jitter {args.colour_jitter}, CutMix alpha {args.cutmix_alpha}, post-processing min seed "
        f"{args.min_seed_size} px, min nucleus {args.min_size} px"
    )
    return sweep_header("monai_hsmix.apps.insmix_ablation", args, config, data, "crops", extra)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return sweep_main(InsMixAblationConfig, build_parser(), argv, check_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())

"""Does HSMix help on your data? Train the same 2D UNet under several mixing arms and compare.

Example::

    python -m monai_hsmix.apps.ablation --data-dir /data/acdc --out runs/acdc_ablation \\
        --seeds 0 1 2 --train-patients 10 --image-size 96 --steps 400

The dataset is a Decathlon folder (``dataset.json`` with ``training`` and, optionally,
``validation`` lists of image/label NIfTI volumes). Patients (found in file names with
``--patient-pattern``) are never split between training and validation. Each arm x seed writes
``OUT/runs/ARM_seedSEED.json``; a rerun with the same options skips those that exist, then rewrites
``OUT/report.md`` and ``OUT/mean_fg_dsc.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import monai
import torch

from monai_hsmix.backends import available_backends
from monai_hsmix.experiments.arms import ARMS, MixOptions, get_arm
from monai_hsmix.experiments.data2d import DEFAULT_PATIENT_PATTERN, load_volumes, split_dataset, to_slices
from monai_hsmix.experiments.report import write_report
from monai_hsmix.experiments.train2d import TrainConfig, config_dict, train_run

logger = logging.getLogger("monai_hsmix.ablation")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monai_hsmix.apps.ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="Decathlon-layout folder with dataset.json")
    parser.add_argument("--out", type=Path, required=True, help="output folder (runs/, report.md, mean_fg_dsc.png)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), help="arms to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train-patients", type=int, default=10, help="training patients drawn from 'training' (0: all)")
    parser.add_argument("--val-patients", type=int, default=10, help="patients held out when dataset.json has no 'validation'")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the patient draw (same for every arm and seed)")
    parser.add_argument("--patient-pattern", default=DEFAULT_PATIENT_PATTERN, help="regex whose first group is the patient id in a file name")
    parser.add_argument("--image-size", type=int, default=96, help="slices are resized to this square size")
    parser.add_argument("--steps", type=int, default=500, help="optimiser steps (same in every arm)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per step in every arm (even, >= 4)")
    parser.add_argument("--lr", type=float, default=5e-3, help="AdamW learning rate, poly(0.9) decay to 0")
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128], help="UNet channels per level")
    parser.add_argument("--mix-prob", type=float, default=0.5, help="probability that a step's batch is mixed (every mixing arm)")
    parser.add_argument("--hsmix-segments", type=int, nargs=2, default=[50, 100], metavar=("LMIN", "LMAX"))
    parser.add_argument("--hsmix-compactness", type=float, default=0.1, help="SLIC compactness (intensities are in [0, 1])")
    parser.add_argument("--hsmix-p", type=float, default=0.3, help="probability of pasting a superpixel (hard mixing)")
    parser.add_argument("--backend", default="auto", help="HSMix superpixel/saliency backend: auto, torch or reference")
    parser.add_argument("--mixup-alpha", type=float, default=1.0)
    parser.add_argument("--cutmix-alpha", type=float, default=1.0)
    parser.add_argument("--beta-alpha", type=float, default=1.0, help="Beta parameter of the beta_soft arm")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")
    return parser


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10)
        return (out.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _resolved_backend(name: str) -> str:
    # record which implementation "auto" meant, so a resumed sweep cannot silently switch backends
    available = available_backends()
    if name == "auto":
        return "torch" if "torch" in available else "reference"
    if name not in available:
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {available}")
    return name


def _sweep_settings(args: argparse.Namespace) -> Dict[str, Any]:
    return {
        "data_dir": str(args.data_dir.resolve()),
        "train_patients": args.train_patients,
        "val_patients": args.val_patients,
        "split_seed": args.split_seed,
        "patient_pattern": args.patient_pattern,
    }


def _write_json(path: Path, payload: Dict[str, Any]) -> None:
    # write then rename, so an interrupted sweep never leaves a half-written result that resume would skip
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def _differences(stored: Any, now: Any, prefix: str = "") -> List[str]:
    if isinstance(stored, dict) and isinstance(now, dict):
        return [d for k in sorted(set(stored) | set(now)) for d in _differences(stored.get(k), now.get(k), f"{prefix}{k}.")]
    return [] if stored == now else [f"{prefix[:-1]}: stored {stored!r}, now {now!r}"]


def _check_same_settings(path: Path, settings: Dict[str, Any]) -> None:
    stored = json.loads(path.read_text()).get("settings")
    if stored != settings:
        changed = "; ".join(_differences(stored or {}, settings))
        raise SettingsMismatchError(
            f"{path} was produced with other settings than this command ({changed}); "
            "use another --out or the same options"
        )


class SettingsMismatchError(RuntimeError):
    """A sweep folder holds results of different settings (refuse to mix them in one report)."""


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        image_size=args.image_size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        channels=tuple(args.channels),
        mix_prob=args.mix_prob,
    )


def _mix_options(args: argparse.Namespace, num_classes: int) -> MixOptions:
    return MixOptions(
        num_classes=num_classes,
        n_segments=tuple(args.hsmix_segments),
        compactness=args.hsmix_compactness,
        p=args.hsmix_p,
        backend=_resolved_backend(args.backend),
        mixup_alpha=args.mixup_alpha,
        cutmix_alpha=args.cutmix_alpha,
        beta_alpha=args.beta_alpha,
    )


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` for any bad argument before anything loads or trains.

    The arms check their options only when they are built, so a bad ``--hsmix-segments`` used to end
    a sweep after the arms before HSMix had trained: every selected arm is built here once.
    """
    if args.train_patients < 0:
        raise ValueError(f"--train-patients must be >= 0, got {args.train_patients}")
    if args.val_patients < 1:
        raise ValueError(f"--val-patients must be >= 1, got {args.val_patients}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if any(c < 1 for c in args.channels):
        raise ValueError(f"--channels must all be >= 1, got {args.channels}")
    if len(args.channels) < 2:
        raise ValueError(f"--channels needs at least 2 levels, got {args.channels}")
    config = _train_config(args)
    # num_classes is only known from dataset.json: any valid count checks the other options
    mix = _mix_options(args, num_classes=2)
    for name in args.arms:
        arm = get_arm(name)
        try:
            arm.build(arm.sources_per_step(config.batch_size), mix, 0)
        except ValueError as err:
            raise ValueError(f"arm {name!r} rejects its options: {err} (see --hsmix-*, --backend, --mixup-alpha, "
                             "--cutmix-alpha, --beta-alpha)") from err


def run(args: argparse.Namespace) -> Path:
    """Run the missing arm x seed runs, then write the report; returns the report path."""
    torch.set_num_threads(args.threads)
    config = _train_config(args)
    train_patients = None if args.train_patients == 0 else args.train_patients
    split = split_dataset(args.data_dir, train_patients, args.split_seed, args.val_patients, args.patient_pattern)
    mix = _mix_options(args, split.num_classes)
    commit = _git_commit()  # before training: the code that produces the runs
    header = _report_header(args, split, config)
    settings = {**_sweep_settings(args), **config_dict(config, mix), "train_ids": sorted(split.train), "val_ids": sorted(split.val)}
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    # seed-major order: an interrupted sweep still has every arm at its first seeds
    for seed in args.seeds:
        for arm in args.arms:
            path = runs_dir / f"{arm}_seed{seed}.json"
            if path.exists():
                _check_same_settings(path, settings)
                logger.info("skip %s seed %d: %s exists", arm, seed, path)
            else:
                todo.append((arm, seed, path))
    if todo and not args.report_only:
        train_volumes = load_volumes(split.train, split.num_classes)
        val_volumes = load_volumes(split.val, split.num_classes)
        slices = to_slices(train_volumes, args.image_size)
        logger.info("%d training patients (%d slices), %d validation patients (%d volumes)",
                    len(split.train), slices.images.shape[0], len(split.val), len(val_volumes))
        for arm, seed, path in todo:
            tick = time.perf_counter()
            result = train_run(arm, seed, slices, val_volumes, split.num_classes, config, mix)
            result["settings"] = settings
            result["git_commit"] = commit
            _write_json(path, result)
            logger.info("%s seed %d done in %.0f s", arm, seed, time.perf_counter() - tick)
    return write_report(
        args.out,
        args.arms,
        split.class_names[1:],
        expected_runs=len(args.arms) * len(args.seeds),
        header=header,
        notes=REPORT_NOTES,
    )


REPORT_NOTES = (
    "Every arm trains the same UNet with the same AdamW/poly schedule for the same number of steps, and every "
    "step sees `batch size` samples: arms draw that many slices, except `hsmix_both`, which draws half as many "
    "sources and gets a hard and a soft mixed copy of each. All arms share the random flip and ±20° rotation. "
    "Labels are one-hot and mixed as channels (MONAI MixUp/CutMix are given the one-hot labels). Loss: "
    "softmax DiceLoss(soft_label=True) + cross-entropy with probability targets. Evaluation: validation "
    "volumes predicted slice by slice at the training size, logits resized back to the stored grid; DSC and "
    "Jaccard from MONAI, HD95 = MONAI HausdorffDistanceMetric(percentile=95) (larger of the two directed "
    "95th percentiles, not medpy's pooled hd95) in header-spacing units; a missed class scores the volume "
    "diagonal; classes absent from a reference are left out."
)


def _report_header(args: argparse.Namespace, split: Any, config: TrainConfig) -> Dict[str, Any]:
    shown = [a for a in args.argv if a != "--report-only"]  # the command that trains the runs, not the re-report
    command = "python -m monai_hsmix.apps.ablation " + " ".join(shlex.quote(a) for a in shown)
    return {
        "command": f"`{command}`",
        "data": f"{args.data_dir} — {len(split.train)} training patients {sorted(split.train)}, "
        f"{len(split.val)} validation patients",
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, monai {monai.__version__}, "
        f"git {_git_commit()} (report), {torch.get_num_threads()} CPU thread(s)",
        "mixing": f"HSMix backend {_resolved_backend(args.backend)}, n_segments {args.hsmix_segments}, compactness {args.hsmix_compactness}, "
        f"p {args.hsmix_p}; MixUp alpha {args.mixup_alpha}, CutMix alpha {args.cutmix_alpha}, beta_soft alpha {args.beta_alpha}",
        "schedule": f"{config.steps} steps x {config.batch_size} samples, AdamW lr {config.lr} poly(0.9), "
        f"{config.image_size}x{config.image_size} slices, UNet channels {list(config.channels)}, mix prob {config.mix_prob}",
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        check_arguments(args)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        report = run(args)
    except (SettingsMismatchError, ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does HSMix help on your data? Train the same 2D UNet under several mixing arms and compare.

Examples::

    python -m monai_hsmix.apps.ablation --data-dir /data/acdc --out runs/acdc_ablation \\
        --seeds 0 1 2 --train-patients 10 --image-size 96 --steps 400
    python -m monai_hsmix.apps.ablation --data-dir /data/monuseg --out runs/monuseg_ablation \\
        --preset monuseg --folds 5 --seeds 0 --image-size 64 --steps 600

Two layouts are read directly:

- a Decathlon folder (``dataset.json`` with ``training`` and, optionally, ``validation`` lists of
  image/label NIfTI volumes): 2D slices resized to ``--image-size``; patients (found in file names
  with ``--patient-pattern``) are never split between training and validation. Each arm x seed
  writes ``OUT/runs/ARM_seedSEED.json``.
- an image folder (``images/NAME.tif|png`` with ``masks/NAME.png``, e.g. MoNuSeg): k-fold
  cross-validation by image (``--folds``), training on random ``--image-size`` crops at the stored
  resolution, sliding-window evaluation of the held-out images. Each arm x seed x fold writes
  ``OUT/runs/ARM_seedSEED_foldF.json``.

A rerun with the same options skips the runs that exist (and refuses, naming the setting, runs made
with other settings), then rewrites ``OUT/report.md`` and ``OUT/mean_fg_dsc.png``. ``--compare-to DIR``
adds, per arm, the paired difference to the same arm and seed of the sweep in ``DIR`` (e.g. the same
command with fewer ``--steps``), naming the settings in which the two sweeps differ.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import monai
import torch

from monai_hsmix.backends import available_backends
from monai_hsmix.data.io import write_json_atomic
from monai_hsmix.apps.ablation.arms import ARMS, MixOptions, arm_settings, get_arm
from monai_hsmix.apps.ablation.compare import setting_differences, sweep_runs
from monai_hsmix.apps.ablation.data2d import DEFAULT_PATIENT_PATTERN, load_volumes, split_dataset, to_slices
from monai_hsmix.apps.ablation.evaluate import evaluate
from monai_hsmix.apps.ablation.fingerprint import data_fingerprint
from monai_hsmix.apps.ablation.image_folder import (
    CropSampler,
    evaluate_images,
    find_pairs,
    is_image_folder,
    kfold_by_image,
    read_pair,
    resize_pair,
)
from monai_hsmix.apps.ablation.report import write_report
from monai_hsmix.apps.ablation.train2d import TrainConfig, train_run
from monai_hsmix.optional import require
from monai_hsmix.transforms import get_preset

__all__ = ["AblationConfig", "build_parser", "check_arguments", "main", "REPORT_NOTES", "run", "SettingsMismatchError"]

logger = logging.getLogger("monai_hsmix.ablation")


@dataclass
class AblationConfig:
    """One ablation sweep; the command-line options have the same names (``--data-dir`` is ``data_dir``).

    ``argv`` is the command line shown in the report (empty when the sweep is started from Python).
    """

    data_dir: Path
    out: Path
    arms: Sequence[str] = tuple(ARMS)
    seeds: Sequence[int] = (0, 1, 2)
    train_patients: int = 10
    val_patients: int = 10
    split_seed: int = 0
    patient_pattern: str = DEFAULT_PATIENT_PATTERN
    image_size: Optional[int] = None
    resize: Optional[int] = None
    test_dir: Optional[Path] = None
    eval_every: int = 0
    folds: int = 5
    only_folds: Optional[Sequence[int]] = None
    num_classes: int = 2
    steps: int = 500
    batch_size: int = 8
    lr: float = 5e-3
    weight_decay: float = 1e-4
    channels: Sequence[int] = (16, 32, 64, 128)
    mix_prob: float = 0.5
    preset: Optional[str] = None
    preset_size: int = 224
    hsmix_segments: Optional[Sequence[int]] = None
    hsmix_compactness: Optional[float] = None
    hsmix_p: Optional[float] = None
    backend: str = "auto"
    mixup_alpha: float = 1.0
    cutmix_alpha: float = 1.0
    beta_alpha: float = 1.0
    threads: int = 1
    report_only: bool = False
    compare_to: Sequence[Path] = ()
    argv: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.data_dir, self.out = Path(self.data_dir), Path(self.out)
        self.compare_to = tuple(Path(p) for p in self.compare_to)
        self.test_dir = None if self.test_dir is None else Path(self.test_dir)

    @property
    def train_size(self) -> int:
        """The training size: ``--resize`` when whole images are resized, else ``--image-size`` (96)."""
        if self.resize is not None:
            return self.resize
        return 96 if self.image_size is None else self.image_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monai_hsmix.apps.ablation", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="Decathlon folder (dataset.json) or image folder (images/, masks/)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (runs/, report.md, mean_fg_dsc.png)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), help="arms to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--train-patients", type=int, help="training patients drawn from 'training' (0: all)")
    parser.add_argument("--val-patients", type=int, help="patients held out when dataset.json has no 'validation'")
    parser.add_argument("--split-seed", type=int, help="seed of the patient draw (same for every arm and seed)")
    parser.add_argument("--patient-pattern", help="regex whose first group is the patient id in a file name")
    parser.add_argument(
        "--image-size",
        type=int,
        help="training size: slices are resized to it (Decathlon), crops have it (image folder); 96",
    )
    parser.add_argument(
        "--resize",
        type=int,
        metavar="S",
        help="image folder: train and test on whole images resized to S x S (masks nearest), the paper's protocol",
    )
    parser.add_argument(
        "--test-dir",
        type=Path,
        help="image folder: train on every image of --data-dir, test on this folder (images/, masks/), not k-fold",
    )
    parser.add_argument(
        "--eval-every", type=int, help="score the test set every N steps (learning curves in the runs and report)"
    )
    parser.add_argument("--folds", type=int, help="image folder: k of the k-fold cross-validation by image")
    parser.add_argument("--only-folds", type=int, nargs="+", help="image folder: run only these folds (0-based)")
    parser.add_argument("--num-classes", type=int, help="image folder: classes in the masks (0..K-1)")
    parser.add_argument("--steps", type=int, help="optimiser steps (same in every arm)")
    parser.add_argument("--batch-size", type=int, help="samples per step in every arm (even, >= 4)")
    parser.add_argument("--lr", type=float, help="AdamW learning rate, poly(0.9) decay to 0")
    parser.add_argument("--weight-decay", type=float, help="AdamW weight decay (the paper's 5e-4 for MoNuSeg)")
    parser.add_argument("--channels", type=int, nargs="+", help="UNet channels per level")
    parser.add_argument("--mix-prob", type=float, help="probability that a step's batch is mixed (every mixing arm)")
    parser.add_argument(
        "--preset", help="HSMix preset (e.g. monuseg): its settings, with n_segments scaled to the training size"
    )
    parser.add_argument(
        "--preset-size", type=int, help="image size the preset's n_segments are meant for (the paper's 224)"
    )
    parser.add_argument(
        "--hsmix-segments",
        type=int,
        nargs=2,
        metavar=("LMIN", "LMAX"),
        help="superpixel count range (default: the preset's, scaled by area to --image-size; 50 100 without preset)",
    )
    parser.add_argument(
        "--hsmix-compactness", type=float, help="SLIC compactness (default: the preset's; 0.1 without preset)"
    )
    parser.add_argument(
        "--hsmix-p", type=float, help="probability of pasting a superpixel (default: the preset's; 0.3 without preset)"
    )
    parser.add_argument("--backend", help="HSMix superpixel/saliency backend: auto, torch or reference")
    parser.add_argument("--mixup-alpha", type=float)
    parser.add_argument("--cutmix-alpha", type=float)
    parser.add_argument("--beta-alpha", type=float, help="Beta parameter of the beta_soft arm")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")
    parser.add_argument(
        "--compare-to",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="other sweeps' output folders on the same test set (e.g. another --steps): the report pairs each run "
        "with the same arm and seed there and names the settings that differ",
    )
    return parser


def _git_commit(root: Optional[Path] = None) -> str:
    """The package checkout's commit, read without writing to that repository."""
    try:
        root = Path(__file__).resolve().parents[3] if root is None else root
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        # --no-optional-locks: a plain `git status` refreshes and rewrites the checkout's .git/index
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
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


def _mix_options(args: AblationConfig, num_classes: int) -> MixOptions:
    """HSMix options: the preset's (n_segments scaled by area to the training size), then explicit flags."""
    segments, compactness, p = (50, 100), 0.1, 0.3
    if args.preset:
        preset = get_preset(args.preset)
        # keep the preset's superpixel size in pixels: the paper's counts are for 224 x 224 inputs
        scale = (args.train_size / args.preset_size) ** 2
        segments = tuple(max(1, round(n * scale)) for n in preset.n_segments)
        compactness, p = preset.compactness, preset.p
    return MixOptions(
        num_classes=num_classes,
        n_segments=tuple(args.hsmix_segments) if args.hsmix_segments else segments,
        compactness=compactness if args.hsmix_compactness is None else args.hsmix_compactness,
        p=p if args.hsmix_p is None else args.hsmix_p,
        backend=_resolved_backend(args.backend),
        mixup_alpha=args.mixup_alpha,
        cutmix_alpha=args.cutmix_alpha,
        beta_alpha=args.beta_alpha,
        preset=args.preset,
    )


def _set_aside(path: Path, reason: str) -> None:
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt{n}")
    path.replace(target)
    logger.warning("%s: %s; set aside as %s and the run is redone", path, reason, target.name)


def _needs_rerun(path: Path, settings: Dict[str, Any]) -> bool:
    """Whether the finished run at ``path`` must be redone; raises when it was made with other settings.

    A half-written or unreadable run file (a kill during a copy, a full disk) is set aside and redone;
    a run of other data (same names, other contents) is redone; other settings are refused.
    """
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict) or not isinstance(stored.get("settings"), dict):
            raise ValueError("no 'settings' object")
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        _set_aside(path, f"unreadable run file ({err})")
        return True
    stored = stored["settings"]
    if stored == settings:
        return False
    now_data, then_data = settings.get("data_fingerprint"), stored.get("data_fingerprint")
    if then_data is None and {k: v for k, v in settings.items() if k != "data_fingerprint"} == stored:
        logger.warning(
            "%s records no data fingerprint (made before fingerprints): kept, but its data cannot be checked", path
        )
        return False
    changed = setting_differences(stored, settings)
    if then_data != now_data and all(c.startswith("data_fingerprint:") for c in changed):
        logger.warning(
            "%s was trained on other contents of the same files (data fingerprint %s, now %s): redone",
            path,
            str(then_data)[:12],
            str(now_data)[:12],
        )
        return True
    raise SettingsMismatchError(
        f"{path} was produced with other settings than this command ({'; '.join(changed)}); "
        "use another --out or the same options"
    )


class SettingsMismatchError(RuntimeError):
    """A sweep folder holds results of different settings (refuse to mix them in one report)."""


@dataclass
class Job:
    """One arm x seed (x fold) run still to train, with the settings its JSON records."""

    arm: str
    seed: int
    fold: Optional[int]
    path: Path
    settings: Dict[str, Any]


def _plan(
    runs_dir: Path,
    args: AblationConfig,
    folds: Sequence[Optional[int]],
    common: Dict[Optional[int], Dict[str, Any]],
    mix: MixOptions,
) -> Tuple[List[Job], List[Tuple[str, int, Optional[int]]]]:
    """Runs still to train and all planned (seed, then fold, then arm: an interrupted sweep leaves complete pairs)."""
    todo, planned = [], []
    for seed in args.seeds:
        for fold in folds:
            for arm in args.arms:
                planned.append((arm, seed, fold))
                name = f"{arm}_seed{seed}" + ("" if fold is None else f"_fold{fold}")
                path = runs_dir / f"{name}.json"
                # only what this arm depends on: the 'none' runs stay valid when an HSMix setting changes
                settings = {**common[fold], "arm": arm_settings(get_arm(arm), mix)}
                if path.exists() and not _needs_rerun(path, settings):
                    logger.info("skip %s: %s exists", name, path)
                else:
                    todo.append(Job(arm, seed, fold, path, settings))
    return todo, planned


def _train_jobs(
    todo: Sequence[Job],
    data: Dict[Optional[int], Tuple[Any, Any]],
    num_classes: int,
    config: TrainConfig,
    mix: MixOptions,
) -> None:
    commit = _git_commit()  # before training: the code that produces the runs
    for job in todo:
        sampler, evaluator = data[job.fold]
        tick = time.perf_counter()
        result = train_run(job.arm, job.seed, sampler, evaluator, num_classes, config, mix)
        result.update({"fold": job.fold, "settings": job.settings, "git_commit": commit})
        write_json_atomic(job.path, result)
        logger.info("%s done in %.0f s", job.path.stem, time.perf_counter() - tick)


def _decathlon(args: AblationConfig, config: TrainConfig, base: Dict[str, Any]):
    train_patients = None if args.train_patients == 0 else args.train_patients
    split = split_dataset(args.data_dir, train_patients, args.split_seed, args.val_patients, args.patient_pattern)
    mix = _mix_options(args, split.num_classes)
    used = [f for groups in (split.train, split.val) for pairs in groups.values() for pair in pairs for f in pair]
    common = {
        None: {
            **base,
            "train_patients": args.train_patients,
            "val_patients": args.val_patients,
            "patient_pattern": args.patient_pattern,
            "train_ids": sorted(split.train),
            "val_ids": sorted(split.val),
            "data_fingerprint": data_fingerprint(used, args.data_dir),
        }
    }

    def load() -> Dict[Optional[int], Tuple[Any, Any]]:
        train_volumes = load_volumes(split.train, split.num_classes)
        val_volumes = load_volumes(split.val, split.num_classes)
        slices = to_slices(train_volumes, args.train_size)
        logger.info(
            "%d training patients (%d slices), %d validation patients (%d volumes)",
            len(split.train),
            slices.images.shape[0],
            len(split.val),
            len(val_volumes),
        )
        return {None: (slices, lambda model: evaluate(model, val_volumes, args.train_size, split.num_classes))}

    data_line = (
        f"{args.data_dir} — {len(split.train)} training patients {sorted(split.train)}, "
        f"{len(split.val)} validation patients"
    )
    return split.num_classes, split.class_names[1:], mix, [None], common, load, data_line


def _image_folder(args: AblationConfig, config: TrainConfig, base: Dict[str, Any]):
    pairs = find_pairs(args.data_dir)
    if args.test_dir is not None:
        test_pairs = find_pairs(args.test_dir)
        clash = sorted(set(pairs) & set(test_pairs))
        if clash:  # runs and reports name images by their stem
            raise ValueError(f"--test-dir {args.test_dir} has images named as in --data-dir: {clash[:5]}")
        splits, folds = {None: (sorted(pairs), sorted(test_pairs))}, [None]
    else:
        test_pairs = {}
        listed = kfold_by_image(list(pairs), args.folds, args.split_seed)
        splits = dict(enumerate(listed))
        folds = list(range(args.folds)) if args.only_folds is None else sorted(set(args.only_folds))
        bad = [f for f in folds if not 0 <= f < args.folds]
        if bad:
            raise ValueError(f"--only-folds {bad} outside [0, {args.folds - 1}]")
    every = {**pairs, **test_pairs}
    mix = _mix_options(args, args.num_classes)
    protocol = {"resize": args.resize} if args.resize is not None else {}
    # per fold: editing one image redoes only the folds that trained or tested on it
    common = {
        f: {
            **base,
            **protocol,
            **({"folds": args.folds, "fold": f} if f is not None else {"test_dir": str(args.test_dir.resolve())}),
            "train_images": splits[f][0],
            "test_images": splits[f][1],
            "data_fingerprint": data_fingerprint(
                [p for n in splits[f][0] + splits[f][1] for p in every[n]], args.data_dir
            ),
        }
        for f in folds
    }
    size = args.train_size

    def load() -> Dict[Optional[int], Tuple[Any, Any]]:
        loaded = {name: read_pair(*every[name], args.num_classes) for name in sorted(every)}
        if args.resize is not None:
            loaded = {name: resize_pair(image, mask, args.resize) for name, (image, mask) in loaded.items()}
        out = {}
        for f in folds:
            train, test = splits[f]
            # resized whole images: a crop of the image's own size is the image, one window scores it whole
            sampler = CropSampler([loaded[n][0] for n in train], [loaded[n][1] for n in train], size)
            images, labels = [loaded[n][0] for n in test], [loaded[n][1] for n in test]
            out[f] = (
                sampler,
                lambda model, i=images, l=labels, n=test: evaluate_images(model, i, l, n, size, args.num_classes),
            )
        logger.info(
            "%d images, %s",
            len(every),
            f"{args.folds} folds ({folds} run here)"
            if args.test_dir is None
            else f"{len(pairs)} training, {len(test_pairs)} test images",
        )
        return out

    names = ["foreground"] if args.num_classes == 2 else [f"class {k}" for k in range(1, args.num_classes)]
    if args.test_dir is None:
        split_line = (
            f"{len(pairs)} images, {args.folds}-fold cross-validation by image (split seed {args.split_seed}), "
            f"folds run: {folds}"
        )
    else:
        split_line = f"{len(pairs)} training images, tested on the {len(test_pairs)} images of {args.test_dir}"
    if args.resize is None:
        how = (
            f"training on random {size}x{size} crops at the stored resolution, whole held-out images predicted by "
            "sliding window"
        )
    else:
        how = (
            f"whole images resized to {size}x{size} (bilinear, masks nearest) for training and testing, scored at "
            "that size (the paper's protocol)"
        )
    return args.num_classes, names, mix, folds, common, load, f"{args.data_dir} — {split_line}; {how}"


def _train_config(args: AblationConfig) -> TrainConfig:
    return TrainConfig(
        image_size=args.train_size,
        eval_every=args.eval_every,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        channels=tuple(args.channels),
        mix_prob=args.mix_prob,
    )


def check_arguments(args: AblationConfig) -> None:
    """Raise ``ValueError`` for any bad argument before anything loads or trains.

    The arms check their options only when they are built, so a bad ``--hsmix-segments`` used to end
    a sweep after the arms before HSMix had trained: every selected arm is built here once.
    """
    if args.train_patients < 0:
        raise ValueError(f"--train-patients must be >= 0, got {args.train_patients}")
    if args.resize is not None and args.image_size is not None and args.image_size != args.resize:
        raise ValueError(f"--resize {args.resize} sets the training size; leave out --image-size {args.image_size}")
    if args.eval_every < 0:
        raise ValueError(f"--eval-every must be >= 0 (0: only at the end), got {args.eval_every}")
    if (args.resize is not None or args.test_dir is not None) and _layout(args) != "image_folder":
        option = "--resize" if args.resize is not None else "--test-dir"
        raise ValueError(
            f"{option} is for image folders (images/, masks/); {args.data_dir} is a Decathlon folder "
            "(its slices are resized to --image-size)"
        )
    if args.test_dir is not None:
        if not is_image_folder(args.test_dir):
            raise ValueError(f"--test-dir {args.test_dir} has no images/ and masks/ folders")
        if args.only_folds is not None:
            raise ValueError("--only-folds selects k-fold splits; with --test-dir there are none")
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
    for other in args.compare_to:
        if other.resolve() == args.out.resolve():
            raise ValueError(f"--compare-to {other} is this sweep's own --out")
        sweep_runs(other)  # a typo in a folder name fails now, not after the sweep has trained
    config = _train_config(args)
    # num_classes is only known from the data: any valid count checks the other options
    mix = _mix_options(args, num_classes=2)
    for name in args.arms:
        arm = get_arm(name)
        try:
            arm.build(arm.sources_per_step(config.batch_size), mix, 0)
        except ValueError as err:
            raise ValueError(
                f"arm {name!r} rejects its options: {err} (see --hsmix-*, --preset, --backend, "
                "--mixup-alpha, --cutmix-alpha, --beta-alpha)"
            ) from err


def _layout(args: AblationConfig) -> str:
    return (
        "image_folder"
        if is_image_folder(args.data_dir) and not (args.data_dir / "dataset.json").is_file()
        else "decathlon"
    )


def run(args: AblationConfig) -> Path:
    """Run the missing arm x seed (x fold) runs, then write the report; returns the report path."""
    torch.set_num_threads(args.threads)
    config = _train_config(args)
    layout = _layout(args)
    train = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
    if not config.eval_every:  # runs made before learning curves existed keep matching
        del train["eval_every"]
    base = {"data_dir": str(args.data_dir.resolve()), "layout": layout, "split_seed": args.split_seed, "train": train}
    build = _image_folder if layout == "image_folder" else _decathlon
    num_classes, class_names, mix, folds, common, load, data_line = build(args, config, base)
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo, planned = _plan(runs_dir, args, folds, common, mix)
    if todo and not args.report_only:
        _train_jobs(todo, load(), num_classes, config, mix)
    return write_report(
        args.out,
        args.arms,
        class_names,
        expected_runs=len(planned),
        header=_report_header(args, data_line, config, mix),
        notes=REPORT_NOTES[layout],
        planned=planned,
        compare_to={str(p): sweep_runs(p) for p in args.compare_to},
    )


_SHARED_NOTES = (
    "Every arm trains the same UNet with the same AdamW/poly schedule for the same number of steps. A mixed step "
    "sees `batch size` samples drawn as that many sources, except `hsmix_both` (half as many sources, a hard and a "
    "soft mix of each: equal samples) and `hsmix_paper` (the paper's protocol: `batch size` sources give a hard and a "
    "soft batch, twice the samples, at every step); the cost table gives each arm's samples and sources per step. "
    "All arms share the random flip and ±20° rotation. Labels are one-hot and mixed as channels (MONAI MixUp/CutMix "
    "are given the one-hot labels). Loss: softmax DiceLoss(soft_label=True) + cross-entropy with probability targets. "
)
REPORT_NOTES = {
    "decathlon": _SHARED_NOTES
    + (
        "Evaluation: validation volumes predicted slice by slice at the training size, logits resized back to the "
        "stored grid; DSC and Jaccard from MONAI, HD95 = MONAI HausdorffDistanceMetric(percentile=95) (larger of the "
        "two directed 95th percentiles, not medpy's pooled hd95) in header-spacing units; a missed class scores the "
        "volume diagonal; classes absent from a reference are left out."
    ),
    "image_folder": _SHARED_NOTES
    + (
        "Evaluation: each held-out image predicted whole with MONAI sliding_window_inference (window = crop size, "
        "overlap 0.25, Gaussian blending); DSC and Jaccard from MONAI on the whole image, HD95 = MONAI "
        "HausdorffDistanceMetric(percentile=95) in pixels (larger of the two directed 95th percentiles). Runs are "
        "paired by seed and fold: the same initialisation, crops before mixing, training and test images."
    ),
}


def _report_header(args: AblationConfig, data_line: str, config: TrainConfig, mix: MixOptions) -> Dict[str, Any]:
    import cv2
    import numpy

    PIL = require("PIL")
    import skimage

    shown = [a for a in args.argv if a != "--report-only"]  # the command that trains the runs, not the re-report
    command = "python -m monai_hsmix.apps.ablation " + " ".join(shlex.quote(a) for a in shown)
    hsmix = {k: v for k, v in mix.hsmix_kwargs().items() if k not in ("num_classes",)}
    return {
        "command": f"`{command}`",
        "data": data_line,
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, monai {monai.__version__}, "
        f"numpy {numpy.__version__}, scikit-image {skimage.__version__}, opencv {cv2.__version__}, "
        f"Pillow {PIL.__version__}, "
        f"git {_git_commit()} (report), {args.threads} CPU thread(s)",
        "mixing": f"HSMix preset {mix.preset or 'none'}, resolved {hsmix}; MixUp alpha {mix.mixup_alpha}, "
        f"CutMix alpha {mix.cutmix_alpha}",
        "schedule": f"{config.steps} steps x {config.batch_size} samples, AdamW lr {config.lr} "
        f"wd {config.weight_decay} poly(0.9), "
        f"{config.image_size}x{config.image_size} training size, UNet channels {list(config.channels)}, "
        f"mix prob {config.mix_prob} "
        "(1.0 for hsmix_paper)",
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    # the sibling sweeps' entry point; imported here because mix_sweep builds on this module
    from monai_hsmix.apps.mix_sweep import sweep_main

    return sweep_main(AblationConfig, build_parser(), argv, check_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())

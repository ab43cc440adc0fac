"""Plan, resume and train the runs of an augmentation sweep with the HSMix ablation's runner.

The InsMix and Soft-CP ablations (:mod:`monai_hsmix.apps.insmix_ablation`,
:mod:`monai_hsmix.apps.softcp_ablation`) mix *inside their sampler* (InsMix pastes into instance maps
before they become three-class targets; Soft-CP pastes lesions from another slice), so every arm trains
through :func:`monai_hsmix.apps.ablation.train2d.train_run` with that runner's own ``none`` arm, or with
its ``cutmix`` arm for MONAI CutMix. What this adds is the bookkeeping both apps share: one JSON per arm x
seed (x fold), written atomically, skipped on a rerun with the same settings and refused (naming the
setting) with other settings, exactly as ``python -m monai_hsmix.apps.ablation`` does.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

# the HSMix ablation's error type, difference listing and commit stamp, so the three apps refuse alike
from monai_hsmix.apps.ablation.cli import SettingsMismatchError, _git_commit
from monai_hsmix.apps.ablation.compare import setting_differences
from monai_hsmix.apps.ablation.train2d import Evaluator, Sampler, TrainConfig, train_run
from monai_hsmix.apps.ablation.arms import MixOptions
from monai_hsmix.apps.config import parse_config
from monai_hsmix.data.io import write_json_atomic

__all__ = [
    "SettingsMismatchError",
    "SweepConfig",
    "SweepJob",
    "add_training_arguments",
    "check_same_settings",
    "check_training_arguments",
    "pairwise_table",
    "plan_sweep",
    "run_sweep",
    "run_name",
    "sweep_header",
    "sweep_main",
    "train_settings",
]

logger = logging.getLogger("monai_hsmix.mix_sweep")


@dataclass
class SweepJob:
    """One arm x seed (x fold) run still to train and the settings its JSON records."""

    arm: str
    seed: int
    fold: Optional[int]
    path: Path
    settings: Dict[str, Any]


@dataclass
class SweepConfig:
    """Options every sweep app has (each app's config adds its own and may change these defaults)."""

    data_dir: Path
    out: Path
    arms: Sequence[str] = ()
    seeds: Sequence[int] = (0, 1)
    steps: int = 300
    batch_size: int = 8
    lr: float = 5e-3
    weight_decay: float = 1e-4
    channels: Sequence[int] = (16, 32, 64, 128)
    mix_prob: float = 0.5
    threads: int = 1
    report_only: bool = False
    argv: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.data_dir, self.out = Path(self.data_dir), Path(self.out)

    def train_config(self, image_size: int) -> TrainConfig:
        """The runner's settings (``ValueError`` for a bad steps / batch / mix prob / size)."""
        return TrainConfig(
            image_size=image_size,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            channels=tuple(self.channels),
            mix_prob=self.mix_prob,
        )


def train_settings(config: TrainConfig) -> Dict[str, Any]:
    """The runner settings a result depends on, named one by one (a field added to ``TrainConfig`` later
    does not invalidate finished runs)."""
    names = ("image_size", "steps", "batch_size", "lr", "weight_decay", "channels", "mix_prob", "max_rotation")
    return {k: list(getattr(config, k)) if isinstance(getattr(config, k), tuple) else getattr(config, k) for k in names}


def check_same_settings(path: Path, settings: Dict[str, Any]) -> None:
    """Raise :class:`SettingsMismatchError`, naming each differing setting, if ``path`` was made with other settings."""
    stored = json.loads(Path(path).read_text()).get("settings")
    if stored != settings:
        changed = "; ".join(setting_differences(stored or {}, settings))
        raise SettingsMismatchError(
            f"{path} was produced with other settings than this command ({changed}); "
            "use another --out or the same options"
        )


def run_name(arm: str, seed: int, fold: Optional[int]) -> str:
    return f"{arm}_seed{seed}" + ("" if fold is None else f"_fold{fold}")


def plan_sweep(
    runs_dir: Path,
    arms: Sequence[str],
    seeds: Sequence[int],
    folds: Sequence[Optional[int]],
    settings_of: Callable[[str, Optional[int]], Dict[str, Any]],
) -> Tuple[List[SweepJob], List[Tuple[str, int, Optional[int]]]]:
    """Runs still to train (seed, then fold, then arm: an interrupted sweep leaves complete pairs) and all planned.

    A finished run whose stored settings differ from ``settings_of(arm, fold)`` raises
    :class:`SettingsMismatchError` naming the differing settings.
    """
    todo, planned = [], []
    for seed in seeds:
        for fold in folds:
            for arm in arms:
                planned.append((arm, seed, fold))
                path = Path(runs_dir) / f"{run_name(arm, seed, fold)}.json"
                settings = settings_of(arm, fold)
                if path.exists():
                    check_same_settings(path, settings)
                    logger.info("skip %s: %s exists", path.stem, path)
                else:
                    todo.append(SweepJob(arm, seed, fold, path, settings))
    return todo, planned


def run_sweep(
    todo: Sequence[SweepJob],
    sampler_of: Callable[[str, int, Optional[int]], Sampler],
    evaluator_of: Callable[[Optional[int]], Evaluator],
    runner_arm_of: Callable[[str], str],
    describe: Callable[[str], str],
    num_classes: int,
    config: TrainConfig,
    mix: MixOptions,
) -> None:
    """Train every job with :func:`train_run` and write its JSON atomically.

    ``sampler_of(arm, seed, fold)`` gives the run's (possibly mixing) sampler, ``runner_arm_of(arm)``
    the HSMix ablation arm that runs on top of it (``"none"``, or ``"cutmix"`` for MONAI CutMix).
    """
    commit = _git_commit()  # before training: the code that produces the runs
    for job in todo:
        tick = time.perf_counter()
        sampler = sampler_of(job.arm, job.seed, job.fold)
        result = train_run(runner_arm_of(job.arm), job.seed, sampler, evaluator_of(job.fold), num_classes, config, mix)
        # pasting happens in the sampler, outside the runner's own mixing clock
        result["sampler_mix_seconds"] = float(getattr(sampler, "mix_seconds", 0.0))
        result["sampler_pastes"] = int(getattr(sampler, "pastes", 0))
        result["sampler_skipped"] = int(getattr(sampler, "skipped", 0))
        result["steps"] = config.steps
        result.update(
            {
                "arm": job.arm,
                "description": describe(job.arm),
                "runner_arm": runner_arm_of(job.arm),
                "fold": job.fold,
                "settings": job.settings,
                "git_commit": commit,
            }
        )
        write_json_atomic(job.path, result)
        logger.info("%s done in %.0f s", job.path.stem, time.perf_counter() - tick)


def add_training_arguments(parser: argparse.ArgumentParser, arms: Sequence[str]) -> None:
    """The options every sweep app has: data, output, arms, seeds, the runner's schedule, threads, report only."""
    parser.add_argument("--data-dir", type=Path, required=True, help="the dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (runs/, report.md)")
    parser.add_argument("--arms", nargs="+", choices=list(arms), help="arms to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--steps", type=int, help="optimiser steps (same in every arm)")
    parser.add_argument("--batch-size", type=int, help="samples per step (even, >= 4)")
    parser.add_argument("--lr", type=float, help="AdamW learning rate, poly(0.9) decay to 0")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--channels", type=int, nargs="+", help="UNet channels per level")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")


def check_training_arguments(args: Any, arms: Sequence[str]) -> None:
    """``ValueError`` for a bad shared option (arms, seeds, threads, learning rate, channels)."""
    unknown = [a for a in args.arms if a not in arms]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; expected some of {list(arms)}")
    if not args.seeds:
        raise ValueError("--seeds needs at least one seed")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if len(args.channels) < 2 or any(c < 1 for c in args.channels):
        raise ValueError(f"--channels needs at least 2 levels of >= 1 channels, got {args.channels}")


C = TypeVar("C")


def sweep_main(
    config_cls: Type[C],
    parser: argparse.ArgumentParser,
    argv: Optional[Sequence[str]],
    check: Callable[[C], None],
    run: Callable[[C], Path],
) -> int:
    """Parse, check (usage error naming the option), run, print the report path; known failures exit 2
    with their message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_config(config_cls, parser, argv)
    args.argv = argv  # type: ignore[attr-defined]
    try:
        check(args)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        report = run(args)
    except (SettingsMismatchError, ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    print(report)
    return 0


def sweep_header(
    prog: str, args: SweepConfig, config: TrainConfig, data: str, samples: str, extra: str
) -> Dict[str, str]:
    """The report's header lines: the command that trains the runs, the data, versions and the schedule."""
    import monai
    import numpy
    import scipy
    import skimage
    import torch

    shown = [a for a in args.argv if a != "--report-only"]  # the command that trains the runs, not the re-report
    command = f"python -m {prog} " + " ".join(shlex.quote(a) for a in shown)
    return {
        "command": f"`{command}`",
        "data": data,
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, monai {monai.__version__}, numpy "
        f"{numpy.__version__}, scipy {scipy.__version__}, scikit-image {skimage.__version__}, "
        f"git {_git_commit()} (report), "
        f"{args.threads} CPU thread(s)",
        "schedule": f"{config.steps} steps x {config.batch_size} {samples} of "
        f"{config.image_size}x{config.image_size}, AdamW lr "
        f"{config.lr} wd {config.weight_decay} poly(0.9), UNet channels {list(config.channels)}, {extra}",
    }


def pairwise_table(scores: Dict[str, Dict[Any, float]], scale: float = 100.0) -> str:
    """Markdown table of paired differences row arm - column arm (mean [95% CI] (pairs up)) for every pair of arms.

    ``scores`` maps an arm to ``{pairing key (seed, or seed and fold): score}``; runs pair on equal keys.
    """
    from monai_hsmix.apps.ablation.stats import pair

    arms = list(scores)
    lines = ["| row − column | " + " | ".join(arms) + " |", "|" + "---|" * (len(arms) + 1)]
    for row in arms:
        cells = []
        for col in arms:
            diff = None if row == col else pair(scores[row], scores[col])
            cells.append("—" if diff is None else diff.format(scale))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

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

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

# the HSMix ablation's error type, difference listing and commit stamp, so the three apps refuse alike
from monai_hsmix.apps.ablation.cli import SettingsMismatchError, _differences, _git_commit
from monai_hsmix.apps.ablation.train2d import Evaluator, Sampler, TrainConfig, train_run
from monai_hsmix.apps.ablation.arms import MixOptions
from monai_hsmix.data.io import write_json_atomic

__all__ = ["SettingsMismatchError", "SweepJob", "check_same_settings", "plan_sweep", "run_sweep", "run_name", "train_settings"]

logger = logging.getLogger("monai_hsmix.mix_sweep")


@dataclass
class SweepJob:
    """One arm x seed (x fold) run still to train and the settings its JSON records."""

    arm: str
    seed: int
    fold: Optional[int]
    path: Path
    settings: Dict[str, Any]


def train_settings(config: TrainConfig) -> Dict[str, Any]:
    """The runner settings a result depends on, named one by one (a field added to ``TrainConfig`` later
    does not invalidate finished runs)."""
    names = ("image_size", "steps", "batch_size", "lr", "weight_decay", "channels", "mix_prob", "max_rotation")
    return {k: list(getattr(config, k)) if isinstance(getattr(config, k), tuple) else getattr(config, k) for k in names}


def check_same_settings(path: Path, settings: Dict[str, Any]) -> None:
    """Raise :class:`SettingsMismatchError`, naming each differing setting, if ``path`` was made with other settings."""
    stored = json.loads(Path(path).read_text()).get("settings")
    if stored != settings:
        changed = "; ".join(_differences(stored or {}, settings))
        raise SettingsMismatchError(f"{path} was produced with other settings than this command ({changed}); "
                                    "use another --out or the same options")


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
        result.update({"arm": job.arm, "description": describe(job.arm), "runner_arm": runner_arm_of(job.arm),
                       "fold": job.fold, "settings": job.settings, "git_commit": commit})
        write_json_atomic(job.path, result)
        logger.info("%s done in %.0f s", job.path.stem, time.perf_counter() - tick)

"""One ablation run: train a small 2D MONAI UNet under one arm and seed, then evaluate it.

Every arm gets the same network, the same optimiser and learning-rate schedule and the same number of
steps. A step draws its training samples from a :class:`Sampler` (slices of volumes, random crops of
large images), applies the shared flip/rotation, then with probability ``mix_prob`` the arm's mixing
(otherwise ``batch_size`` unmixed samples are drawn). Mixed steps see ``batch_size`` samples in every
arm but ``hsmix_paper`` (``2 x batch_size``, and it mixes at every step; see
:mod:`monai_hsmix.apps.ablation.arms`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Protocol, Sequence, Tuple

import numpy as np
import torch
from monai.networks.nets import UNet
from monai.networks.utils import one_hot

from monai_hsmix.apps.ablation.arms import MixOptions, get_arm
from monai_hsmix.apps.ablation.augment import flip_rotate
from monai_hsmix.networks.losses import SoftDiceCELoss

__all__ = [
    "build_network",
    "config_dict",
    "Evaluator",
    "lr_schedule",
    "mean_foreground_dice",
    "Sampler",
    "train_run",
    "TrainConfig",
]

Evaluator = Callable[[torch.nn.Module], List[Dict[str, object]]]


class Sampler(Protocol):
    """Where a step's unmixed training samples come from."""

    in_channels: int

    def draw(self, count: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """``count`` images ``(count, C, H, W)`` float and labels ``(count, 1, H, W)`` int64."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that must be equal across the runs of one sweep."""

    image_size: int = 96
    steps: int = 500
    batch_size: int = 8
    lr: float = 5e-3
    weight_decay: float = 1e-4
    channels: Tuple[int, ...] = (16, 32, 64, 128)
    mix_prob: float = 0.5
    max_rotation: float = 20.0
    eval_every: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 4 or self.batch_size % 2:
            raise ValueError(
                f"batch_size must be even and >= 4 (HSMix 'both' draws batch_size/2 >= 2 pairs), got {self.batch_size}"
            )
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"mix_prob must be in [0, 1], got {self.mix_prob}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 (0: evaluate only at the end), got {self.eval_every}")
        if self.image_size < 2 ** len(self.channels):
            raise ValueError(f"image_size {self.image_size} is too small for a UNet with {len(self.channels)} levels")


def build_network(in_channels: int, num_classes: int, channels: Sequence[int]) -> torch.nn.Module:
    """The small MONAI UNet every arm trains."""
    return UNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=num_classes,
        channels=tuple(channels),
        strides=(2,) * (len(channels) - 1),
        num_res_units=1,
    )


def mean_foreground_dice(rows: Sequence[Dict[str, Any]]) -> float:
    """Mean over classes of each class's mean Dice over the volumes (absent classes left out), as the report."""
    values = np.array([r["dice"] for r in rows], dtype=float)
    with np.errstate(all="ignore"):
        per_class = np.nanmean(values, axis=0) if values.size else np.array([np.nan])
        return float(np.nanmean(per_class)) if np.isfinite(per_class).any() else math.nan


def lr_schedule(optimiser: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The poly schedule of nnU-Net and the HSMix paper, ``lr * (1 - step / steps) ** 0.9``, stepped once per
    training step."""
    return torch.optim.lr_scheduler.PolynomialLR(optimiser, total_iters=steps, power=0.9)


def train_run(
    arm_name: str,
    seed: int,
    train: Sampler,
    evaluate: Evaluator,
    num_classes: int,
    config: TrainConfig,
    mix: MixOptions,
) -> Dict[str, Any]:
    """Train under ``arm_name`` with ``seed``, then return ``evaluate(model)``'s scores and the costs.

    The result gives the samples and sources of a mixed step, their means over all steps (unmixed
    steps draw ``batch_size`` samples), the training wall-clock and the part of it spent mixing, and
    the learning curve: with ``config.eval_every = N`` the test set is scored every ``N`` steps (and
    at the end) and each point records the mean training loss since the previous one. Scoring uses no
    random stream and restores training mode, so a run with a curve trains exactly as one without.
    """
    arm = get_arm(arm_name)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    coin = np.random.RandomState(seed)
    sources = arm.sources_per_step(config.batch_size)
    samples = arm.samples_per_step(config.batch_size)
    mix_prob = 1.0 if arm.always_mix else config.mix_prob
    mixer = arm.build(sources, mix, seed)
    model = build_network(train.in_channels, num_classes, config.channels)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = lr_schedule(optimiser, config.steps)
    # softmax Dice (soft_label=True) + cross-entropy on class probabilities, Dice pooled over the batch
    loss_fn = SoftDiceCELoss(batch=True)
    losses, mix_seconds, mixed_steps, seen, drawn = [], 0.0, 0, 0, 0
    curve: List[Dict[str, float]] = []
    curve_seconds = 0.0
    start = time.perf_counter()
    model.train()
    for step in range(1, config.steps + 1):
        do_mix = coin.rand() < mix_prob
        count = sources if do_mix else config.batch_size
        images, labels = flip_rotate(*train.draw(count, generator), generator, config.max_rotation)
        target = one_hot(labels, num_classes, dim=1)
        if do_mix:
            tick = time.perf_counter()
            images, target = mixer(images, target)
            mix_seconds += time.perf_counter() - tick
            mixed_steps += 1
        expected = samples if do_mix else config.batch_size
        if images.shape[0] != expected:
            raise RuntimeError(f"arm {arm_name!r} produced {images.shape[0]} samples, expected {expected}")
        seen, drawn = seen + expected, drawn + count
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(torch.as_tensor(images)), torch.as_tensor(target))
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if config.eval_every and step % config.eval_every == 0 and step < config.steps:
            tick = time.perf_counter()
            curve.append(_curve_point(step, losses, curve, evaluate(model)))
            curve_seconds += time.perf_counter() - tick
    train_seconds = time.perf_counter() - start - curve_seconds
    tick = time.perf_counter()
    rows = evaluate(model)
    if config.eval_every:
        curve.append(_curve_point(config.steps, losses, curve, rows))
    tail = max(1, len(losses) // 10)
    return {
        "arm": arm_name,
        "seed": seed,
        "description": arm.description,
        "samples_per_step": samples,
        "sources_per_step": sources,
        "mix_prob": mix_prob,
        "mixed_steps": mixed_steps,
        "mean_samples_per_step": seen / config.steps,
        "mean_sources_per_step": drawn / config.steps,
        "final_train_loss": float(np.mean(losses[-tail:])),
        "train_seconds": train_seconds,
        "mix_seconds": mix_seconds,
        "eval_seconds": time.perf_counter() - tick,
        "curve_seconds": curve_seconds,
        "curve": curve,
        "volumes": rows,
    }


def _curve_point(step: int, losses: Sequence[float], curve: Sequence[Dict[str, float]], rows) -> Dict[str, float]:
    since = int(curve[-1]["step"]) if curve else 0
    return {"step": step, "train_loss": float(np.mean(losses[since:step])), "mean_fg_dsc": mean_foreground_dice(rows)}


def config_dict(config: TrainConfig, mix: MixOptions) -> Dict[str, Any]:
    """JSON-ready form of the settings a sweep must keep equal."""
    return {
        "train": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "mix": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(mix).items()},
    }

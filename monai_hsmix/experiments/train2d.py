"""One ablation run: train a small 2D MONAI UNet under one arm and seed, then evaluate it.

Every arm gets the same network, the same optimiser and learning-rate schedule, the same number of
steps and ``batch_size`` samples per step (see :mod:`monai_hsmix.experiments.arms`). A step draws its
slices uniformly with replacement, applies the shared flip/rotation, then with probability
``mix_prob`` the arm's mixing (otherwise ``batch_size`` unmixed slices are drawn).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Sequence, Tuple

import numpy as np
import torch
from monai.losses import DiceLoss
from monai.networks.nets import UNet
from monai.networks.utils import one_hot

from monai_hsmix.experiments.arms import MixOptions, get_arm
from monai_hsmix.experiments.augment import flip_rotate
from monai_hsmix.experiments.data2d import SliceSet, Volume
from monai_hsmix.experiments.evaluate import evaluate


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

    def __post_init__(self) -> None:
        if self.batch_size < 4 or self.batch_size % 2:
            raise ValueError(f"batch_size must be even and >= 4 (HSMix 'both' draws batch_size/2 >= 2 pairs), got {self.batch_size}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"mix_prob must be in [0, 1], got {self.mix_prob}")
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


class SoftDiceCE(torch.nn.Module):
    """Softmax Dice with ``soft_label=True`` plus cross-entropy against class probabilities.

    ``DiceLoss`` without ``soft_label`` does not reach 0 at prediction = soft target; PyTorch's
    ``cross_entropy`` reads a float ``(B, K, ...)`` target as probabilities.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dice = DiceLoss(softmax=True, soft_label=True, batch=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice(logits, target) + torch.nn.functional.cross_entropy(logits, target)


def _poly(step: int, total: int) -> float:
    return (1.0 - step / total) ** 0.9


def train_run(
    arm_name: str,
    seed: int,
    train: SliceSet,
    val_volumes: Sequence[Volume],
    num_classes: int,
    config: TrainConfig,
    mix: MixOptions,
) -> Dict[str, Any]:
    """Train under ``arm_name`` with ``seed`` and return the validation scores and timings."""
    arm = get_arm(arm_name)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    coin = np.random.RandomState(seed)
    sources = arm.sources_per_step(config.batch_size)
    mixer = arm.build(sources, mix, seed)
    model = build_network(train.images.shape[1], num_classes, config.channels)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: _poly(s, config.steps))
    loss_fn = SoftDiceCE()
    losses, mix_seconds = [], 0.0
    start = time.perf_counter()
    model.train()
    for _ in range(config.steps):
        do_mix = coin.rand() < config.mix_prob
        count = sources if do_mix else config.batch_size
        idx = torch.randint(train.images.shape[0], (count,), generator=generator)
        images, labels = flip_rotate(train.images[idx], train.labels[idx], generator, config.max_rotation)
        target = one_hot(labels, num_classes, dim=1)
        if do_mix:
            tick = time.perf_counter()
            images, target = mixer(images, target)
            mix_seconds += time.perf_counter() - tick
        if images.shape[0] != config.batch_size:
            raise RuntimeError(f"arm {arm_name!r} produced {images.shape[0]} samples, expected {config.batch_size}")
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(torch.as_tensor(images)), torch.as_tensor(target))
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    train_seconds = time.perf_counter() - start
    tick = time.perf_counter()
    rows = evaluate(model, val_volumes, config.image_size, num_classes)
    tail = max(1, len(losses) // 10)
    return {
        "arm": arm_name,
        "seed": seed,
        "description": arm.description,
        "samples_per_step": config.batch_size,
        "sources_per_step": sources,
        "final_train_loss": float(np.mean(losses[-tail:])),
        "train_seconds": train_seconds,
        "mix_seconds": mix_seconds,
        "eval_seconds": time.perf_counter() - tick,
        "volumes": rows,
    }


def config_dict(config: TrainConfig, mix: MixOptions) -> Dict[str, Any]:
    """JSON-ready form of the settings a sweep must keep equal."""
    return {"train": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
            "mix": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(mix).items()}}

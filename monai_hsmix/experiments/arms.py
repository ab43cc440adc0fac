"""The arms of the ablation: which batch mixing a training step applies.

Every arm maps a batch of images ``(k, C, H, W)`` and one-hot labels ``(k, K, H, W)`` to ``B`` training
samples with soft labels. All arms but ``hsmix_both`` draw ``k = B`` source samples; HSMix mode
``"both"`` returns a hard and a soft batch (``2k`` samples), so it draws ``k = B / 2`` and every arm's
optimiser step sees the same ``B`` samples.

MONAI's ``MixUp`` and ``CutMix`` are fixed to one ``batch_size`` (a smaller batch raises): the
runner always draws exactly ``k`` samples. ``CutMixd`` without ``label_keys`` would silently leave the
labels alone, so the array transforms are called with the one-hot labels, which they mix with the
same weights (MixUp) or the same boxes (CutMix) as the images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import torch
from monai.transforms import CutMix, MixUp

from monai_hsmix.transforms import RandHSMix

Mixer = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class MixOptions:
    """Parameters shared by the mixing arms (identical in every arm that uses them)."""

    num_classes: int
    n_segments: Tuple[int, int] = (50, 100)
    compactness: float = 0.1
    p: float = 0.3
    backend: str = "auto"
    mixup_alpha: float = 1.0
    cutmix_alpha: float = 1.0
    beta_alpha: float = 1.0


@dataclass(frozen=True)
class Arm:
    """One ablation arm: a name, what it tests, and how it builds its mixer."""

    name: str
    description: str
    build: Callable[[int, MixOptions, int], Mixer] = field(repr=False)
    halves_batch: bool = False

    def sources_per_step(self, batch_size: int) -> int:
        """Source samples to draw so that the mixed batch has ``batch_size`` samples."""
        return batch_size // 2 if self.halves_batch else batch_size


def _identity(batch_size: int, options: MixOptions, seed: int) -> Mixer:
    return lambda images, labels: (images, labels)


def _monai(cls):
    def build(batch_size: int, options: MixOptions, seed: int) -> Mixer:
        alpha = options.mixup_alpha if cls is MixUp else options.cutmix_alpha
        mixer = cls(batch_size=batch_size, alpha=alpha)
        mixer.set_random_state(seed=seed)
        return lambda images, labels: tuple(mixer(images, labels))

    return build


def _hsmix(mode: str, **overrides):
    def build(batch_size: int, options: MixOptions, seed: int) -> Mixer:
        mixer = RandHSMix(
            num_classes=options.num_classes,
            n_segments=options.n_segments,
            compactness=options.compactness,
            p=options.p,
            mode=mode,
            backend=options.backend,
            beta_alpha=options.beta_alpha,
            **overrides,
        )
        mixer.set_random_state(seed=seed)
        return lambda images, labels: tuple(mixer(images, labels))

    return build


ARMS: Dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("none", "basic augmentation only", _identity),
        Arm("mixup", "MONAI MixUp, images and one-hot labels with the same Beta weight", _monai(MixUp)),
        Arm("cutmix", "MONAI CutMix, images and one-hot labels with the same box", _monai(CutMix)),
        Arm("hsmix_hard", "HSMix hard mixing only (superpixels pasted with probability p)", _hsmix("hard")),
        Arm("hsmix_soft", "HSMix soft mixing only (saliency ratio averaged per superpixel)", _hsmix("soft")),
        Arm("hsmix_both", "HSMix hard + soft (B/2 sources give B/2 hard + B/2 soft samples)", _hsmix("both"), halves_batch=True),
        Arm("hsmix_random", "HSMix hard or soft (coin flip per batch) from B sources: 'both' without halving the sources", _hsmix("random")),
        Arm("grid_hard", "hard mixing of square grid cells instead of superpixels", _hsmix("hard", hard_region="grid")),
        Arm("beta_soft", "soft mixing with one Beta ratio per image instead of saliency", _hsmix("soft", soft_ratio="beta")),
    )
}


def get_arm(name: str) -> Arm:
    """The arm called ``name`` (one of :data:`ARMS`)."""
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}; expected one of {list(ARMS)}")
    return ARMS[name]

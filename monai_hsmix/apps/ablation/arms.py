"""The arms of the ablation: which batch mixing a training step applies.

Every arm maps a batch of images ``(k, C, H, W)`` and one-hot labels ``(k, K, H, W)`` to training
samples with soft labels. HSMix mode ``"both"`` returns a hard and a soft batch (``2k`` samples), which
two arms count differently:

- ``hsmix_both`` (equal samples) draws ``k = B / 2`` sources, so its step sees the same ``B`` samples as
  every other arm, from half as many distinct sources;
- ``hsmix_paper`` (the paper's protocol, Sec. 4.2, and its training scripts) draws ``k = B`` sources and
  trains on all ``2B`` hard + soft samples at every step (no originals, no unmixed steps): twice the
  samples per step, so twice the network cost.

Every other arm draws ``k = B`` sources and returns ``B`` samples, except the controls of the paper's
protocol, which hold that protocol equal and change only the mixing: ``none_2b`` (``2B`` unmixed
samples), ``cutmix_paper`` and ``mixup_paper`` (two independent MONAI draws over the same ``B`` sources:
``2B`` mixed samples at every step, as ``hsmix_paper``'s hard and soft batches).

MONAI's ``MixUp`` and ``CutMix`` are fixed to one ``batch_size`` (a smaller batch raises): the
runner always draws exactly ``k`` samples. ``CutMixd`` without ``label_keys`` would silently leave the
labels alone, so the array transforms are called with the one-hot labels, which they mix with the
same weights (MixUp) or the same boxes (CutMix) as the images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from monai.transforms import CutMix, MixUp

from monai_hsmix.transforms import RandHSMix, get_preset

__all__ = ["Arm", "arm_settings", "ARMS", "get_arm", "HS", "Mixer", "MixOptions"]

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
    preset: Optional[str] = None

    def hsmix_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of :class:`RandHSMix` shared by the HSMix arms.

        With ``preset``, the preset's settings come first (so that whatever the preset carries, e.g.
        its SLIC colour space, reaches the arms), then the options given here override them.
        """
        base = get_preset(self.preset).as_kwargs() if self.preset else {}
        return {
            **base,
            "num_classes": self.num_classes,
            "n_segments": self.n_segments,
            "compactness": self.compactness,
            "p": self.p,
            "backend": self.backend,
            "beta_alpha": self.beta_alpha,
        }


@dataclass(frozen=True)
class Arm:
    """One ablation arm: a name, what it tests, and how it builds its mixer.

    ``uses`` names the option groups the arm's result depends on (``"hsmix"``, ``"mixup"``,
    ``"cutmix"``): a resumed sweep compares only those, so that e.g. the ``none`` runs stay valid when an
    HSMix setting changes.
    """

    name: str
    description: str
    build: Callable[[int, MixOptions, int], Mixer] = field(repr=False)
    halves_batch: bool = False
    doubles_batch: bool = False
    doubles_sources: bool = False
    always_mix: bool = False
    uses: Tuple[str, ...] = ()

    def sources_per_step(self, batch_size: int) -> int:
        """Source samples drawn for a mixed step."""
        if self.doubles_sources:
            return 2 * batch_size
        return batch_size // 2 if self.halves_batch else batch_size

    def samples_per_step(self, batch_size: int) -> int:
        """Samples the network sees in a mixed step."""
        return 2 * batch_size if self.doubles_batch else batch_size


def _identity(batch_size: int, options: MixOptions, seed: int) -> Mixer:
    return lambda images, labels: (images, labels)


def _monai(cls):
    def build(batch_size: int, options: MixOptions, seed: int) -> Mixer:
        alpha = options.mixup_alpha if cls is MixUp else options.cutmix_alpha
        mixer = cls(batch_size=batch_size, alpha=alpha)
        mixer.set_random_state(seed=seed)
        return lambda images, labels: tuple(mixer(images, labels))

    return build


def _monai_twice(cls):
    """``B`` sources -> ``2B`` samples: two independent draws (partners, weights or boxes) of one mixer."""
    once = _monai(cls)

    def build(batch_size: int, options: MixOptions, seed: int) -> Mixer:
        mix = once(batch_size, options, seed)

        def twice(images: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
            (a, ya), (b, yb) = mix(images, labels), mix(images, labels)
            return torch.cat([torch.as_tensor(a), torch.as_tensor(b)]), torch.cat(
                [torch.as_tensor(ya), torch.as_tensor(yb)]
            )

        return twice

    return build


def _hsmix(mode: str, **overrides):
    def build(batch_size: int, options: MixOptions, seed: int) -> Mixer:
        mixer = RandHSMix(**{**options.hsmix_kwargs(), **build.overrides})
        mixer.set_random_state(seed=seed)
        return lambda images, labels: tuple(mixer(images, labels))

    build.overrides = {"mode": mode, **overrides}  # type: ignore[attr-defined]
    return build


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def arm_settings(arm: Arm, options: MixOptions) -> Dict[str, Any]:
    """The settings an arm's result depends on, JSON-ready.

    For the HSMix arms this is every argument the arm gives :class:`RandHSMix`, the preset's included
    (so that a preset that gains a setting, e.g. its SLIC colour space, shows up as a changed setting
    when a sweep is resumed); defaults left alone are covered by the git commit each run records.
    """
    out: Dict[str, Any] = {"num_classes": options.num_classes}
    if "hsmix" in arm.uses:
        kwargs = {**options.hsmix_kwargs(), **arm.build.overrides}  # type: ignore[attr-defined]
        out["hsmix"] = {k: _jsonable(v) for k, v in sorted(kwargs.items())}
        out["hsmix"]["preset"] = options.preset
    if "mixup" in arm.uses:
        out["mixup_alpha"] = options.mixup_alpha
    if "cutmix" in arm.uses:
        out["cutmix_alpha"] = options.cutmix_alpha
    return out


HS = ("hsmix",)

ARMS: Dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("none", "basic augmentation only", _identity),
        # the control of hsmix_paper: its doubled batch without its mixing
        Arm(
            "none_2b",
            "basic augmentation only, 2B unmixed samples at every step (the sample count of hsmix_paper)",
            _identity,
            doubles_batch=True,
            doubles_sources=True,
            always_mix=True,
        ),
        Arm(
            "mixup", "MONAI MixUp, images and one-hot labels with the same Beta weight", _monai(MixUp), uses=("mixup",)
        ),
        Arm("cutmix", "MONAI CutMix, images and one-hot labels with the same box", _monai(CutMix), uses=("cutmix",)),
        # the controls of hsmix_paper: its protocol (B sources, 2B mixed samples, every step) with MONAI's mixing
        Arm(
            "mixup_paper",
            "MONAI MixUp under the paper's protocol (B sources give 2B mixed samples at every step)",
            _monai_twice(MixUp),
            doubles_batch=True,
            always_mix=True,
            uses=("mixup",),
        ),
        Arm(
            "cutmix_paper",
            "MONAI CutMix under the paper's protocol (B sources give 2B mixed samples at every step)",
            _monai_twice(CutMix),
            doubles_batch=True,
            always_mix=True,
            uses=("cutmix",),
        ),
        Arm("hsmix_hard", "HSMix hard mixing only (superpixels pasted with probability p)", _hsmix("hard"), uses=HS),
        Arm("hsmix_soft", "HSMix soft mixing only (saliency ratio averaged per superpixel)", _hsmix("soft"), uses=HS),
        Arm(
            "hsmix_both",
            "HSMix hard + soft, equal samples (B/2 sources give B/2 hard + B/2 soft samples)",
            _hsmix("both"),
            halves_batch=True,
            uses=HS,
        ),
        Arm(
            "hsmix_paper",
            "HSMix hard + soft, the paper's protocol (B sources give B hard + B soft samples at every step)",
            _hsmix("both"),
            doubles_batch=True,
            always_mix=True,
            uses=HS,
        ),
        Arm(
            "hsmix_random",
            "HSMix hard or soft (coin flip per batch) from B sources: 'both' without halving the sources",
            _hsmix("random"),
            uses=HS,
        ),
        Arm(
            "grid_hard",
            "hard mixing of the cells of a 7 x 7 grid instead of superpixels (the paper's Table 7)",
            _hsmix("hard", hard_region="grid", grid_size=7),
            uses=HS,
        ),
        Arm(
            "beta_soft",
            "soft mixing with one Beta ratio per image instead of saliency",
            _hsmix("soft", soft_ratio="beta"),
            uses=HS,
        ),
        Arm(
            "pixel_soft",
            "soft mixing with the pixel-wise saliency ratio instead of its superpixel average",
            _hsmix("soft", soft_ratio="pixel"),
            uses=HS,
        ),
    )
}


def get_arm(name: str) -> Arm:
    """The arm called ``name`` (one of :data:`ARMS`)."""
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}; expected one of {list(ARMS)}")
    return ARMS[name]

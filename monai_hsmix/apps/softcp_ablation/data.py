"""BraTS-2015-style cases as 2D slices for the Soft-CP ablation, and the lesion-pasting sampler.

Layout (the subset described in ``../shared/data/README.md``): ``SPLIT/CASE/`` holds one NIfTI file per
channel (default ``Flair_subtrMeanDivStd.nii.gz`` and ``T1c_subtrMeanDivStd.nii.gz``), a brain mask and a
multi-class tumour label whose non-zero voxels form the whole tumour (WT). Training uses the axial slices
that hold brain, resized to the training size; evaluation keeps the stored grid
(:func:`monai_hsmix.apps.ablation.evaluate.evaluate` resizes the logits back).

The sampler pastes a tumour from another training slice into a share of the drawn slices: hard
copy-paste (``mode="hard"``) or Soft-CP (``mode="soft"``), online (a fresh paste every time) or offline
(one paste per slice made before training, used instead of the slice whenever the coin says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from monai_hsmix.apps.ablation.data2d import Volume, _scale_unit
from monai_hsmix.data.io import read_nifti
from monai_hsmix.transforms import RandSoftCopyPaste

__all__ = [
    "brain_slices",
    "Case",
    "DEFAULT_BRAIN",
    "DEFAULT_CHANNELS",
    "DEFAULT_LABEL",
    "LesionPasteSampler",
    "list_cases",
    "load_case",
    "make_paster",
    "SliceData",
]

DEFAULT_CHANNELS = ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz")
DEFAULT_LABEL = "OTMultiClass.nii.gz"
DEFAULT_BRAIN = "brainmask.nii.gz"


@dataclass
class Case:
    """One case at its stored grid: the evaluation volume (WT labels 0/1) and its brain mask ``(X, Y, Z)``."""

    volume: Volume
    brain: torch.Tensor


def list_cases(data_dir: Path, splits: Sequence[str]) -> List[Path]:
    """Case folders of ``data_dir/SPLIT/`` for each split, sorted; a missing or empty split raises."""
    out = []
    for split in splits:
        folder = Path(data_dir) / split
        cases = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        if not cases:
            raise FileNotFoundError(f"no case folders in {folder} (expected {Path(data_dir)}/{split}/CASE/)")
        out += cases
    return out


def load_case(
    folder: Path, channels: Sequence[str] = DEFAULT_CHANNELS, label: str = DEFAULT_LABEL, brain: str = DEFAULT_BRAIN
) -> Case:
    """Read one case: channels scaled to [0, 1] (0.5-99.5 percentiles), WT label, brain mask; shapes checked."""
    arrays = []
    for name in channels:
        array, img = read_nifti(folder / name, "image channel")
        if array.ndim != 3:
            raise ValueError(f"{folder / name}: expected a 3D volume, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{folder / name} contains NaN or infinite values")
        arrays.append(_scale_unit(array.astype(np.float32)))
    shapes = {a.shape for a in arrays}
    lab, _ = read_nifti(folder / label, "label")
    mask, _ = read_nifti(folder / brain, "brain mask")
    if len(shapes) != 1 or lab.shape != arrays[0].shape or mask.shape != arrays[0].shape:
        raise ValueError(
            f"{folder}: channels {sorted(shapes)}, label {lab.shape} and brain mask {mask.shape} must share one shape"
        )
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    wt = torch.from_numpy((np.rint(lab) > 0).astype(np.int64))
    volume = Volume(folder.name, folder.name, torch.from_numpy(np.stack(arrays)), wt, zooms)
    return Case(volume, torch.from_numpy(mask > 0))


@dataclass
class SliceData:
    """Training slices resized to ``size``: images ``(N, C, s, s)``, labels ``(N, 1, s, s)``, brain ``(N, s, s)``."""

    images: torch.Tensor
    labels: torch.Tensor
    brain: torch.Tensor


def brain_slices(cases: Sequence[Case], size: int) -> SliceData:
    """Axial slices holding brain, images resized bilinearly (antialiased), masks by nearest neighbour."""
    images, labels, brains = [], [], []
    for case in cases:
        keep = case.brain.flatten(0, 1).any(0)
        img = case.volume.image[..., keep].permute(3, 0, 1, 2)
        images.append(
            F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
        )
        for src, out in ((case.volume.label, labels), (case.brain, brains)):
            out.append(
                F.interpolate(src[..., keep].permute(2, 0, 1)[:, None].float(), size=(size, size), mode="nearest-exact")
            )
    if not images:
        raise ValueError("no training cases")
    return SliceData(torch.cat(images), torch.cat(labels).long(), torch.cat(brains)[:, 0] > 0)


def make_paster(mode: str, seed: int, alpha: float = 0.7, num_rings: int = 5) -> RandSoftCopyPaste:
    """Whole-tumour paster: the lesion must lie 80% inside the brain and overlap existing tumour by < 10%."""
    paster = RandSoftCopyPaste(label_values=(1,), prob=1.0, mode=mode, alpha=alpha, num_rings=num_rings, s1=0.8, s2=0.1)
    paster.set_random_state(seed=seed)
    return paster


@dataclass
class LesionPasteSampler:
    """Brain slices drawn by the runner's generator; a tumour from another slice pasted into a share of them.

    Parameters
    ----------
    data
        The training slices.
    mode
        ``None`` (no paste), ``"hard"`` or ``"soft"`` blending.
    offline
        Paste once per slice before training (a fixed synthetic twin) instead of at every draw.
    prob
        Share of drawn slices replaced by a pasted one.
    seed
        Seed of the coin, the donor choice and the paster (separate from the slice draw, so slices match
        across arms).
    min_donor_pixels
        Donor slices need at least this many tumour pixels.
    """

    data: SliceData
    mode: Optional[str] = None
    offline: bool = False
    prob: float = 0.5
    seed: int = 0
    min_donor_pixels: int = 10
    alpha: float = 0.7
    num_rings: int = 5
    mix_seconds: float = field(default=0.0, init=False)
    pastes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.RandomState(self.seed)
        self.donors = torch.nonzero(self.data.labels.flatten(1).sum(1) >= self.min_donor_pixels).flatten().tolist()
        if self.mode is not None and not self.donors:
            raise ValueError(f"no training slice has >= {self.min_donor_pixels} tumour pixels to paste from")
        self._paster = make_paster(self.mode, self.seed, self.alpha, self.num_rings) if self.mode else None
        self._twins: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        if self.offline:
            if self._paster is None:
                raise ValueError("offline synthesis needs a mode ('hard' or 'soft')")
            # one synthetic twin per slice, made before training from its own stream
            rng = np.random.RandomState(self.seed + 1_000_003)
            tick = time.perf_counter()
            pairs = [
                self._paste(i, self.donors[rng.randint(len(self.donors))]) for i in range(self.data.images.shape[0])
            ]
            self.offline_seconds = time.perf_counter() - tick
            self._twins = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))

    @property
    def in_channels(self) -> int:
        return int(self.data.images.shape[1])

    @property
    def skipped(self) -> int:
        """Pastes the constraints refused (the slice then goes unchanged); offline: counted while making the twins."""
        return int(self._paster.num_skipped) if self._paster is not None else 0

    def _paste(self, index: int, donor: int) -> Tuple[torch.Tensor, torch.Tensor]:
        d = self.data
        image, label = self._paster(
            d.images[index], d.labels[index, 0], d.images[donor], d.labels[donor, 0], reference=d.brain[index]
        )
        return torch.as_tensor(image), torch.as_tensor(label)[None]

    def draw(self, count: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """``count`` slices ``(count, C, s, s)`` in [0, 1] and WT labels ``(count, 1, s, s)``."""
        idx = torch.randint(self.data.images.shape[0], (count,), generator=generator)
        images, labels = self.data.images[idx].clone(), self.data.labels[idx].clone()
        for k, i in enumerate(idx.tolist()):
            # coin and donor drawn in every arm, so the streams stay aligned across arms
            paste = self._rng.rand() < self.prob
            donor = self.donors[self._rng.randint(len(self.donors))] if self.donors else i
            if self.mode is None or not paste:
                continue
            tick = time.perf_counter()
            if self._twins is not None:
                images[k], labels[k] = self._twins[0][i], self._twins[1][i]
            else:
                images[k], labels[k] = self._paste(i, donor)
            self.mix_seconds += time.perf_counter() - tick
            self.pastes += 1
        return images, labels

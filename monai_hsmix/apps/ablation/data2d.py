"""A Decathlon-layout dataset as 2D slices for the ablation: patient-wise split, resizing, caching.

Volumes are read as ``(X, Y, Z)`` (or ``(X, Y, Z, C)``) NIfTI arrays and cut into ``Z`` in-plane slices.
Every slice is resized to ``size x size`` for training; evaluation keeps the original in-plane grid
(predictions are resized back), so metrics are comparable to the labels as stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from monai.data import load_decathlon_datalist, partition_dataset

from monai_hsmix.data.io import read_nifti

__all__ = [
    "DecathlonSplit",
    "DEFAULT_PATIENT_PATTERN",
    "load_volume",
    "load_volumes",
    "patient_of",
    "SliceSet",
    "split_dataset",
    "to_slices",
    "Volume",
    "volume_slices",
]

DEFAULT_PATIENT_PATTERN = r"(patient\d+)"


@dataclass
class Volume:
    """One labelled volume kept at its stored resolution.

    ``image`` is ``(C, X, Y, Z)`` float32 scaled to [0, 1], ``label`` ``(X, Y, Z)`` int64 class
    indices, ``spacing`` the voxel size from the NIfTI header.
    """

    name: str
    patient: str
    image: torch.Tensor
    label: torch.Tensor
    spacing: Tuple[float, float, float]


@dataclass
class SliceSet:
    """Training slices: ``images`` ``(N, C, size, size)`` float32, ``labels`` ``(N, 1, size, size)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    def draw(self, count: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """``count`` slices drawn uniformly with replacement."""
        idx = torch.randint(self.images.shape[0], (count,), generator=generator)
        return self.images[idx], self.labels[idx]


def _read_pair_list(manifest: Path, section: str) -> List[Tuple[Path, Path]]:
    # MONAI reads the list and resolves its paths against the dataset folder; the checks are ours
    entries = load_decathlon_datalist(
        str(manifest), is_segmentation=True, data_list_key=section, base_dir=str(manifest.parent)
    )
    pairs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise ValueError(
                f"dataset.json '{section}' item {i} must be an object with 'image' and 'label', got {entry!r}"
            )
        if not isinstance(entry["image"], str):
            raise ValueError(
                f"dataset.json '{section}' item {i}: 'image' must be one file path "
                "(multi-file images are not supported)"
            )
        pairs.append((Path(entry["image"]), Path(entry["label"])))
    return pairs


def patient_of(path: Path, pattern: str = DEFAULT_PATIENT_PATTERN) -> str:
    """The patient id in a file name (first group of ``pattern``), else the name without extension."""
    match = re.search(pattern, path.name)
    if match:
        return match.group(1) if match.groups() else match.group(0)
    return path.name.split(".")[0]


@dataclass
class DecathlonSplit:
    """Files grouped by patient: ``train`` and ``val`` map a patient id to its (image, label) pairs."""

    train: Dict[str, List[Tuple[Path, Path]]]
    val: Dict[str, List[Tuple[Path, Path]]]
    num_classes: int
    class_names: List[str]


def _group(pairs: Sequence[Tuple[Path, Path]], pattern: str) -> Dict[str, List[Tuple[Path, Path]]]:
    groups: Dict[str, List[Tuple[Path, Path]]] = {}
    for image, label in pairs:
        groups.setdefault(patient_of(image, pattern), []).append((image, label))
    return groups


def _partition(names: Sequence[str], sizes: Sequence[int], seed: int) -> List[List[str]]:
    """``names`` shuffled with ``seed`` and cut into parts of exactly ``sizes`` (MONAI's ``partition_dataset``)."""
    nonzero = [k for k in sizes if k > 0]
    parts = iter(partition_dataset(list(names), ratios=nonzero, shuffle=True, seed=seed)) if nonzero else iter(())
    out = [next(parts) if k > 0 else [] for k in sizes]
    if [len(p) for p in out] != list(sizes):  # ratios are floats: guard the rounding
        raise RuntimeError(f"partition of {len(names)} patients gave {[len(p) for p in out]}, expected {list(sizes)}")
    return out


def split_dataset(
    data_dir: Path,
    train_patients: Optional[int],
    split_seed: int = 0,
    val_patients: int = 10,
    patient_pattern: str = DEFAULT_PATIENT_PATTERN,
) -> DecathlonSplit:
    """Read ``dataset.json`` and choose training and validation patients.

    Validation uses the file's ``validation`` list when present, else ``val_patients`` patients held
    out of ``training``. ``train_patients`` patients are then drawn (with ``split_seed``) from the rest;
    ``None`` keeps them all. A patient never appears on both sides.
    """
    data_dir = Path(data_dir)
    manifest = data_dir / "dataset.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"no dataset.json in {data_dir} (expected a Decathlon-layout folder)")
    meta = json.loads(manifest.read_text())
    if not meta.get("training"):
        raise ValueError(f"{manifest} has no 'training' list")
    labels = meta.get("labels")
    if not isinstance(labels, dict) or len(labels) < 2:
        raise ValueError(f"{manifest} must map at least two label values to names in 'labels'")
    keys = sorted(int(k) for k in labels)
    if keys != list(range(len(keys))):
        raise ValueError(f"{manifest} 'labels' must be 0..K-1, got {keys}")
    class_names = [str(labels[str(k)]) for k in keys]
    train = _group(_read_pair_list(manifest, "training"), patient_pattern)
    names = sorted(train)
    held = 0
    if meta.get("validation"):
        val = _group(_read_pair_list(manifest, "validation"), patient_pattern)
        shared = sorted(set(train) & set(val))
        if shared:
            raise ValueError(f"patients {shared[:5]} are in both 'training' and 'validation' of {manifest}")
    else:
        if val_patients < 1 or val_patients >= len(names):
            raise ValueError(
                f"val_patients must be in [1, {len(names) - 1}] for {len(names)} training patients, got {val_patients}"
            )
        held = val_patients
    left = len(names) - held
    if train_patients is not None and not 1 <= train_patients <= left:
        raise ValueError(f"train_patients must be in [1, {left}], got {train_patients}")
    drawn = left if train_patients is None else train_patients
    # patients, not volumes, are partitioned: one seeded shuffle gives validation, then training patients
    val_ids, train_ids, _ = _partition(names, [held, drawn, left - drawn], split_seed)
    if held:
        val = {p: train[p] for p in sorted(val_ids)}
    train = {p: train[p] for p in sorted(train_ids)}
    return DecathlonSplit(train=train, val=val, num_classes=len(keys), class_names=class_names)


def _scale_unit(image: np.ndarray) -> np.ndarray:
    # per-volume robust scaling: intensities of a user's data can be in any unit
    lo, hi = np.percentile(image, (0.5, 99.5))
    if hi <= lo:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def load_volume(image_path: Path, label_path: Path, num_classes: int, patient: str) -> Volume:
    """Read one image/label pair; checks shapes and label values."""
    array, img = read_nifti(image_path, "image")  # a truncated file fails here, naming itself
    array = array.astype(np.float32, copy=False)
    if array.ndim == 3:
        array = array[None]
    elif array.ndim == 4:
        array = np.moveaxis(array, -1, 0)
    else:
        raise ValueError(f"{image_path}: expected a 3D volume (X, Y, Z) or (X, Y, Z, C), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{image_path} contains NaN or infinite values")
    label, _ = read_nifti(label_path, "label")
    if label.shape != array.shape[1:]:
        raise ValueError(f"{label_path} has shape {label.shape}, image {image_path.name} has {array.shape[1:]}")
    label_int = np.rint(label).astype(np.int64)
    if label_int.min() < 0 or label_int.max() >= num_classes:
        raise ValueError(f"{label_path} holds values outside [0, {num_classes - 1}]")
    image = np.stack([_scale_unit(c) for c in array])
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return Volume(image_path.name.split(".")[0], patient, torch.from_numpy(image), torch.from_numpy(label_int), zooms)


def load_volumes(groups: Dict[str, List[Tuple[Path, Path]]], num_classes: int) -> List[Volume]:
    """Every volume of every patient in ``groups``, in patient order."""
    return [load_volume(i, l, num_classes, p) for p in sorted(groups) for i, l in groups[p]]


def volume_slices(volume: Volume, size: int) -> torch.Tensor:
    """``(Z, C, size, size)`` resized slices of a volume's image (bilinear, antialiased)."""
    slices = volume.image.permute(3, 0, 1, 2)
    return F.interpolate(slices, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(
        0.0, 1.0
    )


def to_slices(volumes: Sequence[Volume], size: int) -> SliceSet:
    """All slices of ``volumes`` resized to ``size`` (labels with nearest neighbours)."""
    if not volumes:
        raise ValueError("no volumes to slice")
    images = torch.cat([volume_slices(v, size) for v in volumes])
    labels = torch.cat(
        [
            F.interpolate(v.label.permute(2, 0, 1)[:, None].float(), size=(size, size), mode="nearest-exact").long()
            for v in volumes
        ]
    )
    return SliceSet(images, labels)

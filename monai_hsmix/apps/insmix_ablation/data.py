"""MoNuSeg-style tiles with instance maps: crops that InsMix augments, and instance-level evaluation.

Layout: ``images/NAME.tif`` (or ``.tiff``, ``.png``) with ``instances/NAME.png`` (one integer id per
nucleus, 0 background). Only images that have an instance map are used.

Training crops are cut at the stored resolution; the arm's InsMix (if any) pastes into the crop's
instance map, then the map becomes the three-class target (background / interior / boundary). The crop
positions come from the runner's generator and the pasting from a separate seeded stream, so every arm
of a seed sees the same crops before mixing. Evaluation predicts each held-out tile whole with MONAI's
sliding window, turns the softmax into instances (:func:`~monai_hsmix.metrics.instances_from_probabilities`)
and scores them against the reference map (AJI, object Dice, pixel DSC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from monai_hsmix.apps.ablation.image_folder import IMAGE_SUFFIXES
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.metrics import instances_from_probabilities, instances_to_three_class, score_instances
from monai_hsmix.optional import require
from monai_hsmix.transforms import RandInsMix

__all__ = ["evaluate_instances", "find_instance_pairs", "insmix_transform", "InstanceCropSampler", "read_instance_pair"]

Image = require("PIL.Image")


def find_instance_pairs(root: Path) -> Dict[str, Tuple[Path, Path]]:
    """``{name: (image, instance map)}`` for every ``instances/NAME.png`` with an image ``images/NAME.*``."""
    root = Path(root)
    if not (root / "images").is_dir() or not (root / "instances").is_dir():
        raise FileNotFoundError(f"{root} needs images/ and instances/ folders (instance maps: one id per nucleus)")
    pairs, missing = {}, []
    for inst in sorted((root / "instances").glob("*.png")):
        image = next(
            (
                root / "images" / f"{inst.stem}{s}"
                for s in IMAGE_SUFFIXES
                if (root / "images" / f"{inst.stem}{s}").is_file()
            ),
            None,
        )
        if image is None:
            missing.append(inst.stem)
        else:
            pairs[inst.stem] = (image, inst)
    if missing:
        raise FileNotFoundError(f"instance maps without an image in {root / 'images'}: {missing[:5]}")
    if not pairs:
        raise FileNotFoundError(f"no instance maps (*.png) in {root / 'instances'}")
    return pairs


def read_instance_pair(image_path: Path, instance_path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """``(3, H, W)`` uint8 RGB image and ``(H, W)`` int32 instance map, checked against each other."""
    with Image.open(image_path) as im:
        image = np.asarray(im.convert("RGB"))
    with Image.open(instance_path) as im:
        inst = np.asarray(im)
    if inst.ndim != 2 or inst.shape != image.shape[:2]:
        raise ValueError(f"{instance_path} has shape {inst.shape}, image {image_path.name} has {image.shape[:2]}")
    if not np.issubdtype(inst.dtype, np.integer):
        raise ValueError(f"{instance_path}: expected integer instance ids, got {inst.dtype}")
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)), inst.astype(np.int32)


def insmix_transform(variant: str, crop_size: int, max_paste_ratio: float, seed: int) -> Optional[RandInsMix]:
    """The InsMix of an arm: ``"plain"`` (no constraints), ``"ssd"``, ``"ssd_bg"`` (+ background shuffle);
    None for no paste."""
    if variant == "none":
        return None
    if variant == "plain":
        # no scale/shape test (rho 2 is the largest the shape factor can be), anywhere in the crop, touching allowed
        constraints = SSDConstraints(epsilon=1e9, rho=2.0, delta=0.0, gamma=float(crop_size), allow_touching=True)
    elif variant in ("ssd", "ssd_bg"):
        constraints = SSDConstraints()
    else:
        raise ValueError(f"unknown InsMix variant {variant!r}; expected none, plain, ssd or ssd_bg")
    mixer = RandInsMix(
        prob=1.0,
        constraints=constraints,
        max_paste_ratio=max_paste_ratio,
        shuffle_prob=1.0 if variant == "ssd_bg" else 0.0,
        allow_empty=True,
    )
    mixer.set_random_state(seed=seed)
    return mixer


@dataclass
class InstanceCropSampler:
    """Random crops of instance-annotated tiles as three-class targets, with InsMix on a share of them.

    Parameters
    ----------
    images, instances
        ``(3, H, W)`` uint8 tiles and their ``(H, W)`` instance maps.
    size
        Crop side in pixels (stored resolution).
    insmix
        The arm's :class:`RandInsMix` (None: no paste); each crop is pasted into with ``prob``.
    seed
        Seed of the paste coin (separate from the crop positions, so crops match across arms).
    colour_jitter
        Per-sample, per-channel multiplicative jitter ``U(1 - j, 1 + j)`` drawn from the runner's
        generator (identical in every arm).
    """

    images: List[np.ndarray]
    instances: List[np.ndarray]
    size: int
    insmix: Optional[RandInsMix] = None
    prob: float = 0.5
    seed: int = 0
    boundary_width: int = 1
    colour_jitter: float = 0.1
    mix_seconds: float = field(default=0.0, init=False)
    pastes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        small = [i.shape[1:] for i in self.images if min(i.shape[1:]) < self.size]
        if small:
            raise ValueError(f"crop size {self.size} is larger than images of shape {small[:3]}")
        self._coin = np.random.RandomState(self.seed)

    @property
    def in_channels(self) -> int:
        return int(self.images[0].shape[0])

    def draw(self, count: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """``count`` crops: float images in ``[0, 1]`` ``(count, 3, s, s)`` and three-class labels
        ``(count, 1, s, s)``."""
        which = torch.randint(len(self.images), (count,), generator=generator).tolist()
        jitter = 1.0 + self.colour_jitter * (2 * torch.rand(count, self.in_channels, 1, 1, generator=generator) - 1)
        crops, targets = [], []
        for i in which:
            height, width = self.images[i].shape[1:]
            y = int(torch.randint(height - self.size + 1, (1,), generator=generator))
            x = int(torch.randint(width - self.size + 1, (1,), generator=generator))
            crop = self.images[i][:, y : y + self.size, x : x + self.size]
            inst = self.instances[i][y : y + self.size, x : x + self.size]
            # the coin is drawn for every crop in every arm, so the paste streams stay aligned across arms
            paste = self._coin.rand() < self.prob
            if self.insmix is not None and paste:
                tick = time.perf_counter()
                crop, inst, _ = self.insmix(crop, inst)
                self.mix_seconds += time.perf_counter() - tick
                self.pastes += 1
            crops.append(torch.from_numpy(np.ascontiguousarray(crop)))
            targets.append(torch.from_numpy(instances_to_three_class(inst, self.boundary_width).astype(np.int64)))
        images = torch.stack(crops).float().div_(255.0).mul_(jitter).clamp_(0.0, 1.0)
        return images, torch.stack(targets)[:, None]


@torch.no_grad()
def evaluate_instances(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    instances: Sequence[np.ndarray],
    names: Sequence[str],
    roi: int,
    min_seed_size: int = 4,
    min_size: int = 10,
) -> List[Dict[str, object]]:
    """Per-tile AJI, object Dice and pixel DSC of sliding-window predictions (window ``roi``, overlap 0.25,
    Gaussian)."""
    was_training = model.training
    model.eval()
    try:
        rows = []
        for name, image, inst in zip(names, images, instances):
            x = torch.from_numpy(image)[None].float().div(255.0)
            logits = sliding_window_inference(x, (roi, roi), 16, model, overlap=0.25, mode="gaussian")
            probs = torch.softmax(torch.as_tensor(logits), 1)[0]
            pred = instances_from_probabilities(probs, min_seed_size=min_seed_size, min_size=min_size)
            rows.append({"volume": name, "patient": name, **score_instances(inst, pred).as_dict()})
        return rows
    finally:
        model.train(was_training)

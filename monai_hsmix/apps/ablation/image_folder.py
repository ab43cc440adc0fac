"""A folder of large 2D images with masks (e.g. MoNuSeg) for the ablation: k-fold splits by image (or a
fixed test folder), random training crops at the stored resolution and sliding-window evaluation of
whole images, or whole images resized to one size for both (the paper's protocol).

Layout: ``images/NAME.tif`` (or ``.tiff``, ``.png``) and ``masks/NAME.png`` with class indices
(``0/1`` for a binary task). Images are read at their stored depth with OpenCV (which decodes the
LZW-compressed TIFFs of MoNuSeg): 8-bit and 16-bit pixels are scaled to ``[0, 1]`` by their type's
range, float pixels must already be in it. Masks are read with Pillow (palette PNGs keep their indices).

Crops keep the stored resolution, because resizing a 1000 x 1000 H&E tile to a CPU-sized input would
shrink nuclei to a few pixels; the network then predicts whole images window by window with MONAI's
``sliding_window_inference`` at the crop size (the size the network's instance norm saw in training).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from monai.inferers import sliding_window_inference

from monai_hsmix.apps.ablation.evaluate import score_volume
from monai_hsmix.optional import require

__all__ = [
    "CropSampler",
    "evaluate_images",
    "find_pairs",
    "IMAGE_SUFFIXES",
    "is_image_folder",
    "kfold_by_image",
    "read_image",
    "read_pair",
    "resize_pair",
    "unit_float",
]

Image = require("PIL.Image")

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def is_image_folder(root: Path) -> bool:
    """Whether ``root`` has the ``images/`` + ``masks/`` layout."""
    return (Path(root) / "images").is_dir() and (Path(root) / "masks").is_dir()


def find_pairs(root: Path) -> Dict[str, Tuple[Path, Path]]:
    """``{name: (image, mask)}`` for every image of ``root/images`` (each must have ``masks/NAME.png``)."""
    root = Path(root)
    if not is_image_folder(root):
        raise FileNotFoundError(f"{root} has no images/ and masks/ folders")
    images = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {root / 'images'}")
    pairs, missing = {}, []
    for image in images:
        mask = root / "masks" / f"{image.stem}.png"
        if mask.is_file():
            pairs[image.stem] = (image, mask)
        else:
            missing.append(mask.name)
    if missing:
        raise FileNotFoundError(f"images without a mask in {root / 'masks'}: {missing[:5]}")
    return pairs


def _unreadable(path: Path, reason: object) -> ValueError:
    return ValueError(f"{path}: cannot read this image ({reason}); replace or remove {path}")


def read_image(path: Path) -> np.ndarray:
    """``(C, H, W)`` image at its stored bit depth: uint8 as stored, anything deeper as float32 in ``[0, 1]``.

    OpenCV decodes at the stored depth (Pillow's ``convert('RGB')`` would clip 16-bit and float pixels to
    8 bits); 16-bit integers are divided by 65535, float images must already lie in ``[0, 1]``. An alpha
    channel is dropped. A file OpenCV cannot decode is opened with Pillow only to name the reason.
    """
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        try:
            with Image.open(path) as im:
                im.load()
            reason = "OpenCV cannot decode it"
        except Exception as err:  # noqa: BLE001 - any decoder error becomes the reason shown to the user
            reason = f"{type(err).__name__}: {err}"
        raise _unreadable(path, reason)
    if image.ndim == 3:
        if image.shape[2] not in (1, 2, 3, 4):
            raise ValueError(
                f"{path}: expected 1-4 channels (grey, grey+alpha, RGB, RGBA), got {image.shape[2]} in {path}"
            )
        image = image[..., :1] if image.shape[2] <= 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
        image = np.moveaxis(image, -1, 0)
    else:
        image = image[None]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    if image.dtype in (np.float32, np.float64):
        lo, hi = float(np.min(image)), float(np.max(image))
        if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 <= lo and hi <= 1.0):
            raise ValueError(f"{path}: float pixels must lie in [0, 1], found [{lo:g}, {hi:g}]; rescale {path}")
        return image.astype(np.float32)
    raise ValueError(f"{path}: {image.dtype} pixels are not supported (use 8-bit, 16-bit or float in [0, 1]): {path}")


def unit_float(image: torch.Tensor) -> torch.Tensor:
    """Float pixels in ``[0, 1]`` from what :func:`read_image` keeps (uint8, or float already in range)."""
    return image.float().div_(255.0) if image.dtype == torch.uint8 else image.float()


def read_pair(image_path: Path, mask_path: Path, num_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(C, H, W)`` image (see :func:`read_image`) and ``(1, H, W)`` uint8 class indices, checked together."""
    image = read_image(image_path)
    try:
        with Image.open(mask_path) as im:
            mask = np.asarray(im)
    except Exception as err:  # noqa: BLE001 - truncated or foreign files: name the file, not a decoder internals
        raise _unreadable(Path(mask_path), f"{type(err).__name__}: {err}") from err
    if mask.ndim != 2 or mask.shape != image.shape[1:]:
        raise ValueError(f"{mask_path} has shape {mask.shape}, image {image_path.name} has {image.shape[1:]}")
    if mask.dtype.kind not in "biu" or mask.min() < 0:
        raise ValueError(f"{mask_path} must hold non-negative integer class indices, got {mask.dtype}")
    if mask.max() >= num_classes:
        raise ValueError(f"{mask_path} holds values up to {int(mask.max())}, outside [0, {num_classes - 1}]")
    return torch.from_numpy(image), torch.from_numpy(mask.astype(np.uint8)[None])


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The whole image resized to ``size x size`` (bilinear with antialiasing, float in ``[0, 1]``) and its
    mask (nearest neighbour, so classes stay classes), as the paper's 224 x 224 MoNuSeg protocol trains and tests."""
    if size < 1:
        raise ValueError(f"resize must be >= 1, got {size}")
    resized = torch.nn.functional.interpolate(
        unit_float(image[None]), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )[0].clamp_(0.0, 1.0)
    labels = torch.nn.functional.interpolate(mask[None].float(), size=(size, size), mode="nearest-exact")[0]
    return resized, labels.to(mask.dtype)


def kfold_by_image(names: Sequence[str], folds: int, seed: int) -> List[Tuple[List[str], List[str]]]:
    """``folds`` (train, test) splits of whole images: every image is tested exactly once.

    The images are shuffled with ``seed`` and cut into ``folds`` near-equal parts.
    """
    names = sorted(names)
    if not 2 <= folds <= len(names):
        raise ValueError(f"folds must be in [2, {len(names)}] for {len(names)} images, got {folds}")
    order = np.random.RandomState(seed).permutation(len(names))
    parts = [sorted(names[i] for i in part) for part in np.array_split(order, folds)]
    return [(sorted(n for n in names if n not in set(test)), test) for test in parts]


@dataclass
class CropSampler:
    """Random ``size x size`` crops of whole training images (uniform image, then uniform position)."""

    images: List[torch.Tensor]
    labels: List[torch.Tensor]
    size: int

    def __post_init__(self) -> None:
        small = [tuple(i.shape[1:]) for i in self.images if min(i.shape[1:]) < self.size]
        if small:
            raise ValueError(f"crop size {self.size} is larger than images of shape {small[:3]}")

    @property
    def in_channels(self) -> int:
        return int(self.images[0].shape[0])

    def draw(self, count: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """``count`` crops: float images in ``[0, 1]`` and int64 labels."""
        which = torch.randint(len(self.images), (count,), generator=generator).tolist()
        crops, masks = [], []
        for i in which:
            height, width = self.images[i].shape[1:]
            y = int(torch.randint(height - self.size + 1, (1,), generator=generator))
            x = int(torch.randint(width - self.size + 1, (1,), generator=generator))
            crops.append(self.images[i][:, y : y + self.size, x : x + self.size])
            masks.append(self.labels[i][:, y : y + self.size, x : x + self.size])
        return unit_float(torch.stack(crops)), torch.stack(masks).long()


@torch.no_grad()
def evaluate_images(
    model: torch.nn.Module,
    images: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    names: Sequence[str],
    roi: int,
    num_classes: int,
) -> List[Dict[str, object]]:
    """Per-image scores (``score_volume``) of sliding-window predictions at window size ``roi``.

    Windows overlap by a quarter and are blended with Gaussian weights (MONAI's defaults for
    patch-trained networks); distances are in pixels.
    """
    was_training = model.training
    model.eval()
    try:
        rows = []
        for name, image, label in zip(names, images, labels):
            logits = sliding_window_inference(
                unit_float(image[None]), (roi, roi), 16, model, overlap=0.25, mode="gaussian"
            )
            pred = torch.as_tensor(logits).argmax(1)[0]
            rows.append(
                {"volume": name, "patient": name, **score_volume(pred, label[0].long(), num_classes, (1.0, 1.0))}
            )
        return rows
    finally:
        model.train(was_training)

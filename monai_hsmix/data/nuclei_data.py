"""Nuclei images for tests, previews and Smooth-GAN training: synthetic H&E-like tiles and MoNuSeg files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple, Union

import numpy as np
from scipy import ndimage

from monai_hsmix.core.instance_bank import to_instance_labels
from monai_hsmix.optional import require

__all__ = ["synthetic_nuclei", "read_monuseg_pair", "list_monuseg_pairs"]


def synthetic_nuclei(
    size: int = 128, n_nuclei: int = 20, channels: int = 3, seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """A pink, textured tile with dark purple elliptical nuclei that do not touch.

    Returns
    -------
    image
        (channels, size, size) uint8; with one channel, a grey-level version.
    instances
        (size, size) int32 instance map, ids 1..n (fewer when no free room was found).
    """
    if size < 16 or n_nuclei < 0 or channels not in (1, 3):
        raise ValueError(f"need size >= 16, n_nuclei >= 0 and channels in (1, 3); got {size}, {n_nuclei}, {channels}")
    rng = np.random.RandomState(seed)
    instances = np.zeros((size, size), dtype=np.int32)
    blocked = np.zeros((size, size), dtype=bool)
    next_id = 1
    for _ in range(n_nuclei * 20):
        if next_id > n_nuclei:
            break
        a, b = rng.uniform(3.0, 7.0), rng.uniform(2.5, 5.0)
        cr, cc = rng.uniform(a + 2, size - a - 2, size=2)
        theta = rng.uniform(0, np.pi)
        # draw the ellipse in a local window (+3 px margin for the no-touch ring)
        r0, c0 = int(max(cr - a - 4, 0)), int(max(cc - a - 4, 0))
        r1, c1 = int(min(cr + a + 5, size)), int(min(cc + a + 5, size))
        dr, dc = np.mgrid[r0:r1, c0:c1] - np.array([cr, cc])[:, None, None]
        u = dr * np.cos(theta) + dc * np.sin(theta)
        v = -dr * np.sin(theta) + dc * np.cos(theta)
        mask = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        window = (slice(r0, r1), slice(c0, c1))
        if mask.sum() < 10 or np.any(mask & blocked[window]):
            continue
        instances[window][mask] = next_id
        blocked[window] |= ndimage.binary_dilation(mask, iterations=3)
        next_id += 1
    stroma = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 2.0)
    stroma = (stroma - stroma.min()) / (np.ptp(stroma) + 1e-8)
    background = np.array([235.0, 170.0, 200.0])[:, None, None] - 40.0 * stroma[None]
    chromatin = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 0.8)
    nucleus = np.array([95.0, 60.0, 145.0])[:, None, None] + 25.0 * chromatin[None]
    rgb = np.where(instances[None] > 0, nucleus, background) + rng.normal(0, 4, (3, size, size))
    image = np.clip(rgb, 0, 255)
    if channels == 1:
        image = image.mean(axis=0, keepdims=True)
    return image.astype(np.uint8), instances


PathLike = Union[str, Path]


def read_monuseg_pair(image_path: PathLike, mask_path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """Read a MoNuSeg RGB tile and its binary mask.

    Returns ``(image (3, H, W) uint8, instances (H, W) int32)``, instances from 8-connected components.
    The LZW tifs are read with Pillow (tifffile needs the optional ``imagecodecs`` for LZW).
    """
    Image = require("PIL.Image")

    with Image.open(image_path) as im:
        image = np.asarray(im.convert("RGB")).transpose(2, 0, 1).copy()
    with Image.open(mask_path) as im:
        mask = np.asarray(im)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if image.shape[1:] != mask.shape:
        raise ValueError(f"{image_path} is {image.shape[1:]} but {mask_path} is {mask.shape}")
    return image, to_instance_labels(mask > 0, name=str(mask_path))


def list_monuseg_pairs(root: PathLike) -> List[Tuple[Path, Path]]:
    """``(image, mask)`` paths under ``root/images/*.tif`` and ``root/masks/<same stem>.png``."""
    root = Path(root)
    pairs = []
    for image_path in sorted((root / "images").glob("*.tif")):
        mask_path = root / "masks" / f"{image_path.stem}.png"
        if mask_path.is_file():
            pairs.append((image_path, mask_path))
    if not pairs:
        raise FileNotFoundError(f"no images/*.tif with a matching masks/*.png under {root}")
    return pairs

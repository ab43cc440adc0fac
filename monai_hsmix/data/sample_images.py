"""Deterministic synthetic images for previews, docs and tests (no data files needed).

The phantom imitates a short-axis cardiac cine-MRI slice with the ACDC classes (0 background,
1 right ventricle, 2 myocardium, 3 left ventricle): a bright left-ventricle blood pool inside a
darker myocardial ring, a crescent right ventricle beside it, textured surroundings, smooth bias field
and Rician-like noise, so that superpixels and saliency have real structure to follow.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["cardiac_batch", "CARDIAC_CLASSES", "cardiac_phantom", "cardiac_volume"]

CARDIAC_CLASSES = ("background", "right ventricle", "myocardium", "left ventricle")


def cardiac_phantom(size: int = 128, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """One synthetic cardiac slice.

    Parameters
    ----------
    size : int
        Side of the square image in pixels (at least 16).
    seed : int
        Seed of the phantom's geometry, texture and noise.

    Returns
    -------
    image : numpy.ndarray
        ``(1, size, size)`` float32 in ``[0, 1]``.
    label : numpy.ndarray
        ``(1, size, size)`` int64 class indices in ``0..3``.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    cy, cx = 0.5 + rng.uniform(-0.06, 0.06, size=2)
    r_lv = rng.uniform(0.10, 0.15)
    wall = rng.uniform(0.04, 0.06)
    stretch = rng.uniform(0.85, 1.15)
    dist = np.sqrt(((yy - cy) * stretch) ** 2 + ((xx - cx) / stretch) ** 2)
    angle = rng.uniform(0, 2 * np.pi)
    ry, rx = cy + np.sin(angle) * (r_lv + wall + 0.07), cx + np.cos(angle) * (r_lv + wall + 0.07)
    dist_rv = np.sqrt((yy - ry) ** 2 + ((xx - rx) * 0.8) ** 2)
    label = np.zeros((size, size), dtype=np.int64)
    label[(dist_rv < r_lv * 1.05) & (dist > r_lv + wall)] = 1
    label[(dist >= r_lv) & (dist < r_lv + wall)] = 2
    label[dist < r_lv] = 3
    body = np.sqrt(((yy - 0.5) / 0.46) ** 2 + ((xx - 0.5) / 0.40) ** 2) < 1.0
    texture = sum(
        rng.uniform(0.02, 0.06) * np.sin(2 * np.pi * (f * xx * np.cos(t) + f * yy * np.sin(t)) + rng.uniform(0, 6.3))
        for f, t in zip(rng.uniform(3, 9, size=5), rng.uniform(0, np.pi, size=5))
    )
    image = np.where(body, 0.35 + texture, 0.02)
    image = np.where(label == 1, 0.80, image)
    image = np.where(label == 2, 0.25, image)
    image = np.where(label == 3, 0.90, image)
    bias = 1.0 + 0.15 * np.sin(np.pi * (yy * rng.uniform(0.5, 1.5) + xx * rng.uniform(0.5, 1.5)))
    noise = rng.normal(0, 0.03, size=(2, size, size))
    image = np.sqrt((image * bias + noise[0]) ** 2 + noise[1] ** 2)
    image = (image - image.min()) / (image.max() - image.min())
    return image[None].astype(np.float32), label[None]


def cardiac_batch(batch_size: int = 4, size: int = 128, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``batch_size`` different phantoms stacked as ``(B, 1, size, size)`` images and labels."""
    pairs = [cardiac_phantom(size, seed + i) for i in range(batch_size)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def cardiac_volume(size: int = 64, depth: int = 16, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A ``(1, size, size, depth)`` phantom volume whose slices change smoothly along the last axis."""
    img, lab = cardiac_phantom(size, seed)
    images, labels = [], []
    for z in range(depth):
        # shrink the heart towards the apex so the volume has 3D structure
        scale = 1.0 - 0.5 * z / max(depth - 1, 1)
        yy, xx = np.mgrid[0:size, 0:size]
        cy = cx = (size - 1) / 2
        sy = np.clip(np.round(cy + (yy - cy) / scale), 0, size - 1).astype(int)
        sx = np.clip(np.round(cx + (xx - cx) / scale), 0, size - 1).astype(int)
        images.append(img[0][sy, sx])
        labels.append(lab[0][sy, sx])
    return np.stack(images, -1)[None].astype(np.float32), np.stack(labels, -1)[None]

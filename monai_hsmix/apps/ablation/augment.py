"""The basic augmentation every arm shares: random flips and in-plane rotation, batched on tensors."""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ["flip_rotate"]


def flip_rotate(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    max_degrees: float = 20.0,
    flip_prob: float = 0.5,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flip each sample along each axis with ``flip_prob`` and rotate it by ``U(-max_degrees, max_degrees)``.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` float images, resampled bilinearly (zeros outside).
    labels : torch.Tensor
        ``(B, 1, H, W)`` class indices, resampled with nearest neighbours (background outside).
    generator : torch.Generator
        Source of every random draw, so that a run is reproducible.
    """
    if images.ndim != 4 or labels.shape != (images.shape[0], 1) + tuple(images.shape[2:]):
        raise ValueError(
            f"expected images (B, C, H, W) and labels (B, 1, H, W), got {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    bsz = images.shape[0]
    angles = (torch.rand(bsz, generator=generator) * 2 - 1) * math.radians(max_degrees)
    flips = torch.where(torch.rand(bsz, 2, generator=generator) < flip_prob, -1.0, 1.0)
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(bsz, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flips[:, 0], -sin * flips[:, 1]
    theta[:, 1, 0], theta[:, 1, 1] = sin * flips[:, 0], cos * flips[:, 1]
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    out_images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_labels = F.grid_sample(labels.to(images.dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out_images, out_labels.round().long()

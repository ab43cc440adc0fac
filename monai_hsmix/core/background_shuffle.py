"""InsMix background perturbation: swap a fraction of the nucleus-free patches of an image.

The image is cut into a grid of ``patch_size`` squares (a remainder strip at the bottom/right is left
as it is). Of the squares that contain no foreground pixel, ``round(fraction * n)`` are chosen at random
and their contents are permuted cyclically, so every chosen square receives another chosen square's
pixels. Squares touching a nucleus are never read or written, so nuclei and labels are untouched.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

__all__ = ["shuffle_background_patches"]


def shuffle_background_patches(
    image: torch.Tensor,
    foreground: torch.Tensor,
    patch_size: int = 20,
    fraction: float = 0.2,
    rng: Optional[np.random.RandomState] = None,
) -> torch.Tensor:
    """Return a copy of ``image`` with a fraction of its background patches shuffled.

    Parameters
    ----------
    image
        (C, H, W) tensor.
    foreground
        (H, W) tensor, nonzero on nuclei.
    patch_size
        Side of the square patches (the paper's 20 by default).
    fraction
        Share of the nucleus-free patches that take part in the shuffle (the paper's alpha, 0.2).
    rng
        Source of randomness (``numpy.random.RandomState``); a fresh unseeded one when None.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"image must be a (C, H, W) torch tensor, got {getattr(image, 'shape', type(image))}")
    if not isinstance(foreground, torch.Tensor) or tuple(foreground.shape) != tuple(image.shape[1:]):
        raise ValueError(
            f"foreground must be a tensor of shape {tuple(image.shape[1:])}, "
            f"got {getattr(foreground, 'shape', type(foreground))}"
        )
    if int(patch_size) != patch_size or patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer, got {patch_size}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    rng = rng if rng is not None else np.random.RandomState()
    p = int(patch_size)
    channels, height, width = image.shape
    nh, nw = height // p, width // p
    out = image.clone()
    if nh * nw == 0:
        return out
    region = image[:, : nh * p, : nw * p]
    patches = region.reshape(channels, nh, p, nw, p).permute(1, 3, 0, 2, 4).reshape(nh * nw, channels, p, p)
    has_fg = foreground[: nh * p, : nw * p].reshape(nh, p, nw, p).bool().any(dim=3).any(dim=1).reshape(-1)
    background = torch.nonzero(~has_fg).flatten()
    k = int(round(fraction * background.numel()))
    if k < 2:
        return out
    picks = rng.choice(background.numel(), size=k, replace=False)
    chosen = background[torch.as_tensor(picks, device=background.device)]
    shuffled = patches.clone()
    shuffled[chosen] = patches[chosen.roll(1)]
    tiles = shuffled.reshape(nh, nw, channels, p, p).permute(2, 0, 3, 1, 4)
    out[:, : nh * p, : nw * p] = tiles.reshape(channels, nh * p, nw * p)
    return out

"""Segmentation networks used by the HSMix pipelines, and soft-label losses for mixed targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from .losses import SoftDiceBCELoss, SoftDiceCELoss
from .transunet import PretrainedReport, TransUNet

__all__ = ["get_network", "NETWORKS", "TransUNet", "PretrainedReport", "SoftDiceCELoss", "SoftDiceBCELoss"]

NETWORKS = ("unet", "swinunetr", "transunet")


def _sides(img_size: int | Sequence[int]) -> tuple[int, ...]:
    sides = (img_size, img_size) if isinstance(img_size, (int, np.integer)) else tuple(img_size)
    if len(sides) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sides):
        raise ValueError(f"get_network: img_size must be a positive int or two positive ints (2D), got {img_size!r}")
    return tuple(int(s) for s in sides)


def _require_divisible(name: str, sides: tuple[int, ...], divisor: int, why: str) -> None:
    if any(s % divisor for s in sides):
        raise ValueError(f"get_network({name!r}): img_size {sides} must be divisible by {divisor} ({why})")


def get_network(
    name: str, in_channels: int, out_channels: int, img_size: int | Sequence[int] = 224, **kwargs: Any
) -> nn.Module:
    """Build a 2D segmentation network by name.

    Parameters
    ----------
    name : {"unet", "swinunetr", "transunet"}
        Case-insensitive.
    in_channels, out_channels : int
        Input channels and output logit channels.
    img_size : int or (int, int)
        Training patch size. Checked against each network's constraint here, so that a bundle with a
        bad size fails when it is built, not at the first batch: UNet needs sides divisible by the
        product of its strides, SwinUNETR by ``patch_size ** 5`` (32 by default; at least twice that
        with its default instance norm, which fails on the 1x1 bottleneck of a 32x32 input), TransUNet by 16
        (and it only accepts that size at run time, because of its position embeddings).
    **kwargs
        Passed to the network, overriding the defaults:

        - ``"unet"``: MONAI ``UNet(spatial_dims=2, channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2),
          num_res_units=2)``;
        - ``"swinunetr"``: MONAI ``SwinUNETR(spatial_dims=2)`` (MONAI 1.6 has no ``img_size`` argument;
          ``feature_size`` must be divisible by 12);
        - ``"transunet"``: :class:`TransUNet` (R50-ViT-B/16 defaults; ``pretrained_path`` for local weights).

    Returns
    -------
    torch.nn.Module
    """
    from monai.networks.nets import SwinUNETR, UNet

    key = str(name).lower()
    sides = _sides(img_size)
    if key == "unet":
        options: dict[str, Any] = dict(channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2), num_res_units=2)
        options.update(kwargs)
        divisor = int(np.prod(options["strides"]))
        _require_divisible(key, sides, divisor, "the product of the UNet strides")
        return UNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, **options)
    if key == "swinunetr":
        if "spatial_dims" in kwargs:
            raise ValueError("get_network('swinunetr'): spatial_dims is always 2 here (2D pipelines)")
        patch_size = int(kwargs.get("patch_size", 2))
        _require_divisible(key, sides, patch_size**5, "five patch merges of the Swin encoder")
        norm = kwargs.get("norm_name", "instance")
        if str(norm[0] if isinstance(norm, tuple) else norm).lower() == "instance" and min(sides) < 2 * patch_size**5:
            raise ValueError(
                f"get_network('swinunetr'): img_size {sides} must be at least {2 * patch_size**5} per side with "
                f"instance norm (the bottleneck would be 1x1, where instance norm fails)"
            )
        return SwinUNETR(in_channels=in_channels, out_channels=out_channels, spatial_dims=2, **kwargs)
    if key == "transunet":
        return TransUNet(in_channels, out_channels, img_size=sides, **kwargs)
    raise ValueError(f"get_network: unknown network {name!r}; choose one of {NETWORKS}")

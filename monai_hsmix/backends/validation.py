"""The one check of an image batch, shared by the transforms and the public backend functions.

Public entry points (:class:`~monai_hsmix.transforms.RandHSMix`, ``torch_slic``,
``torch_fine_grained_saliency``, the reference backends) call :func:`check_image_batch` once; a
transform then calls its backend with ``validate=False``, so a batch is not checked twice.
"""

from __future__ import annotations

import torch

from monai_hsmix.backends.intensity import all_finite

__all__ = ["ImageDtypeError", "check_image_batch"]


class ImageDtypeError(TypeError, ValueError):
    """A batch of bool or complex images. Both a ``TypeError`` (what the backends raised) and a
    ``ValueError`` (what the transforms raised), so code that caught either keeps working."""


def check_image_batch(images: torch.Tensor, name: str = "images", allow_empty_batch: bool = False) -> None:
    """Raise an error saying what is wrong unless ``images`` is a batch that can be mixed.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` real tensor with finite values.
    name : str
        How the messages call the batch (the argument or dictionary key it came from).
    allow_empty_batch : bool
        Accept ``B = 0`` (the backends return an empty result); channels and spatial axes must
        never be empty.

    Raises
    ------
    TypeError
        When ``images`` is not a tensor; :class:`ImageDtypeError` (a ``TypeError`` and a
        ``ValueError``) for bool or complex values.
    ValueError
        For another number of dimensions, an empty dimension, or NaN or infinite values.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim not in (4, 5):
        raise ValueError(f"{name} must be a batch (B, C, H, W) or (B, C, H, W, D), got shape {tuple(images.shape)}")
    if (images.shape[0] == 0 and not allow_empty_batch) or any(s == 0 for s in images.shape[1:]):
        raise ValueError(f"{name} has an empty dimension (it needs a channel and a voxel): {tuple(images.shape)}")
    if images.dtype == torch.bool or images.is_complex():
        raise ImageDtypeError(f"{name} must hold real numbers, got {images.dtype}")
    if not all_finite(images):
        raise ValueError(f"{name} contains NaN or infinite values")

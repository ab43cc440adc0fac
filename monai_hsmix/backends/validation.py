"""The one place where the arguments shared by the transforms and the backends are checked.

Public entry points (:class:`~monai_hsmix.transforms.RandHSMix`, ``torch_slic``,
``torch_fine_grained_saliency``, the reference backends) call :func:`check_image_batch` once; a
transform then calls its backend with ``validate=False``, so a batch is not checked twice. The
settings a transform and a backend (or :func:`~monai_hsmix.core.grid_cells`) both take are checked
by :func:`check_compactness`, :func:`check_spacing` and :func:`check_grid_size`, so both give the
same message.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from monai_hsmix.backends.intensity import finite_magnitude

__all__ = [
    "ImageDtypeError",
    "check_compactness",
    "check_grid_size",
    "check_image_batch",
    "check_slic_scales",
    "check_spacing",
]

#: The largest squared norm SLIC's features (colour / compactness, scaled position) may reach. Both
#: engines compute distances in float32 (largest value 3.4e38), the torch engine as ``|x|^2 - 2 x.c +
#: |c|^2`` with 1e30 added for missing centres: features up to 1e12 keep every distance and sum finite
#: and every real centre nearer than a missing one.
MAX_SLIC_FEATURE_NORM2 = 1e24
#: The largest squared CIELAB colour of an sRGB colour in [0, 1] (L <= 100, |a| < 99, |b| < 108),
#: rounded up.
_LAB_NORM2 = 3.2e4


class ImageDtypeError(TypeError, ValueError):
    """A batch of bool or complex images. Both a ``TypeError`` (what the backends raised) and a
    ``ValueError`` (what the transforms raised), so code that caught either keeps working."""


def check_image_batch(images: torch.Tensor, name: str = "images", allow_empty_batch: bool = False) -> float:
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

    Returns
    -------
    float
        The largest absolute value of a floating batch, found by the same pass as the finiteness
        check (callers that blend images use it to avoid overflow); 0 for an integer batch.

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
    if not images.is_floating_point():
        return 0.0
    magnitude = finite_magnitude(images)
    if magnitude is None:
        raise ValueError(f"{name} contains NaN or infinite values")
    return magnitude


def check_slic_scales(
    compactness: float, spacing: Sequence[float], spatial: Sequence[int], channels: int, lab: bool = False
) -> None:
    """Raise a ``ValueError`` naming the argument when SLIC's features would overflow float32.

    Colours are min-max scaled to ``[0, 1]`` (CIELAB: up to 100) and divided by ``compactness``;
    positions are voxel indices times ``spacing`` over the seed grid step (at least 1). Half of
    :data:`MAX_SLIC_FEATURE_NORM2` goes to each: the bound holds for any image of that size, so
    the check costs nothing per voxel.

    Parameters
    ----------
    compactness : float
        Positive finite SLIC compactness.
    spacing : sequence of float
        Positive finite spacing per spatial axis.
    spatial : sequence of int
        The images' spatial size.
    channels : int
        Number of channels.
    lab : bool
        The 3 channels are converted to CIELAB.
    """
    budget = MAX_SLIC_FEATURE_NORM2 / 2
    colour_norm2 = _LAB_NORM2 if lab else float(channels)
    if colour_norm2 / compactness**2 > budget:
        smallest = math.sqrt(colour_norm2 / budget)
        raise ValueError(
            f"compactness={compactness!r} is too small for {channels}-channel images"
            f"{' in CIELAB' if lab else ''}: colour / compactness reaches {math.sqrt(colour_norm2) / compactness:.3g}, "
            f"whose squares overflow SLIC's float32 distances; use compactness >= {smallest:.3g}"
        )
    position_norm2 = sum((float(n) * float(s)) ** 2 for n, s in zip(spatial, spacing))
    if position_norm2 > budget:
        largest = math.sqrt(budget / len(spatial))
        raise ValueError(
            f"spacing={tuple(spacing)!r} is too large for images of {tuple(spatial)} voxels: positions reach "
            f"{math.sqrt(position_norm2):.3g}, whose squares overflow SLIC's float32 distances; keep spacing x size "
            f"below {largest:.3g} along every axis"
        )


def _is_real_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 1


def check_compactness(compactness: Any) -> float:
    """Return ``compactness`` as a float; raise a ``ValueError`` unless it is a finite number > 0.

    Parameters
    ----------
    compactness : float
        SLIC compactness (see :func:`check_slic_scales` for the bound that depends on the images).
    """
    if not (_is_real_number(compactness) and math.isfinite(compactness) and compactness > 0):
        raise ValueError(f"compactness must be a finite number > 0, got {compactness!r}")
    return float(compactness)


def check_spacing(spacing: Optional[Sequence[float]], ndim: Optional[int] = None) -> Optional[Tuple[float, ...]]:
    """Return ``spacing`` as a tuple of floats (``None`` stays ``None``); raise a ``ValueError`` unless
    it holds finite positive numbers, ``ndim`` of them when ``ndim`` is given.

    Parameters
    ----------
    spacing : sequence of float, optional
        Voxel spacing per spatial axis.
    ndim : int, optional
        The number of spatial axes of the images it goes with (unknown when a transform is built).
    """
    if spacing is None:
        return None
    count = f"{ndim} " if ndim is not None else ""
    values = tuple(spacing) if isinstance(spacing, (tuple, list, np.ndarray, torch.Tensor)) else None
    if (
        values is None
        or not values
        or not all(_is_real_number(v) for v in values)
        or not all(math.isfinite(v) and v > 0 for v in values)
        or (ndim is not None and len(values) != ndim)
    ):
        raise ValueError(f"spacing must be {count}finite positive numbers, got {spacing!r}")
    return tuple(float(v) for v in values)


def check_grid_size(grid_size: Any, ndim: Optional[int] = None) -> Union[int, Tuple[int, ...]]:
    """Return ``grid_size`` as an int or a tuple of ints; raise a ``ValueError`` unless it is a
    positive int or a sequence of positive ints (``ndim`` of them when ``ndim`` is given).

    Parameters
    ----------
    grid_size : int or sequence of int
        Cells per spatial axis of the Table 7 grid (one value for every axis, or one per axis).
    ndim : int, optional
        The number of spatial axes of the images it goes with.
    """
    if _is_positive_int(grid_size):
        return int(grid_size)
    if (
        isinstance(grid_size, (tuple, list))
        and grid_size
        and all(_is_positive_int(v) for v in grid_size)
        and (ndim is None or len(grid_size) == ndim)
    ):
        return tuple(int(v) for v in grid_size)
    wanted = f"{ndim} positive ints" if ndim is not None else "a sequence of positive ints"
    raise ValueError(f"grid_size must be a positive int or {wanted}, got {grid_size!r}")

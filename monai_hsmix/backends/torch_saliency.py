"""Batched fine-grained static saliency (Montabone & Soto 2010) in torch, 2D and 3D.

The 2D algorithm is the one OpenCV's ``StaticSaliencyFineGrained`` implements, reproduced step by
step so the maps agree with it (up to float rounding of a few levels in a thousand pixels):

1. the 8-bit image is smoothed twice with the 3-tap binomial kernel ``[1, 2, 1] / 4`` per axis
   (mirror borders that do not repeat the edge voxel, rounded back to integer levels);
2. at six scales ``n`` in ``12, 24, 48, 28, 56, 112`` the surround mean is the mean of the box
   ``[i - n + 1, i + n]`` (clipped to the image) along every axis, without the centre voxel;
   the centre-surround differences ``max(I - mean, 0)`` (on) and ``max(mean - I, 0)`` (off) are
   truncated to integers and summed over the scales;
3. the on and off sums are each rescaled to ``0..255`` by their image maximum (truncated), added,
   rescaled so that the larger of the two maxima maps to 255, truncated, and divided by 255.

Box sums come from cumulative sums (integral images), one axis at a time, so every scale costs a
few passes over the image whatever its window size. For 5D input the same steps run in 3D: the
binomial kernel and the boxes extend along the third axis (cubes of ``2n`` voxels), which is the
natural generalisation of the centre-surround operator and gives true 3D saliency.

Where OpenCV's 8-bit arithmetic would overflow (on + off above the larger maximum, which makes
the C cast wrap) this saturates at 1; a constant image, where OpenCV divides by zero, gives 0.
"""

from __future__ import annotations

import math
from typing import List

import torch

from monai_hsmix.backends.intensity import channels_to_uint8_range

__all__ = ["torch_fine_grained_saliency"]

SCALES = (12, 24, 48, 28, 56, 112)
_GROUP_VOXELS = 1 << 20  # voxels of the maps processed together (2D batches: all at once)


def torch_fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """Fine-grained saliency of every image of a batch, on the batch's device.

    Same input handling as :func:`monai_hsmix.backends.reference.opencv_saliency`: each channel is
    min-max scaled to 8-bit levels (:func:`channels_to_uint8_range`), its saliency computed, and
    the channel maps averaged. 4D input is 2D; 5D input uses 3D saliency (not slice by slice).

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` real tensor with finite values.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``float32`` saliency in ``[0, 1]``.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim not in (4, 5):
        raise ValueError(f"images must be (B, C, H, W) or (B, C, H, W, D), got shape {tuple(images.shape)}")
    if images.is_complex() or images.dtype == torch.bool:
        raise TypeError(f"images must be real-valued, got dtype {images.dtype}")
    if images.shape[1] < 1 or min(images.shape[2:]) < 1:
        raise ValueError(f"images need at least one channel and one voxel, got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        return torch.zeros(images.shape[:1] + images.shape[2:], dtype=torch.float32, device=images.device)
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")
    b, c = images.shape[:2]
    spatial = tuple(images.shape[2:])
    # maps are independent (the 8-bit scaling is per channel too): quantise and process them in
    # groups, accumulating the channel mean, so large volumes need a few maps' worth of memory
    maps = images.detach().reshape((b * c, 1) + spatial)
    owner = torch.arange(b * c, device=images.device) // c
    out = torch.zeros((b,) + spatial, dtype=torch.float32, device=images.device)
    per_group = max(1, _GROUP_VOXELS // math.prod(spatial))
    for start in range(0, b * c, per_group):
        part = maps[start : start + per_group]
        sal = _saliency(channels_to_uint8_range(part)[:, 0])
        out.index_add_(0, owner[start : start + per_group], sal)
    return out.div_(c)


def _saliency(gray: torch.Tensor) -> torch.Tensor:
    """``(N, *spatial)`` integer levels in float32 -> ``(N, *spatial)`` saliency in ``[0, 1]``."""
    gray = _binomial_blur(_binomial_blur(gray))
    # box sums of integer levels must be exact: float32 while the whole image sums below 2**31,
    # else integers
    whole = 255 * math.prod(gray.shape[1:])
    acc = torch.float32 if whole < 2**24 else torch.int32 if whole < 2**31 else torch.int64
    boxes = _BoxSums(gray.to(acc))
    # everything per scale happens in the boxes' axis order; one permutation back at the end
    centre = gray.permute(boxes.order).contiguous()
    on = torch.zeros_like(centre)
    off = torch.zeros_like(centre)
    scratch = torch.empty_like(centre)
    for n in SCALES:
        total, area = boxes(n)
        # in place on fresh buffers: this loop is most of the work
        mean = total.to(centre.dtype, copy=True) if total.dtype != centre.dtype else total
        mean.sub_(centre).div_((area - 1).clamp_min(1).to(centre.dtype))
        diff = torch.sub(centre, mean, out=mean)
        on.add_(torch.clamp(diff, min=0, out=scratch).floor_())
        off.add_(diff.neg_().clamp_min_(0).floor_())
    back = [boxes.order.index(d) for d in range(gray.ndim)]
    on8 = _rescale_to_255(on.permute(back))
    off8 = _rescale_to_255(off.permute(back))
    top = torch.maximum(_spatial_max(on8), _spatial_max(off8))
    mixed = torch.where(top > 0, 255.0 * (on8 + off8) / top.clamp_min(1), torch.zeros_like(on8))
    return mixed.floor_().clamp_(max=255) / 255.0


def _reflect_index(size: int, shift: int, device) -> torch.Tensor:
    """Indices of ``i + shift`` mirrored at the borders without repeating the edge voxel."""
    idx = torch.arange(size, device=device) + shift
    if size == 1:
        return torch.zeros_like(idx)
    idx = torch.where(idx < 0, -idx, idx)
    return torch.where(idx > size - 1, 2 * (size - 1) - idx, idx)


def _binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """``[1, 2, 1]`` smoothing along every spatial axis, rounded to the nearest level (half up)."""
    acc = x
    for axis in range(1, x.ndim):
        size = x.shape[axis]
        left = acc.index_select(axis, _reflect_index(size, -1, x.device))
        right = acc.index_select(axis, _reflect_index(size, 1, x.device))
        acc = left + 2 * acc + right
    weight = 4 ** (x.ndim - 1)
    return torch.floor((acc + weight // 2) / weight)


def _box_along_last(csum: torch.Tensor, n: int) -> torch.Tensor:
    """Sums over ``[i - n + 1, i + n]`` (clipped to the axis) from the cumulative sum ``csum``.

    With ``C`` the inclusive cumulative sum along the last axis, the box at ``i`` is
    ``C[min(i + n, S - 1)] - C[i - n]`` (the second term only where ``i >= n``): three slice
    operations, no padding. (Cumulative sums run along the last, contiguous axis, which torch does
    several times faster than along the others.)
    """
    size = csum.shape[-1]
    m = min(n, size)
    out = torch.empty_like(csum)
    out[..., : size - m] = csum[..., m:]
    out[..., size - m :] = csum[..., size - 1 :]
    if size > m:
        out[..., m:] -= csum[..., : size - m]
    return out


class _BoxSums:
    """Box sums of ``x`` (``(N, *spatial)``) at any scale, one axis at a time, last axis first.

    Each axis in turn is moved last before its cumulative sum, so results come in the axis order
    ``order`` (the spatial axes reversed). The last axis's cumulative sum is shared by all scales.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.first = x.cumsum(-1, dtype=x.dtype)
        self.order = [0] + list(range(x.ndim - 1, 0, -1))

    def __call__(self, n: int):
        x = self.x
        total = _box_along_last(self.first, n)
        current = list(range(x.ndim))
        for axis in range(x.ndim - 2, 0, -1):
            perm = [current.index(d) for d in current if d != axis] + [current.index(axis)]
            current = [current[p] for p in perm]
            total = _box_along_last(total.permute(perm).contiguous().cumsum(-1, dtype=x.dtype), n)
        area = torch.ones((), dtype=torch.int64, device=x.device)
        for pos, axis in enumerate(current[1:], start=1):
            size = x.shape[axis]
            i = torch.arange(size, device=x.device)
            count = (i + n + 1).clamp(max=size) - (i - n + 1).clamp(min=0)
            shape: List[int] = [1] * x.ndim
            shape[pos] = -1
            area = area * count.reshape(shape)
        return total, area


def _spatial_max(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).amax(dim=1).reshape((-1,) + (1,) * (x.ndim - 1))


def _rescale_to_255(x: torch.Tensor) -> torch.Tensor:
    """Truncated ``255 * x / max(x)`` per map (0 for an all-zero map)."""
    top = _spatial_max(x)
    return torch.where(top > 0, 255.0 * (x / top.clamp_min(1)), torch.zeros_like(x)).floor_()

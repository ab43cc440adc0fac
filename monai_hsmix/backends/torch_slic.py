"""Batched SLIC superpixels (2D) and supervoxels (3D) in torch, on the input's device.

The clustering follows scikit-image's ``slic`` so that the paper's ``compactness`` presets keep
their meaning:

* every image is min-max scaled to ``[0, 1]`` over all its channels and voxels; with
  ``slic_space="lab"`` the 3 channels are then converted from sRGB to CIELAB, as scikit-image
  does for colour images; the features are divided by ``compactness``;
* seeds sit on scikit-image's regular grid (``skimage.util.regular_grid``), which fixes the grid
  step ``step``; spatial offsets are multiplied by ``spacing`` and divided by ``step``, so the
  squared distance is ``|colour difference|^2 / compactness^2 + |spacing * offset|^2 / step^2``.

Where it differs from scikit-image, and why:

* **Candidate centres.** scikit-image lets every centre claim voxels within two grid steps of its
  current position. Here voxels are grouped in tiles, and a tile's voxels compare the centres
  seeded in the cells the tile meets plus one cell on either side along every axis: each voxel
  sees at least the 3x3 (3x3x3) cells around its own, and seeds up to two cells away (as in
  scikit-image) when cells are at least 8 voxels wide, three (or more, for cells under 3
  voxels) when they are narrower: tiles must hold enough voxels to be worth their candidate
  rows. Centres rarely drift more than a cell in ten iterations. Distances are small batched
  matrix products, computed chunk by chunk with a packed integer argmin: memory stays linear
  in the voxel count (no voxels x 27 tensor).
* **Half resolution.** When an image's grid step along an axis is at least 8 voxels
  (``half_resolution=None``, the default) the clustering runs on the image average-pooled by 2
  along those axes and the final labels are repeated back to full size. The distance keeps its
  meaning (pooled offsets are scaled by the pooling factor, and the full-size grid step is the
  unit), superpixels are still tens of pooled voxels wide, and boundaries land within one voxel
  of where they would be (boundary recall a few points below full size; figures in
  ``docs/performance.md``). Every pass costs a quarter in 2D and an eighth in 3D, where memory
  shrinks as much. Pooling
  also averages out voxel noise, like scikit-image's ``sigma`` smoothing, so fewer fragments form.
  It is decided per image, and not taken by default when the spacing is strongly anisotropic
  (see :func:`_pooling_factors`).
* **Means from a subsample.** For images whose cells are at least 4 voxels wide, all iterations
  but the last estimate the centres (which are means) from the voxels with even coordinates (a
  quarter in 2D, an eighth in 3D); the last assignment uses every voxel. Like scikit-image,
  the iterations stop early when no (sampled) voxel changes its centre: the assignment is a fixed
  point, so the result is the same as with every iteration run (at compactness 10 this happens
  after about 5 iterations; at 0.1, rarely within 10).
* **Fragments are merged, not kept.** k-means labels can be disconnected; on noisy medical
  images at small compactness there are thousands of fragments per image, mostly single voxels
  (scikit-image's raw labels show the same). Like scikit-image (``enforce_connectivity=True``)
  they are removed: one-voxel fragments take their nearest adjacent centre, then connected
  components (face connectivity) smaller than half the nominal superpixel size join the adjacent
  larger component with the closest mean colour. Keeping fragments would inflate the count with
  specks whose HSMix saliency ratio is noise and whose hard-mixing regions are not superpixels;
  merging by colour (not by size, as scikit-image effectively does) keeps true edges.
* **Expanded distances.** Features are absolute (colour / compactness, scaled position), so the
  squared distance ``|x|^2 - 2 x.c + |c|^2`` needs per-centre rows only, built once per pass and
  gathered by the tiles. At small compactness colours reach hundreds and the expansion loses a
  little precision to rounding, which left boundary recall unchanged against exact per-tile
  features (``docs/performance.md``) for less time per iteration.
* **Batch mates.** Pooling and tile size are decided per image, from its own seed grid, and images
  that share them are clustered together; inside such a group every image keeps its own
  candidate window (extra columns point at an invalid centre) and ties resolve with a fixed
  number of bits. An image therefore gets the same superpixels alone and in any batch.

Different segment counts per image are handled by padding every image's centre grid to the
largest grid in the batch and giving the padding centres an out-of-reach distance.
"""

from __future__ import annotations

import functools
import math
from typing import List, Optional, Sequence, Tuple

import torch

from monai_hsmix.backends import numba_slic
from monai_hsmix.backends.colour import check_slic_space, rgb_to_lab
from monai_hsmix.backends.engine import resolve_engine
from monai_hsmix.backends.intensity import float32_maps
from monai_hsmix.backends.precision import full_precision
from monai_hsmix.backends.validation import check_image_batch, check_slic_scales

__all__ = ["torch_slic"]


@functools.lru_cache(maxsize=1024)
def _grid(shape: Tuple[int, ...], n_segments: int) -> Tuple[Tuple[int, ...], Tuple[int, ...], float]:
    """Grid starts, steps and the scalar step of scikit-image's seed grid for one image.

    scikit-image always works on a 3D grid; a 2D image is a volume of depth 1, which only matters
    for the scalar step (the largest per-axis step, at least 1).
    """
    from skimage.util import regular_grid

    grid_shape = (1,) + shape if len(shape) == 2 else shape
    slices = regular_grid(grid_shape, n_segments)
    starts = tuple(int(s.start or 0) for s in slices)
    steps = tuple(int(s.step or 1) for s in slices)
    scalar_step = float(max(steps))
    if len(shape) == 2:
        starts, steps = starts[1:], steps[1:]
    return starts, steps, scalar_step


def _validate(images: torch.Tensor, n_segments, compactness, spacing, max_num_iter, validate: bool = True) -> Tuple[torch.Tensor, tuple]:
    if validate:  # a transform calling with validate=False has checked the batch itself
        check_image_batch(images, "images", allow_empty_batch=True)
    counts = torch.as_tensor(n_segments).reshape(-1)
    if counts.numel() != images.shape[0]:
        raise ValueError(f"n_segments must have one entry per image ({images.shape[0]}), got {counts.numel()}")
    if counts.is_floating_point() and not bool((counts == counts.round()).all()):
        raise ValueError(f"n_segments must be integers, got {counts.tolist()}")
    counts = counts.long().cpu()
    if counts.numel() and int(counts.min()) < 1:
        raise ValueError(f"n_segments must be >= 1, got {counts.tolist()}")
    if not (isinstance(compactness, (int, float)) and math.isfinite(compactness) and compactness > 0):
        raise ValueError(f"compactness must be a finite number > 0, got {compactness!r}")
    if isinstance(max_num_iter, bool) or not isinstance(max_num_iter, int) or max_num_iter < 1:
        raise ValueError(f"max_num_iter must be an int >= 1, got {max_num_iter!r}")
    ndim = images.ndim - 2
    if spacing is None:
        spacing = (1.0,) * ndim
    else:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != ndim or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing must be {ndim} finite positive numbers, got {spacing}")
    return counts, spacing


@full_precision
def torch_slic(
    images: torch.Tensor,
    n_segments: torch.Tensor,
    compactness: float,
    spacing: Optional[Sequence[float]] = None,
    max_num_iter: int = 10,
    half_resolution: Optional[bool] = None,
    slic_space: str = "intensity",
    max_segments: Optional[int] = None,
    engine: str = "auto",
    validate: bool = True,
) -> torch.Tensor:
    """SLIC superpixels (2D) or supervoxels (3D) for a whole batch at once.

    Same contract as :func:`monai_hsmix.backends.reference.skimage_slic`.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` real tensor.
    n_segments : torch.Tensor
        ``(B,)`` integers, the requested number of segments for each image.
    compactness : float
        Balance of colour and space proximity, with scikit-image's meaning.
    spacing : sequence of float, optional
        Voxel spacing along each spatial axis, for anisotropic volumes.
    max_num_iter : int
        Largest number of k-means iterations (they stop earlier at a fixed point).
    half_resolution : bool, optional
        Cluster each image average-pooled by 2 along the axes where its grid step is at least 8
        voxels (``None``: those axes, unless the largest spacing is over twice the smallest;
        ``True``: the axes where it is at least 2; ``False``: never), then repeat the labels
        back to full size. See the module notes.
    slic_space : {"intensity", "lab"}
        Cluster the channels as they are, or (3 channels only) as CIELAB colours.
    max_segments : int, optional
        The largest count any image of this stream of batches may ask for (a transform's
        ``lmax``). Pooling and tile size are then chosen from it for every image, so the whole
        batch is one pass; without it they are chosen from each image's own count and images
        that differ are clustered in separate passes. Either way an image's superpixels do not
        depend on its batch mates.
    engine : {"auto", "torch", "numba"}
        Batched torch operations (what a GPU runs) or fused CPU loops compiled by numba
        (:mod:`monai_hsmix.backends.numba_slic`); ``"auto"`` picks numba for CPU tensors. See
        :func:`monai_hsmix.backends.engine.resolve_engine`.
    validate : bool
        Check ``images`` (:func:`~monai_hsmix.backends.validation.check_image_batch`); callers that
        have checked the batch already (the transforms) pass ``False``.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``int64`` labels on the input's device, contiguous from 0 in every image.
    """
    counts, spacing = _validate(images, n_segments, compactness, spacing, max_num_iter, validate)
    check_slic_space(slic_space, images.shape[1])
    check_slic_scales(compactness, spacing, images.shape[2:], images.shape[1], slic_space == "lab")
    cluster = _cluster_numba if resolve_engine(engine, images.device) == "numba" else _cluster
    if half_resolution is not None and not isinstance(half_resolution, bool):
        raise TypeError(f"half_resolution must be None, True or False, got {half_resolution!r}")
    b = images.shape[0]
    full = tuple(images.shape[2:])
    if b == 0:
        return torch.zeros((0,) + full, dtype=torch.long, device=images.device)
    # images are clustered in groups that share a pooling and tile size, each decided from the
    # image's own seed grid, so that an image gets the same superpixels whatever its batch mates
    if max_segments is not None:
        if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < int(counts.max()):
            raise ValueError(f"max_segments must be an int >= every requested count ({int(counts.max())}), got {max_segments!r}")
        configs = [_configuration(full, max_segments, spacing, half_resolution)] * b
    else:
        configs = [_configuration(full, int(n), spacing, half_resolution) for n in counts.tolist()]
    out = None
    for config in dict.fromkeys(configs):
        members = [i for i, c in enumerate(configs) if c == config]
        if len(members) == b:
            return cluster(images, counts, float(compactness), spacing, max_num_iter, config, slic_space == "lab")
        index = torch.tensor(members, device=images.device)
        labels = cluster(images.index_select(0, index), counts[members], float(compactness), spacing, max_num_iter,
                          config, slic_space == "lab")
        if out is None:
            out = torch.empty((b,) + full, dtype=torch.long, device=images.device)
        out.index_copy_(0, index, labels)
    return out


def _cluster(images, counts, compactness, spacing, max_num_iter, config, lab) -> torch.Tensor:
    """SLIC on images that share a configuration ``(pooling factors, tile size)``."""
    factors, tile = config
    b = images.shape[0]
    full = tuple(images.shape[2:])
    colour = _scaled_colour(images, compactness, factors, lab)
    spatial = tuple(colour.shape[2:])
    layout = _Layout(spatial, counts, spacing, images.device, full, factors, tile)
    fine, inside = layout.tile_pixels(colour)
    centres = layout.initial_centres(colour)
    if max_num_iter > 1:
        rel, absolute = layout.sample_for_means(fine, inside)
        previous = None
        for _ in range(max_num_iter - 1):
            centres, assigned = layout.update(rel, absolute, centres)
            if previous is not None and _unchanged(assigned, previous):
                break
            previous = assigned
        del rel, absolute, previous
    labels = layout.untile(layout.labels_of(fine, centres))
    del fine, inside  # the voxel features are the largest arrays: free them before clean-up
    labels = _absorb_specks(labels, colour, centres, layout)
    min_size = layout.grid.min_fragment_size(spatial).to(images.device)
    labels = _merge_small_fragments(labels, colour, min_size)
    labels = _contiguous(labels.reshape(b, -1)).reshape((b,) + spatial)
    return _repeat_to_full_size(labels, factors, full)


def _cluster_numba(images, counts, compactness, spacing, max_num_iter, config, lab) -> torch.Tensor:
    """:func:`_cluster` by the numba kernels (the tile size of ``config`` does not apply)."""
    factors, _ = config
    full = tuple(images.shape[2:])
    colour = _scaled_colour(images, compactness, factors, lab)
    plans = [_numba_plan(full, int(n), spacing, factors) for n in counts.tolist()]
    labels = numba_slic.slic_labels(colour.contiguous().numpy(), plans, max_num_iter, factors, full)
    return torch.from_numpy(labels)


@functools.lru_cache(maxsize=4096)
def _numba_plan(full: Tuple[int, ...], count: int, spacing: Tuple[float, ...], factors: Tuple[int, ...]) -> tuple:
    """The seed grid of one image as the numba kernels take it (cached: counts repeat)."""
    spatial = tuple(-(-size // f) for size, f in zip(full, factors))
    grid = _SeedGrid(full, spatial, torch.tensor([count]), factors)
    seed_pos = [grid.seed_coordinates(d, torch.arange(int(grid.per_axis[0, d]))[None], spatial[d])[0].numpy()
                for d in range(len(spatial))]
    coord_scale = [s * f / float(grid.scalar_step[0]) for s, f in zip(spacing, factors)]
    min_size = int(grid.min_fragment_size(spatial)[0])
    return numba_slic.image_plan([c[0].numpy() for c in grid.cell_of], seed_pos, coord_scale, grid.steps[0].tolist(), min_size)


def _unchanged(assigned: torch.Tensor, previous: torch.Tensor) -> bool:
    """Whether a k-means assignment repeats the previous one (a fixed point: iterating is done)."""
    return torch.equal(assigned, previous)


def _pooling_factors(
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
    threshold = 2 if half_resolution else 8
    return tuple(2 if s >= threshold else 1 for s in _grid(spatial, count)[1])


@functools.lru_cache(maxsize=4096)
def _configuration(
    full: Tuple[int, ...], count: int, spacing: Tuple[float, ...], half_resolution: Optional[bool]
) -> Tuple[Tuple[int, ...], int]:
    """``(pooling factors, tile size)`` that one image would be clustered with on its own."""
    factors = _pooling_factors(full, count, spacing, half_resolution)
    spatial = tuple(-(-size // f) for size, f in zip(full, factors))
    grid = _SeedGrid(full, spatial, torch.tensor([count]), factors)
    tile = _Layout.tile_size(spatial, grid.cell_of, float(grid.steps.min()), _Layout.max_tile[len(full)])
    return factors, tile


class _SeedGrid:
    """scikit-image's seed grid of each full-size image, in the (possibly pooled) clustering grid.

    In a pooled image (factor f along an axis) full-size voxel x sits at (x - (f - 1) / 2) / f,
    so starts and steps may be fractional there. ``cell_of[d]`` is, per image, the index of the
    nearest seed along axis d of every voxel, clamped to the grid.
    """

    def __init__(self, full_spatial, spatial, counts, factors):
        grids = [_grid(tuple(full_spatial), int(n)) for n in counts.tolist()]
        full_starts = torch.tensor([g[0] for g in grids], dtype=torch.float64)
        full_steps = torch.tensor([g[1] for g in grids], dtype=torch.float64)
        self.scalar_step = torch.tensor([g[2] for g in grids], dtype=torch.float64)
        self.per_axis = torch.ceil((torch.tensor(full_spatial, dtype=torch.float64) - full_starts) / full_steps).long()
        f = torch.tensor(factors, dtype=torch.float64)
        self.starts = (full_starts - (f - 1) / 2) / f
        self.steps = full_steps / f
        self.cell_of = []
        for d in range(len(spatial)):
            x = torch.arange(spatial[d], dtype=torch.float64)[None]
            near = torch.floor((x - self.starts[:, d : d + 1]) / self.steps[:, d : d + 1] + 0.5).long()
            self.cell_of.append(torch.minimum(near.clamp_min(0), self.per_axis[:, d : d + 1] - 1))

    def seed_coordinates(self, axis: int, cells: torch.Tensor, size: int) -> torch.Tensor:
        """``(B, n)`` voxel coordinate along ``axis`` (of ``size`` voxels) of seed number ``cells``
        (``(1, n)`` integers; numbers past the grid are clamped into the image)."""
        return torch.floor(self.starts[:, axis : axis + 1] + cells * self.steps[:, axis : axis + 1] + 0.5).clamp(0, size - 1).long()

    def min_fragment_size(self, spatial: Tuple[int, ...]) -> torch.Tensor:
        """``(B,)`` components with fewer voxels are merged: half the nominal superpixel size."""
        return (0.5 * math.prod(spatial) / self.per_axis.prod(dim=1).double()).floor().long()


def _repeat_to_full_size(labels: torch.Tensor, factors: Tuple[int, ...], full: Tuple[int, ...]) -> torch.Tensor:
    """Each pooled voxel's label to the voxels it pooled (the last block may overrun: cropped)."""
    for d, f in enumerate(factors):
        if f > 1:
            labels = labels.repeat_interleave(f, dim=1 + d).narrow(1 + d, 0, full[d])
    return labels.contiguous()


def _scaled_colour(images: torch.Tensor, compactness: float, factors: Tuple[int, ...], lab: bool = False) -> torch.Tensor:
    """Colours min-max scaled over each whole image, divided by ``compactness``, then pooled.

    Pooling (averages of 2 voxels along the axes whose factor is 2; a last odd voxel is its own
    average) commutes with the affine scaling, so it runs first and the scaling touches only
    the pooled voxels. The CIELAB conversion does not commute with pooling: it runs at full
    size, as in scikit-image, and the Lab colours are pooled.
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
        return _pool_by_two(x, factors).div_(compactness)
    pooled = _pool_by_two(x, factors)
    # [0, 1] first, then the compactness: range x compactness can underflow float32
    if pooled is x:
        return (x - lo.view(view)).div_(span.view(view)).div_(compactness)
    return pooled.sub_(lo.view(view)).div_(span.view(view)).div_(compactness)  # in place: a fresh array


def _pool_by_two(x: torch.Tensor, factors: Tuple[int, ...]) -> torch.Tensor:
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


class _Layout:
    """Seed grids of every image, and the tiling of the batch into candidate-sharing blocks.

    The batch is cut into cubic tiles of ``t`` voxels per axis. The centres seeded in the cells a
    tile meets, and one more cell on either side along every axis, are the candidates of all
    the tile's voxels: every voxel sees at least the 3 x 3 (x 3) cells around its own, and, in a
    tile meeting ``r`` cells along an axis, cells up to ``r`` away along it. Distances of a
    tile's voxels to its candidates are then one small matrix product, and the nearest
    candidate one integer reduction. Tiles as large as the reach allows (see
    :meth:`tile_size`) keep the per-tile work (building candidate rows) small next to the
    per-voxel work.
    """

    max_tile = {2: 16, 3: 8}
    chunk_elements = 1 << 18  # distance entries computed at once: 1 MiB, stays in cache
    candidate_group_elements = 1 << 20  # candidate-row entries built at once: 4 MiB
    # on a GPU each chunk is a handful of kernel launches, which cost more there than the work itself
    # (docs/performance.md): one chunk per pass, up to 128 MiB of entries
    device_elements = 1 << 25

    def __init__(self, spatial, counts, spacing, device, full_spatial=None, factors=None, tile=None):
        ndim = len(spatial)
        b = len(counts)
        # the seed grid is scikit-image's grid of the full-size image. Distances are measured in
        # full-size voxels against the full-size grid step, so a pooled image keeps
        # scikit-image's meaning of compactness
        factors = (1,) * ndim if factors is None else tuple(factors)
        full_spatial = tuple(spatial) if full_spatial is None else tuple(full_spatial)
        grid = _SeedGrid(full_spatial, spatial, counts, factors)
        per_axis, steps, cell_of = grid.per_axis, grid.steps, grid.cell_of
        spacing = tuple(s * f for s, f in zip(spacing, factors))
        self.spatial, self.ndim, self.b, self.device = tuple(spatial), ndim, b, device
        if torch.device(device).type != "cpu":
            self.chunk_elements = self.candidate_group_elements = self.device_elements
        self.grid = grid
        self.coord_scale = torch.tensor(spacing, dtype=torch.float64)[None] / grid.scalar_step[:, None]  # (B, ndim)
        if tile is None:
            tile = self.tile_size(spatial, cell_of, float(steps.min()), self.max_tile[ndim])
        self.t = tile
        # images whose cells are at least 4 voxels wide estimate their centres from every other
        # voxel along each axis; decided per image so that no image depends on its batch mates
        self.sampled = (steps.min(dim=1).values >= 4).to(device)
        self.tiles_per_axis = [-(-s // self.t) for s in spatial]
        self.n_tiles = math.prod(self.tiles_per_axis)
        origin, first_cells = [], []
        for d in range(ndim):
            o = torch.arange(self.tiles_per_axis[d]) * self.t
            origin.append(o)
            first_cells.append(cell_of[d][:, o])  # (B, tiles along d)
        # cells a tile meets along each axis, plus one candidate cell before and one after. Each
        # image gets the window it would get alone (its own widths); the candidate columns that
        # batch mates with narrower cells add point at an invalid centre
        own = self._cells_met_per_image(spatial, cell_of, self.t) + 2  # (B, ndim)
        widths = [int(w) for w in own.amax(dim=0)]
        self.widths = widths
        self.m = math.prod(widths)
        # candidate cells run from one before the tile's first cell to width - 2 after it: the
        # padded grid has one invalid centre before the grid and width - 2 after it
        self.padded = [int(per_axis[:, d].max()) + widths[d] - 1 for d in range(ndim)]
        self.k = math.prod(self.padded)

        # candidates of every tile: padded-grid ids of cells first - 1 .. first + width - 2 per axis
        grid_strides = [math.prod(self.padded[d + 1 :]) for d in range(ndim)]
        cand = torch.zeros((b,) + tuple(self.tiles_per_axis) + tuple(widths), dtype=torch.long)
        for d in range(ndim):
            # first_cells[d] + a is padded-grid cell first - 1 + a
            column = torch.arange(widths[d])[None, None]
            # padded-grid index 0 is the invalid centre before the grid
            ids = torch.where(column < own[:, d, None, None], first_cells[d][:, :, None] + column, 0) * grid_strides[d]
            shape = [b] + [1] * ndim + [1] * ndim
            shape[1 + d] = self.tiles_per_axis[d]
            shape[1 + ndim + d] = widths[d]
            cand = cand + ids.reshape(shape)
        self.cand = cand.reshape(b * self.n_tiles, self.m)
        self.cand_global = (self.cand + (torch.arange(b) * self.k).repeat_interleave(self.n_tiles)[:, None]).to(device)
        self.cand = self.cand.to(device)
        mesh = torch.meshgrid(*origin, indexing="ij")
        self.origin = torch.stack([m.reshape(-1) for m in mesh], dim=1).double()  # (tiles, ndim) voxels

        # seeds: voxel position of every padded-grid centre, and whether it exists
        seed_pos, valid = [], torch.ones((b,) + tuple(self.padded), dtype=torch.bool)
        for d in range(ndim):
            g = torch.arange(self.padded[d])[None] - 1
            ok = (g >= 0) & (g < per_axis[:, d : d + 1])
            shape = [b] + [1] * ndim
            shape[1 + d] = -1
            valid = valid & ok.reshape(shape)
            seed_pos.append(grid.seed_coordinates(d, g, spatial[d]))
        self.seed_pos = seed_pos
        self.valid = valid.reshape(b * self.k).to(device)
        self.centre_penalty = torch.where(self.valid, 0.0, 1e30)
        self.tile_base = (torch.arange(b, device=device) * self.k).repeat_interleave(self.n_tiles)[:, None]

    @staticmethod
    def tile_size(spatial, cell_of, min_step: float, max_tile: int) -> int:
        """Tile width: 8 voxels (fewer in small images), more where cells are narrow.

        A tile meeting ``r`` cells along an axis gives its voxels a window reaching up to ``r``
        cells away (see the class notes). With cells of 8 voxels or more, 8-voxel tiles meet at
        most 2, scikit-image's own reach. Narrower cells make 8-voxel tiles meet 3 already, and
        tiles of a few voxels spend more time building candidate rows than measuring distances,
        so there the tile grows (up to ``max_tile``) as long as it meets at most 3 cells. Wide
        cells keep 8: larger tiles with the same reach lowered boundary recall on BraTS slices
        (figures in ``docs/performance.md``).
        """
        largest = min(max_tile, max(spatial))
        largest -= largest % 2  # even: voxel parity is the same inside every tile (see sample_for_means)
        if largest < 2:
            return 1
        if min_step >= 8:
            return min(largest, 8)
        for t in range(largest, 2, -2):
            if max(_Layout._cells_met(spatial, cell_of, t)) <= 3:
                return t
        return 2

    @staticmethod
    def _cells_met(spatial, cell_of, t: int) -> List[int]:
        """Per axis, the most grid cells a tile of ``t`` voxels meets (over tiles and images)."""
        return [int(m) for m in _Layout._cells_met_per_image(spatial, cell_of, t).amax(dim=0)]

    @staticmethod
    def _cells_met_per_image(spatial, cell_of, t: int) -> torch.Tensor:
        """``(B, ndim)``: per image and axis, the most grid cells a tile of ``t`` voxels meets."""
        met = []
        for d, cells in enumerate(cell_of):
            o = torch.arange(0, spatial[d], t)
            last = (o + t - 1).clamp(max=spatial[d] - 1)
            met.append((cells[:, last] - cells[:, o]).amax(dim=1) + 1)
        return torch.stack(met, dim=1)

    def tile_pixels(self, colour: torch.Tensor):
        """Voxel features in tile layout.

        Returns
        -------
        rel : ``(B * tiles, F + 2, t**ndim)``
            Rows: colour, scaled position, 1, squared norm of those two: times the rows of
            :meth:`_centre_rows`, one product is a squared distance. Padding voxels (beyond the
            image) are all zero.
        inside : ``(B * tiles, 1, t**ndim)``
            1 for voxels of the image, 0 for padding.
        """
        b, c = colour.shape[:2]
        nd, t = self.ndim, self.t
        dev, dt = colour.device, colour.dtype
        pad = []
        for d in reversed(range(nd)):
            pad += [0, self.tiles_per_axis[d] * t - self.spatial[d]]
        # padded only where the tiles overrun the image (a padded copy is as large as the input)
        x = torch.nn.functional.pad(colour, pad) if any(pad) else colour
        view = [b, c]
        for n in self.tiles_per_axis:
            view += [n, t]
        inside = torch.ones((1,) + tuple(self.tiles_per_axis) + (t,) * nd, dtype=dt, device=dev)
        local = []
        for d in range(nd):
            pos = torch.arange(self.tiles_per_axis[d] * t, device=dev).reshape(self.tiles_per_axis[d], t)
            shape = [1] * (2 * nd + 1)
            shape[1 + d], shape[1 + nd + d] = self.tiles_per_axis[d], t
            inside = inside * (pos < self.spatial[d]).to(dt).reshape(shape)
            lshape = [1] * nd
            lshape[d] = t
            local.append(torch.arange(t, device=dev, dtype=dt).reshape(lshape).expand((t,) * nd).reshape(-1))
        inside = inside.reshape(1, self.n_tiles, 1, t**nd).expand(b, -1, -1, -1).reshape(b * self.n_tiles, 1, -1)
        scale = self.coord_scale.to(device=dev, dtype=dt).repeat_interleave(self.n_tiles, dim=0)
        origin = self.origin.to(device=dev, dtype=dt).repeat(b, 1) * scale
        coords = torch.stack(local)[None] * scale[:, :, None] + origin[:, :, None]
        f = c + nd
        # filled in place: these are the largest arrays of the whole computation
        rel = torch.empty(b * self.n_tiles, f + 2, t**nd, dtype=dt, device=dev)
        # the colours go straight from image to tile layout, with no intermediate tiled copy
        tiled = rel[:, :c].view([b] + self.tiles_per_axis + [c] + [t] * nd)
        tiled.permute([0, 1 + nd] + [a for d in range(nd) for a in (1 + d, 2 + nd + d)]).copy_(x.view(view))
        del x, tiled
        rel[:, c:f] = coords
        rel[:, f] = 1
        norm = rel[:, f + 1]
        norm.zero_()
        for r in range(f):
            norm.addcmul_(rel[:, r], rel[:, r])
        rel.mul_(inside)
        return rel, inside

    @staticmethod
    def _absolute(rel: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """``(tiles, voxels, F + 1)`` rows (colour, scaled position, 1) whose sums give centres."""
        f = rel.shape[1] - 2
        absolute = torch.cat([rel[:, :f] * inside, inside], dim=1)
        return absolute.transpose(1, 2).contiguous()

    def _tile_field(self, per_axis_values, combine):
        """Combine per-axis ``(B, tiles_d * t)`` values into ``(B * tiles, 1, t**ndim)``."""
        nd, t, b = self.ndim, self.t, self.b
        out = None
        for d, v in enumerate(per_axis_values):
            shape = [v.shape[0]] + [1] * (2 * nd)
            shape[1 + d], shape[1 + nd + d] = self.tiles_per_axis[d], t
            v = v.reshape(shape)
            out = v if out is None else combine(out, v)
        out = out.expand([b] + self.tiles_per_axis + [t] * nd)
        return out.reshape(b * self.n_tiles, 1, t**nd)

    def sample_for_means(self, rel: torch.Tensor, inside: torch.Tensor):
        """Voxel rows (distance rows, mean rows) for the k-means iterations before the last.

        Centres are means, which every other voxel along each axis (a quarter in 2D, an eighth
        in 3D) estimates well once cells are 4 voxels wide. The sample is the voxels with even
        coordinates, so it never depends on the tiling: when every image is sampled the tiles
        are simply strided; otherwise the unsampled voxels of sampled images get zero weight.
        """
        if not bool(self.sampled.any()):
            return rel, self._absolute(rel, inside)
        t = self.t
        if bool(self.sampled.all()) and t % 2 == 0:
            rel = self._strided(rel, 2)
            return rel, self._absolute(rel, self._strided(inside, 2))
        even = [(torch.arange(n * t, device=self.device) % 2 == 0)[None] for n in self.tiles_per_axis]
        keep = self._tile_field(even, torch.logical_and).reshape(self.b, self.n_tiles, 1, -1)
        keep = keep | ~self.sampled.reshape(-1, 1, 1, 1)
        weight = keep.reshape(self.b * self.n_tiles, 1, -1).to(inside.dtype)
        return rel, self._absolute(rel, inside * weight)

    def _strided(self, pix: torch.Tensor, voxel_axis: int) -> torch.Tensor:
        """Voxels with even coordinates inside every (even-sized) tile."""
        s, t, nd = 2, self.t, self.ndim
        shape = list(pix.shape)
        x = pix.reshape(shape[:voxel_axis] + [t] * nd + shape[voxel_axis + 1 :])
        index = [slice(None)] * x.ndim
        for d in range(nd):
            index[voxel_axis + d] = slice(None, None, s)
        x = x[tuple(index)]
        return x.reshape(shape[:voxel_axis] + [-1] + shape[voxel_axis + 1 :])

    def initial_centres(self, colour: torch.Tensor) -> torch.Tensor:
        """``(B * K, F)`` absolute centre features (colour, scaled position); invalid ones are 0."""
        b, c = colour.shape[:2]
        nd = self.ndim
        index = [torch.arange(b).reshape((b,) + (1,) * nd)]
        for d in range(nd):
            shape = [b] + [1] * nd
            shape[1 + d] = -1
            index.append(self.seed_pos[d].reshape(shape))
        index = [i.to(colour.device) for i in index]
        col = colour.permute((0,) + tuple(range(2, nd + 2)) + (1,))[tuple(index)]  # (B, *padded, C)
        pos = torch.stack(torch.broadcast_tensors(*[i.to(colour.dtype) for i in index[1:]]), dim=-1)
        scale = self.coord_scale.to(device=colour.device, dtype=colour.dtype).reshape((b,) + (1,) * nd + (nd,))
        cen = torch.cat([col, pos * scale], dim=-1).reshape(b * self.k, c + nd)
        return cen * self.valid[:, None]

    def _centre_rows(self, centres: torch.Tensor) -> torch.Tensor:
        """``(B * K, F + 2)`` rows such that a voxel's rows times a centre's row is their squared distance.

        Missing centres (padding of the grids) are pushed out of reach. Built once per pass, for
        the few hundred centres of each image; tiles gather their candidates' rows.
        """
        norm = centres.square().sum(dim=1, keepdim=True) + self.centre_penalty[:, None]
        return torch.cat([-2 * centres, norm, torch.ones_like(norm)], dim=1)

    def _nearest(self, rel: torch.Tensor, cand: torch.Tensor):
        """Yield ``(tile slice, candidate number of every voxel's nearest centre)`` chunk by chunk."""
        # a fixed number of bits (not one that follows m, which batch mates change) so that ties
        # resolve the same way whatever the batch
        bits = max(7, (self.m - 1).bit_length())
        low = torch.arange(self.m, device=rel.device, dtype=torch.int32).reshape(1, -1, 1)
        step = max(1, self.chunk_elements // (self.m * rel.shape[2]))
        for s in range(0, rel.shape[0], step):
            sl = slice(s, s + step)
            dist = torch.bmm(cand[sl], rel[sl])
            # the candidate number goes into the low mantissa bits: one integer min then gives
            # the argmin (ties within 2**-(23 - bits) relative go to the lower number)
            keys = dist.view(torch.int32).bitwise_and_(~((1 << bits) - 1)).bitwise_or_(low)
            yield sl, keys.amin(dim=1).bitwise_and_((1 << bits) - 1).long()

    def labels_of(self, rel: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """``(B * tiles, voxels)`` padded-grid label (``int32``) of every voxel's nearest candidate."""
        # filled chunk by chunk (no list of chunks to concatenate); labels are below K, small.
        # Candidate rows are gathered for groups of tiles: for a whole 3D batch they would take
        # about half the memory of ``rel`` itself
        rows = self._centre_rows(centres)
        out = torch.empty(rel.shape[0], rel.shape[2], dtype=torch.int32, device=rel.device)
        group = max(1, self.candidate_group_elements // (self.m * rows.shape[1]))
        for start in range(0, rel.shape[0], group):
            tiles = slice(start, start + group)
            ids = self.cand_global[tiles]
            cand = rows.index_select(0, ids.reshape(-1)).view(ids.shape + (rows.shape[1],))
            part, local_ids = out[tiles], self.cand[tiles]
            for sl, j in self._nearest(rel[tiles], cand):
                part[sl] = local_ids[sl].gather(1, j)
        return out

    def update(self, rel, absolute, centres) -> Tuple[torch.Tensor, torch.Tensor]:
        """One k-means iteration: assign voxels, move every centre to the mean of its voxels.

        Returns the new centres and the assignment they come from.
        """
        labels = self.labels_of(rel, centres) + self.tile_base
        f = absolute.shape[2]
        sums = torch.zeros(self.b * self.k, f, device=centres.device, dtype=centres.dtype)
        sums.index_add_(0, labels.reshape(-1), absolute.reshape(-1, f))
        count = sums[:, -1:]
        # a centre that lost all its voxels stays where it was, as in scikit-image
        return torch.where(count > 0, sums[:, :-1] / count.clamp_min(1), centres), labels

    def untile(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B * tiles, voxels)`` -> ``(B, *spatial)``."""
        nd, t = self.ndim, self.t
        view = [self.b] + self.tiles_per_axis + [t] * nd
        perm = [0] + [x for d in range(nd) for x in (1 + d, 1 + nd + d)]
        labels = labels.reshape(view).permute(perm).reshape([self.b] + [n * t for n in self.tiles_per_axis])
        return labels[(slice(None),) + tuple(slice(0, s) for s in self.spatial)]


def _absorb_specks(labels: torch.Tensor, colour: torch.Tensor, centres: torch.Tensor, layout: "_Layout") -> torch.Tensor:
    """Give every one-voxel fragment the label of its nearest adjacent superpixel.

    On noisy images with a small compactness most fragments k-means leaves are single voxels
    whose face neighbours all carry other labels (thousands per image). Each joins the adjacent
    label whose centre is nearest in the SLIC distance, the one-voxel case of the fragment
    merging below, done here in one vectorised pass so the general merge sees far fewer
    components. Returns batch-global labels (``b * K + label``).
    """
    b = labels.shape[0]
    spatial = labels.shape[1:]
    nd = len(spatial)
    labels = labels + (torch.arange(b, device=labels.device) * layout.k).view((b,) + (1,) * nd)
    speck = torch.ones_like(labels, dtype=torch.bool)
    for lo, hi in _neighbour_pairs(nd, spatial):
        differ = labels[lo] != labels[hi]
        speck[lo] &= differ
        speck[hi] &= differ
    where = speck.reshape(-1).nonzero().squeeze(1)
    if where.numel() == 0:
        return labels
    flat = labels.reshape(-1)
    strides = [math.prod(spatial[d + 1 :]) for d in range(nd)]
    image = torch.div(where, math.prod(spatial), rounding_mode="floor")
    coords = [torch.div(where, strides[d], rounding_mode="floor") % spatial[d] for d in range(nd)]
    c = colour.shape[1]
    # the specks' colours only, read through a channels-last view (no channels-last copy)
    voxel_colour = colour.reshape(b, c, -1).transpose(1, 2)[image, where - image * math.prod(spatial)]
    scale = layout.coord_scale.to(device=colour.device, dtype=colour.dtype)[image]
    feats = torch.cat([voxel_colour, torch.stack(coords, dim=1).to(colour.dtype) * scale], dim=1)
    best = torch.full((where.numel(),), float("inf"), device=colour.device, dtype=colour.dtype)
    choice = flat.index_select(0, where)
    for d in range(nd):
        for sign in (-1, 1):
            inside = (coords[d] + sign >= 0) & (coords[d] + sign < spatial[d])
            other = flat.index_select(0, torch.where(inside, where + sign * strides[d], where))
            dist = (feats - centres.index_select(0, other)).square().sum(dim=1)
            dist = torch.where(inside, dist, torch.full_like(dist, float("inf")))
            closer = dist < best
            best = torch.where(closer, dist, best)
            choice = torch.where(closer, other, choice)
    flat = flat.clone()
    flat[where] = choice
    return flat.view(labels.shape)


def _neighbour_pairs(ndim: int, spatial):
    """Slices selecting each voxel and its next neighbour along every axis (face connectivity)."""
    for d in range(ndim):
        lo = [slice(None)] * (ndim + 1)
        hi = [slice(None)] * (ndim + 1)
        lo[d + 1] = slice(0, spatial[d] - 1)
        hi[d + 1] = slice(1, spatial[d])
        yield tuple(lo), tuple(hi)


def _where_both(a: torch.Tensor, c: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``a[mask]`` and ``c[mask]`` for a sparse mask over strided views.

    One ``nonzero`` serves both selections (twice as fast as two ``masked_select`` scans of
    strided views on the CPU); the index arrays are as small as the selection.
    """
    where = mask.nonzero().unbind(1)
    return a[where], c[where]


def _connected_components(labels: torch.Tensor) -> torch.Tensor:
    """Component id per voxel: the smallest batch-global flat index in its connected component.

    Runs of equal labels along the last (contiguous) axis are the graph's nodes, several times
    fewer than voxels. Two runs in neighbouring lines along another axis are joined when they
    overlap with equal labels; each such pair is found once, at the first voxel of the overlap,
    where one of the two runs starts. Components of that graph come from hooking every root to
    the smallest root across its edges and pointer jumping (``comp = comp[comp]``) to the fixed
    point; the smallest node of a component holds its smallest voxel, the first of its run.
    """
    spatial = labels.shape[1:]
    total = labels.numel()
    device = labels.device
    flat = labels.reshape(-1)
    start = torch.ones(total, dtype=torch.bool, device=device)
    start[1:] = flat[1:] != flat[:-1]
    start[:: spatial[-1]] = True
    node = start.cumsum(0).sub_(1).view(labels.shape)
    first_voxel = start.nonzero().squeeze(1)
    start = start.view(labels.shape)
    firsts, seconds = [], []
    for lo, hi in list(_neighbour_pairs(len(spatial), spatial))[:-1]:
        first, second = _where_both(node[lo], node[hi], (labels[lo] == labels[hi]) & (start[lo] | start[hi]))
        firsts.append(first)
        seconds.append(second)
    del start
    a, c = torch.cat(firsts), torch.cat(seconds)
    del firsts, seconds
    comp = torch.arange(first_voxel.numel(), device=device)
    while True:
        ca, cc = comp.gather(0, a), comp.gather(0, c)
        low = torch.minimum(ca, cc)
        hooked = comp.scatter_reduce(0, ca, low, reduce="amin").scatter_reduce_(0, cc, low, reduce="amin")
        del ca, cc, low
        while True:
            jumped = hooked.gather(0, hooked)
            if torch.equal(jumped, hooked):
                break
            hooked = jumped
        if torch.equal(hooked, comp):
            break
        comp = hooked
    return first_voxel.gather(0, comp).gather(0, node.reshape(-1)).view(labels.shape)


def _merge_small_fragments(labels: torch.Tensor, colour: torch.Tensor, min_size: torch.Tensor) -> torch.Tensor:
    """Split labels into connected components and merge the small ones into a neighbour.

    A component is small when it has fewer than ``min_size[b]`` voxels. It joins the adjacent
    component, among those ranking higher by (size, id), whose mean colour is closest: merging
    across an intensity edge would wipe out a true boundary. Requiring a higher rank means merges
    never form cycles, and chains of small components collapse by following their targets.
    Returns batch-global component ids.

    Only boundaries touching a small component can ever matter (a merged group of small
    components has no other boundaries), so they are collected once; later rounds work on
    component-level sums.
    """
    spatial = labels.shape[1:]
    n = math.prod(spatial)
    total = labels.numel()
    device = labels.device
    comp = _connected_components(labels)
    # number the components 0..k-1 so that per-component arrays are small
    roots = (comp.reshape(-1) == torch.arange(total, device=device)).nonzero().squeeze(1)
    number = torch.zeros(total, dtype=torch.long, device=device)
    number[roots] = torch.arange(roots.numel(), device=device)
    comp = number.gather(0, comp.reshape(-1)).view(comp.shape)
    flat = comp.reshape(-1)
    k = roots.numel()
    size = torch.bincount(flat, minlength=k)
    limit = min_size.gather(0, torch.div(roots, n, rounding_mode="floor"))
    small = size < limit
    if bool(small.any()):
        target = _merge_targets(comp, colour, size, small, limit)
        flat = target.gather(0, flat)
    # back to batch-global voxel ids (each component's first voxel), as _contiguous expects
    return roots.gather(0, flat).view(comp.shape)


def _merge_targets(comp, colour, size, small, limit) -> torch.Tensor:
    """Component -> component it ends up in after merging (see :func:`_merge_small_fragments`)."""
    spatial = comp.shape[1:]
    flat = comp.reshape(-1)
    k = size.numel()
    small_voxel = small.gather(0, flat).view(comp.shape)
    # a boundary between two components runs along many voxel pairs: keep each pair of
    # components once, which shrinks every later array from voxel pairs to component pairs.
    # Components are constant along runs of the last axis, so across any other axis a pair of
    # runs first meets where one of them starts: only those voxel pairs are kept (as in
    # _connected_components), and the rest are deduplicated axis by axis
    start = torch.ones(flat.numel(), dtype=torch.bool, device=comp.device)
    start[1:] = flat[1:] != flat[:-1]
    start[:: spatial[-1]] = True
    start = start.view(comp.shape)
    pairs = []
    for axis, (lo, hi) in enumerate(_neighbour_pairs(len(spatial), spatial)):
        a, c = comp[lo], comp[hi]
        touching = (small_voxel[lo] | small_voxel[hi]) & (a != c)
        if axis < len(spatial) - 1:
            touching &= start[lo] | start[hi]
        first, second = _where_both(a, c, touching)
        del touching
        pairs.append(torch.unique(first.mul_(k).add_(second)))
        del first, second
    del start
    pair = torch.unique(torch.cat(pairs))
    del pairs
    first, second = torch.div(pair, k, rounding_mode="floor"), torch.remainder(pair, k)
    # per-channel scatter-adds: twice as fast as bincount with weights, which sums in float64;
    # float32 sums drift by under 0.1% of the colour range on a 2M-voxel component, far below
    # what separates the colours of merge candidates
    channels = [colour.new_zeros(k).scatter_add_(0, flat, colour[:, ch].reshape(-1)) for ch in range(colour.shape[1])]
    colour_sum = torch.stack(channels, dim=1)
    ids = torch.arange(k, device=comp.device)
    target = ids.clone()
    none = torch.iinfo(torch.int64).max
    for _ in range(8):
        mean = colour_sum / size.clamp_min(1)[:, None].to(colour_sum.dtype)
        a, c = target[first], target[second]
        keep = a != c
        a, c = a[keep], c[keep]
        rank = size * k + ids
        up = rank[c] > rank[a]
        src = torch.where(up, a, c)
        dst = torch.where(up, c, a)
        # non-negative float32 bits order like the floats: pack (distance, id) into one key
        dist = (mean[src] - mean[dst]).square().sum(dim=1).float().view(torch.int32).long()
        best = torch.full((k,), none, dtype=torch.long, device=comp.device)
        best.scatter_reduce_(0, src, dist * k + dst, reduce="amin")
        movable = (small & (best != none)).nonzero().squeeze(1)
        if movable.numel() == 0:
            break
        step = ids.clone()
        step[movable] = torch.remainder(best[movable], k)
        for _ in range(64):
            nxt = step[step[movable]]
            if torch.equal(nxt, step[movable]):
                break
            step[movable] = nxt
        # move sizes and colour sums to the merge targets, then compose the mapping
        size = torch.zeros_like(size).index_add_(0, step, size)
        colour_sum = torch.zeros_like(colour_sum).index_add_(0, step, colour_sum)
        target = step[target]
        small = (size < limit) & (size > 0)
        if not bool(small.any()):
            break
        # boundaries inside a merged group, or between two big components, are done with
        a, c = target[first], target[second]
        live = (a != c) & (small[a] | small[c])
        first, second = first[live], second[live]
    return target


def _contiguous(ids: torch.Tensor) -> torch.Tensor:
    """Relabel row ``b`` of ``(B, N)`` ids in ``[b * N, (b + 1) * N)`` to ``0..k-1``, keeping their order."""
    b, n = ids.shape
    local = ids - torch.arange(b, device=ids.device)[:, None] * n
    present = torch.zeros(b, n, dtype=torch.long, device=ids.device)
    present.scatter_(1, local, 1)
    rank = present.cumsum(dim=1) - 1
    return rank.gather(1, local)

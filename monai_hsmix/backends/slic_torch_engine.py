"""The torch engine of SLIC: batched torch operations, what a GPU runs (``engine="torch"``).

:mod:`~monai_hsmix.backends.slic_plan` decides the seed grid, pooling, scaling and first centres;
this module clusters with them. Where it differs from scikit-image's loops, and why:

* **Candidate centres.** scikit-image lets every centre claim voxels within two grid steps of its
  current position. Here voxels are grouped in tiles, and a tile's voxels compare the centres
  seeded in the cells the tile meets plus one cell on either side along every axis: each voxel
  sees at least the 3x3 (3x3x3) cells around its own, and seeds up to two cells away (as in
  scikit-image) when cells are at least 8 voxels wide, three (or more, for cells under 3
  voxels) when they are narrower: tiles must hold enough voxels to be worth their candidate
  rows. Centres rarely drift more than a cell in ten iterations. Distances are small batched
  matrix products, computed chunk by chunk with a packed integer argmin: memory stays linear
  in the voxel count (no voxels x 27 tensor).
* **Expanded distances.** The squared distance ``|x|^2 - 2 x.c + |c|^2`` is one matrix product of
  voxel rows and candidate rows. Positions are relative to each tile's origin (candidates' too), so
  the squared norms stay small and float32 keeps colour differences of a few hundredths; at small
  compactness colours reach hundreds and the expansion loses a little precision to rounding,
  which left boundary recall unchanged against exact per-tile features (``docs/performance.md``).
* **Batch mates.** Images that share a pooling and tile size are clustered together; inside such a
  group every image keeps its own candidate window (extra columns point at an invalid centre) and
  ties resolve with a fixed number of bits. An image therefore gets the same superpixels alone and
  in any batch. Different segment counts per image are handled by padding every image's centre
  grid to the largest grid in the batch and giving the padding centres an out-of-reach distance.

Sampled means, the fixed-point stop, speck absorption and the merging of small fragments are
described in :mod:`~monai_hsmix.backends.torch_slic`.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

from monai_hsmix.backends.slic_plan import (
    MAX_TILE,
    MERGE_ROUNDS,
    SAMPLED_MIN_STEP,
    SeedGrid,
    cells_met,
    repeat_to_full_size,
    scaled_colour,
    tile_size,
)
from monai_hsmix.core.labels import relabel_contiguous

__all__ = ["CANDIDATE_GROUP_ELEMENTS", "CHUNK_ELEMENTS", "DEVICE_ELEMENTS", "cluster", "connected_components"]

CHUNK_ELEMENTS = 1 << 18  # distance entries computed at once on a CPU: 1 MiB, stays in cache
CANDIDATE_GROUP_ELEMENTS = 1 << 20  # candidate-row entries built at once on a CPU: 4 MiB
# on a GPU each chunk is a handful of kernel launches, which cost more there than the work itself
# (docs/performance.md): one chunk per pass, up to 128 MiB of entries
DEVICE_ELEMENTS = 1 << 25


def cluster(images, counts, compactness, spacing, max_num_iter, config, lab) -> torch.Tensor:
    """SLIC on images that share a configuration ``(pooling factors, tile size)``."""
    factors, tile = config
    b = images.shape[0]
    full = tuple(images.shape[2:])
    colour = scaled_colour(images, compactness, factors, lab)
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
    # components are named by batch-global voxel ids: local ids keep relabelling on its fast path
    n = math.prod(spatial)
    local = labels.reshape(b, -1) - torch.arange(b, device=labels.device)[:, None] * n
    labels = relabel_contiguous(local).reshape((b,) + spatial)
    return repeat_to_full_size(labels, factors, full)


def _unchanged(assigned: torch.Tensor, previous: torch.Tensor) -> bool:
    """Whether a k-means assignment repeats the previous one (a fixed point: iterating is done)."""
    return torch.equal(assigned, previous)


class _Layout:
    """Seed grids of every image, and the tiling of the batch into candidate-sharing blocks.

    The batch is cut into cubic tiles of ``t`` voxels per axis. The centres seeded in the cells a
    tile meets, and one more cell on either side along every axis, are the candidates of all
    the tile's voxels: every voxel sees at least the 3 x 3 (x 3) cells around its own, and, in a
    tile meeting ``r`` cells along an axis, cells up to ``r`` away along it. Distances of a
    tile's voxels to its candidates are then one small matrix product, and the nearest
    candidate one integer reduction. Tiles as large as the reach allows (see
    :func:`~monai_hsmix.backends.slic_plan.tile_size`) keep the per-tile work (building
    candidate rows) small next to the per-voxel work.
    """

    def __init__(self, spatial, counts, spacing, device, full_spatial=None, factors=None, tile=None):
        ndim = len(spatial)
        b = len(counts)
        # the seed grid is scikit-image's grid of the full-size image. Distances are measured in
        # full-size voxels against the full-size grid step, so a pooled image keeps
        # scikit-image's meaning of compactness
        factors = (1,) * ndim if factors is None else tuple(factors)
        full_spatial = tuple(spatial) if full_spatial is None else tuple(full_spatial)
        grid = SeedGrid(full_spatial, spatial, counts, factors)
        per_axis, steps, cell_of = grid.per_axis, grid.steps, grid.cell_of
        spacing = tuple(s * f for s, f in zip(spacing, factors))
        self.spatial, self.ndim, self.b, self.device = tuple(spatial), ndim, b, device
        on_cpu = torch.device(device).type == "cpu"
        self.chunk_elements = CHUNK_ELEMENTS if on_cpu else DEVICE_ELEMENTS
        self.candidate_group_elements = CANDIDATE_GROUP_ELEMENTS if on_cpu else DEVICE_ELEMENTS
        self.grid = grid
        self.coord_scale = torch.tensor(spacing, dtype=torch.float64)[None] / grid.scalar_step[:, None]  # (B, ndim)
        if tile is None:
            tile = tile_size(spatial, cell_of, float(steps.min()), MAX_TILE[ndim])
        self.t = tile
        # images whose cells are at least 4 voxels wide estimate their centres from every other
        # voxel along each axis; decided per image so that no image depends on its batch mates
        self.sampled = (steps.min(dim=1).values >= SAMPLED_MIN_STEP).to(device)
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
        own = cells_met(spatial, cell_of, self.t) + 2  # (B, ndim)
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

        # which padded-grid centres exist
        valid = torch.ones((b,) + tuple(self.padded), dtype=torch.bool)
        for d in range(ndim):
            g = torch.arange(self.padded[d])[None] - 1
            ok = (g >= 0) & (g < per_axis[:, d : d + 1])
            shape = [b] + [1] * ndim
            shape[1 + d] = -1
            valid = valid & ok.reshape(shape)
        self.grid_strides = grid_strides
        self.valid = valid.reshape(b * self.k).to(device)
        self.centre_penalty = torch.where(self.valid, 0.0, 1e30)
        self.tile_base = (torch.arange(b, device=device) * self.k).repeat_interleave(self.n_tiles)[:, None]

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
        # positions relative to the tile's origin (scaled): small numbers, so the expanded distance
        # keeps the precision that colour differences of a few hundredths need (see _candidate_rows)
        self.offset = self.origin.to(device=dev, dtype=dt).repeat(b, 1) * scale  # (B * tiles, ndim)
        coords = torch.stack(local)[None] * scale[:, :, None]
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

    def _absolute(self, rel: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """``(tiles, voxels, F + 1)`` rows (colour, scaled position, 1) whose sums give centres."""
        f = rel.shape[1] - 2
        absolute = torch.cat([rel[:, :f] * inside, inside], dim=1)
        # back from tile-relative to absolute positions: centres are means over many tiles
        absolute[:, f - self.ndim : f].addcmul_(self.offset[:, :, None], inside)
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
        """``(B * K, F)`` absolute centre features (colour, scaled position); invalid ones are 0.

        The means of the cells of the colour-free first assignment (``SeedGrid.first_cell``). A
        cell is a product of per-axis intervals, so its mean position is the per-axis means and
        its size the product of the per-axis counts; only the colour sums need a pass over voxels.
        """
        b, c = colour.shape[:2]
        nd, dev, dt = self.ndim, colour.device, colour.dtype
        ids = (torch.arange(b, device=dev) * self.k).view((b,) + (1,) * nd)
        size = torch.ones((b,) + tuple(self.padded), dtype=torch.float64)
        pos = []
        for d in range(nd):
            shape = [b] + [1] * nd
            shape[1 + d] = -1
            first = self.grid.first_cell[d] + 1  # padded-grid index: 0 is the invalid centre before the grid
            ids = ids + (first * self.grid_strides[d]).to(dev).reshape(shape)
            count = torch.zeros(b, self.padded[d], dtype=torch.float64).scatter_add_(
                1, first, torch.ones(first.shape, dtype=torch.float64)
            )
            total = torch.zeros(b, self.padded[d], dtype=torch.float64).scatter_add_(
                1, first, torch.arange(self.spatial[d], dtype=torch.float64).expand(first.shape)
            )
            size = size * count.reshape(shape)
            pos.append(
                (total / count.clamp_min(1) * self.coord_scale[:, d : d + 1])
                .reshape(shape)
                .expand((b,) + tuple(self.padded))
            )
        flat = ids.expand((b,) + tuple(self.spatial)).reshape(-1)
        col = [
            torch.zeros(b * self.k, dtype=dt, device=dev).scatter_add_(0, flat, colour[:, ch].reshape(-1))
            for ch in range(c)
        ]
        col = torch.stack(col, dim=1) / size.reshape(-1, 1).clamp_min(1).to(device=dev, dtype=dt)
        pos = torch.stack(pos, dim=-1).reshape(b * self.k, nd).to(device=dev, dtype=dt)
        return torch.cat([col, pos], dim=1) * self.valid[:, None]

    def _candidate_rows(self, centres: torch.Tensor, tiles: slice) -> torch.Tensor:
        """``(tiles, m, F + 2)`` rows such that a voxel's rows times a candidate's row is their squared distance.

        Positions are taken relative to each tile's origin, as the voxels' are: with absolute
        positions the squared norms of a large image reach thousands while colour differences
        at compactness 10 are hundredths, and float32 (with the argmin's low bits) lost them,
        which let thick-slice supervoxels drift apart along the thick axis (scikit-image keeps
        them whole). Missing centres (padding of the grids) are pushed out of reach.
        """
        ids = self.cand_global[tiles]
        cen = centres.index_select(0, ids.reshape(-1)).view(ids.shape + (centres.shape[1],))
        penalty = self.centre_penalty.index_select(0, ids.reshape(-1)).view(ids.shape + (1,))
        c = centres.shape[1] - self.ndim
        cen[..., c:] -= self.offset[tiles][:, None, :]
        norm = cen.square().sum(dim=2, keepdim=True) + penalty
        return torch.cat([cen.mul_(-2), norm, torch.ones_like(norm)], dim=2)

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
        out = torch.empty(rel.shape[0], rel.shape[2], dtype=torch.int32, device=rel.device)
        group = max(1, self.candidate_group_elements // (self.m * (centres.shape[1] + 2)))
        for start in range(0, rel.shape[0], group):
            tiles = slice(start, start + group)
            cand = self._candidate_rows(centres, tiles)
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


def _absorb_specks(
    labels: torch.Tensor, colour: torch.Tensor, centres: torch.Tensor, layout: "_Layout"
) -> torch.Tensor:
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


def connected_components(labels: torch.Tensor) -> torch.Tensor:
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
    comp = connected_components(labels)
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
    # back to batch-global voxel ids (each component's first voxel)
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
    # connected_components), and the rest are deduplicated axis by axis
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
    for _ in range(MERGE_ROUNDS):
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

"""The numba engine of SLIC: fused CPU loops, what a CPU runs (``engine="numba"``, the CPU default).

The clustering is the one :mod:`monai_hsmix.backends.torch_slic` documents, from the plan of
:mod:`monai_hsmix.backends.slic_plan` (scikit-image's seed grid and distance, the colour-free first
assignment, the same pooling, sampled means, fixed-point stop, speck absorption and merging of
small fragments by colour), written voxel by voxel. The torch operations pay for
every pass over memory and every dispatch; here one pass per iteration does the whole
assignment, with each voxel's features loaded once and the candidate distances kept in
registers, so a CPU spends its time on arithmetic.

Every image is clustered on its own (its own seed grid and candidate window), so an image gets
the same superpixels alone and in any batch. A 2D image is a volume of depth 1. Each voxel
compares the centres seeded in the cells within ``reach`` of its own cell along every axis:
one cell when cells are at least 4 voxels wide, two when they are narrower (the torch path's
tiles give 1 to 2; scikit-image searches two grid steps).
"""

from __future__ import annotations

import functools
from typing import Sequence, Tuple

import numba
import numpy as np
import torch

from monai_hsmix.backends.slic_plan import MERGE_ROUNDS, SAMPLED_MIN_STEP, SeedGrid, scaled_colour
from monai_hsmix.core.labels import relabel_contiguous
from monai_hsmix.core.numba_mixing import first_compile_lock

__all__ = ["cluster", "components", "image_plan", "kmeans", "plan_for", "slic_labels"]

_NARROW_CELL = 4  # narrower cells (voxels) look two cells away, not one


def cluster(
    images: torch.Tensor,
    counts: torch.Tensor,
    compactness: float,
    spacing: Tuple[float, ...],
    max_num_iter: int,
    config: tuple,
    lab: bool,
) -> torch.Tensor:
    """SLIC of a CPU batch whose images share ``config`` (pooling factors; the tile size does not apply).

    The engine's entry point for :func:`~monai_hsmix.backends.torch_slic.torch_slic`, which has
    checked every argument.
    """
    factors, _ = config
    full = tuple(images.shape[2:])
    colour = scaled_colour(images, compactness, factors, lab)
    plans = [plan_for(full, int(n), spacing, factors) for n in counts.tolist()]
    labels = torch.from_numpy(slic_labels(colour.contiguous().numpy(), plans, max_num_iter, factors, full))
    return relabel_contiguous(labels.reshape(labels.shape[0], -1)).reshape(labels.shape)


@functools.lru_cache(maxsize=4096)
def plan_for(full: Tuple[int, ...], count: int, spacing: Tuple[float, ...], factors: Tuple[int, ...]) -> tuple:
    """The seed grid of one image as the kernels take it (cached: counts repeat)."""
    spatial = tuple(-(-size // f) for size, f in zip(full, factors))
    grid = SeedGrid(full, spatial, torch.tensor([count]), factors)
    coord_scale = [s * f / float(grid.scalar_step[0]) for s, f in zip(spacing, factors)]
    min_size = int(grid.min_fragment_size(spatial)[0])
    return image_plan(
        [c[0].numpy() for c in grid.cell_of],
        [c[0].numpy() for c in grid.first_cell],
        grid.per_axis[0].tolist(),
        coord_scale,
        grid.steps[0].tolist(),
        min_size,
    )


def slic_labels(
    colour: np.ndarray, plans: Sequence[tuple], max_num_iter: int, factors: Sequence[int], full: Sequence[int]
) -> np.ndarray:
    """Superpixel labels of a batch of (pooled, scaled) feature images, at full size.

    Parameters
    ----------
    colour : numpy.ndarray
        ``(B, C, *spatial)`` float32 features (colours divided by the compactness), pooled by
        ``factors``.
    plans : sequence of tuple
        Per image, what :func:`image_plan` returns for its seed grid.
    max_num_iter : int
        Largest number of k-means iterations.
    factors : sequence of int
        Pooling factor (1 or 2) per spatial axis.
    full : sequence of int
        The images' full spatial size; each pooled voxel's label goes to the voxels it pooled.

    Returns
    -------
    numpy.ndarray
        ``(B, *full)`` int64 labels in ``[0, voxels)``, ordered by the first voxel of their
        superpixel but with gaps (:func:`cluster` relabels them contiguously).
    """
    b, c_n = colour.shape[:2]
    nd = colour.ndim - 2
    lead = (1,) * (3 - nd)
    if len(plans) != b or len(factors) != nd or len(full) != nd:
        raise ValueError(f"{len(plans)} plans, {len(factors)} factors and {len(full)}-D size for {b} {nd}-D images")
    if tuple(colour.shape[2:]) != tuple(-(-n // f) for n, f in zip(full, factors)):
        raise ValueError(
            f"pooled size {tuple(colour.shape[2:])} does not match {tuple(full)} pooled by {tuple(factors)}"
        )
    for plan in plans:
        _check_plan(plan, lead + tuple(colour.shape[2:]))
    out = np.empty((b,) + tuple(full), dtype=np.int64)
    f = np.array(lead + tuple(factors), dtype=np.int64)
    for i in range(b):
        feat = colour[i].reshape((c_n,) + lead + colour.shape[2:])
        with first_compile_lock("slic"):
            labels = _slic_one(feat, *plans[i], max_num_iter)
            _repeat_into(labels, out[i].reshape(lead + tuple(full)), f)
    return out


def image_plan(
    cell_of: Sequence[np.ndarray],
    first_cell: Sequence[np.ndarray],
    per_axis: Sequence[int],
    coord_scale: Sequence[float],
    steps: Sequence[float],
    min_size: int,
) -> tuple:
    """The per-image arguments of the kernels, for a 2D or 3D seed grid (2D gets a depth-1 axis).

    Parameters
    ----------
    cell_of : sequence of numpy.ndarray
        Per axis, the index of each coordinate's nearest seed cell (the candidate window's centre).
    first_cell : sequence of numpy.ndarray
        Per axis, each coordinate's cell in the colour-free first assignment (see
        :class:`~monai_hsmix.backends.slic_plan.SeedGrid`).
    per_axis : sequence of int
        Per axis, the number of seeds.
    coord_scale : sequence of float
        Per axis, the factor from a voxel coordinate to its scaled position.
    steps : sequence of float
        Per axis, the seed grid step in voxels.
    min_size : int
        Components with fewer voxels are merged into a neighbour.
    """
    lead = 3 - len(cell_of)
    zero = [np.zeros(1, dtype=np.int64)] * lead
    cells = zero + [np.ascontiguousarray(c, dtype=np.int64) for c in cell_of]
    firsts = zero + [np.ascontiguousarray(c, dtype=np.int64) for c in first_cell]
    counts = np.array([1] * lead + [int(n) for n in per_axis], dtype=np.int64)
    scale = np.array([0.0] * lead + [float(s) for s in coord_scale])
    reach = np.array([1] * lead + [1 if s >= _NARROW_CELL else 2 for s in steps], dtype=np.int64)
    sampled = bool(min(steps) >= SAMPLED_MIN_STEP)
    return (scale, cells[0], cells[1], cells[2], counts, firsts[0], firsts[1], firsts[2], reach, sampled, int(min_size))


def _check_plan(plan: tuple, shape: Tuple[int, int, int]) -> None:
    """Raise unless every index the kernels take from ``plan`` lies inside its arrays for an image of
    ``shape`` (3 axes): the kernels index with these values unchecked.

    Every voxel's cells (candidate window and first assignment) must lie in the seed grid, and the
    reach within the grid's bounds checks (any reach is safe: candidates past the grid are
    skipped). A few thousand values per image, not one per voxel.
    """
    scale, cell_z, cell_y, cell_x, per_axis, first_z, first_y, first_x, reach, _, min_size = plan
    for axis, (cells, firsts, size) in enumerate(zip((cell_z, cell_y, cell_x), (first_z, first_y, first_x), shape)):
        count = int(per_axis[axis])
        if (
            count < 1
            or len(cells) != size
            or len(firsts) != size
            or int(cells.min()) < 0
            or int(cells.max()) >= count
            or int(firsts.min()) < 0
            or int(firsts.max()) >= count
        ):
            raise ValueError(f"seed grid of axis {axis} does not fit an image of {size} voxels along it")
    if len(scale) != 3 or len(reach) != 3 or int(reach.min()) < 0 or not np.isfinite(scale).all():
        raise ValueError(f"invalid coordinate scale {scale} or reach {reach}")


@numba.njit(cache=True, nogil=True)
def _repeat_into(labels, out, factors):
    nz, ny, nx = out.shape
    for z in range(nz):
        for y in range(ny):
            src = labels[z // factors[0], y // factors[1]]
            dst = out[z, y]
            for x in range(nx):
                dst[x] = src[x // factors[2]]


def _slic_one(
    feat, scale, cell_z, cell_y, cell_x, per_axis, first_z, first_y, first_x, reach, sampled, min_size, max_num_iter
):
    """SLIC of one image: k-means, specks, small fragments, each a kernel called from Python.

    Python glue rather than a compiled driver, because a compiled caller links and optimises again
    every kernel below it, which a fresh install's first call pays for, while three calls per image
    from Python cost next to nothing (figures in docs/performance.md). Kernels called once from
    another are inlined by numba (``inline="always"``) for the same reason.
    """
    labels, cen_col, cen_pos, _ = kmeans(
        feat, scale, cell_z, cell_y, cell_x, per_axis, first_z, first_y, first_x, reach, sampled, max_num_iter, True
    )
    labels = _absorb_specks(labels, feat, cen_col, cen_pos, scale)
    return _merge_small_fragments(labels, feat, min_size)


@numba.njit(cache=True, nogil=True)
def kmeans(
    feat,
    scale,
    cell_z,
    cell_y,
    cell_x,
    per_axis,
    first_z,
    first_y,
    first_x,
    reach,
    sampled,
    max_num_iter,
    stop_at_fixed_point,
):
    """k-means from the means of the colour-free first assignment: the final labels of every voxel,
    the centres they come from, and how many iterations ran before the last assignment."""
    c_n, nz, ny, nx = feat.shape
    gz, gy, gx = per_axis[0], per_axis[1], per_axis[2]
    k_n = gz * gy * gx
    cen_col = np.empty((k_n, c_n), dtype=np.float32)
    cen_pos = np.empty((k_n, 3), dtype=np.float32)
    first = np.zeros((k_n, c_n + 4))
    for z in range(nz):
        for y in range(ny):
            row = (first_z[z] * gy + first_y[y]) * gx
            for x in range(nx):
                k = row + first_x[x]
                for c in range(c_n):
                    first[k, c] += feat[c, z, y, x]
                first[k, c_n] += z
                first[k, c_n + 1] += y
                first[k, c_n + 2] += x
                first[k, c_n + 3] += 1.0
    for k in range(k_n):
        n = max(first[k, c_n + 3], 1.0)  # every cell holds its own seed: never 0 for a checked plan
        for c in range(c_n):
            cen_col[k, c] = first[k, c] / n
        for a in range(3):
            cen_pos[k, a] = first[k, c_n + a] / n * scale[a]
    # iterations before the last assign the voxels with even coordinates only (when sampled):
    # they form a smaller image of their own, whose voxels sit at twice their index
    stride = 2 if sampled else 1
    # contiguous copies written element by element, as the full-size cells are: one compiled
    # version of _assign, not two (strided slices and np.ascontiguousarray or np.full would also
    # compile numba's generic array code into a fresh install's first call)
    sz, sy, sx = -(-nz // stride), -(-ny // stride), -(-nx // stride)
    sub = np.empty((c_n, sz, sy, sx), dtype=np.float32)
    for c in range(c_n):
        for z in range(sz):
            for y in range(sy):
                for x in range(sx):
                    sub[c, z, y, x] = feat[c, z * stride, y * stride, x * stride]
    sub_z = _every(cell_z, stride, sz)
    sub_y = _every(cell_y, stride, sy)
    sub_x = _every(cell_x, stride, sx)
    pos_z = _positions(sz, stride * scale[0])
    pos_y = _positions(sy, stride * scale[1])
    pos_x = _positions(sx, stride * scale[2])
    labels = np.empty((sz, sy, sx), dtype=np.int64)
    # flat views for whole-array copies and comparisons: array-to-array slice assignment and
    # np.array_equal compile numba's shape-mismatch error formatting (strings), seconds of a
    # fresh install's first call for two lines
    flat_labels = labels.reshape(-1)
    for i in range(flat_labels.shape[0]):
        flat_labels[i] = -1
    previous = np.empty(flat_labels.shape[0], dtype=np.int64)
    best = np.empty((sz, sy, sx), dtype=np.float32)
    sums = np.empty((k_n, c_n + 4))
    iterations = 0
    for _ in range(max_num_iter - 1):
        iterations += 1
        for i in range(flat_labels.shape[0]):
            previous[i] = flat_labels[i]
        _assign(sub, pos_z, pos_y, pos_x, best, labels, cen_col, cen_pos, sub_z, sub_y, sub_x, per_axis, reach)
        # means of the voxels just assigned; a centre that lost every voxel stays (scikit-image)
        sums[:] = 0.0
        for z in range(sub.shape[1]):
            for y in range(sub.shape[2]):
                for x in range(sub.shape[3]):
                    k = labels[z, y, x]
                    for c in range(c_n):
                        sums[k, c] += sub[c, z, y, x]
                    sums[k, c_n] += pos_z[z]
                    sums[k, c_n + 1] += pos_y[y]
                    sums[k, c_n + 2] += pos_x[x]
                    sums[k, c_n + 3] += 1.0
        for k in range(k_n):
            n = sums[k, c_n + 3]
            if n > 0:
                for c in range(c_n):
                    cen_col[k, c] = sums[k, c] / n
                for a in range(3):
                    cen_pos[k, a] = sums[k, c_n + a] / n
        if stop_at_fixed_point:
            same = True
            for i in range(flat_labels.shape[0]):
                if flat_labels[i] != previous[i]:
                    same = False
                    break
            if same:
                break  # a fixed point: further iterations would repeat this assignment
    labels = np.empty((nz, ny, nx), dtype=np.int64)
    best = np.empty((nz, ny, nx), dtype=np.float32)
    _assign(
        feat,
        _positions(nz, scale[0]),
        _positions(ny, scale[1]),
        _positions(nx, scale[2]),
        best,
        labels,
        cen_col,
        cen_pos,
        cell_z,
        cell_y,
        cell_x,
        per_axis,
        reach,
    )
    return labels, cen_col, cen_pos, iterations


@numba.njit(cache=True, nogil=True, inline="always")
def _every(values, stride, n):
    """``values[::stride]`` (``n`` of them) as a new contiguous array."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = values[i * stride]
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _positions(n, scale):
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        out[i] = i * scale
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _expanded_centres(cen_col, cen_pos, per_axis, cell_x, rx):
    """Candidate centres laid out along the last axis: ``out[iz, iy, j, :, x]`` holds the features
    (colour, position) of the centre in cell ``(iz, iy, cell_x[x] + j - rx)``.

    Built once per iteration (a few thousand values), so the assignment reads candidates as
    contiguous rows instead of gathering them voxel by voxel. Missing cells (past the grid's
    edge) get an infinite position: their distance is infinite.
    """
    k_n, c_n = cen_col.shape
    gz, gy, gx = per_axis[0], per_axis[1], per_axis[2]
    nx = cell_x.shape[0]
    out = np.empty((gz, gy, 2 * rx + 1, c_n + 3, nx), dtype=np.float32)
    for iz in range(gz):
        for iy in range(gy):
            row = (iz * gy + iy) * gx
            for j in range(2 * rx + 1):
                for x in range(nx):
                    ix = cell_x[x] + j - rx
                    if 0 <= ix < gx:
                        k = row + ix
                        for c in range(c_n):
                            out[iz, iy, j, c, x] = cen_col[k, c]
                        for a in range(3):
                            out[iz, iy, j, c_n + a, x] = cen_pos[k, a]
                    else:
                        for c in range(c_n + 3):
                            out[iz, iy, j, c, x] = 0.0
                        out[iz, iy, j, c_n, x] = np.inf
    return out


@numba.njit(cache=True, nogil=True)
def _assign(feat, pos_z, pos_y, pos_x, best, labels, cen_col, cen_pos, cell_z, cell_y, cell_x, per_axis, reach):
    """Nearest candidate centre of every voxel, in place: the centres seeded within ``reach``
    cells of the voxel's own cell along every axis.

    A line of voxels along the last axis is compared with one candidate offset at a time over
    its whole length (candidates laid out by :func:`_expanded_centres`), so the inner loops are
    long, contiguous and vectorise. Offsets are visited in increasing centre number, and only a
    strictly smaller distance replaces the best: ties go to the lower centre number.
    """
    c_n, nz, ny, nx = feat.shape
    gz, gy, gx = per_axis[0], per_axis[1], per_axis[2]
    rz, ry, rx = reach[0], reach[1], reach[2]
    cand = _expanded_centres(cen_col, cen_pos, per_axis, cell_x, rx)
    cell_plus = np.empty((2 * rx + 1, nx), dtype=np.int64)
    for j in range(2 * rx + 1):
        for x in range(nx):
            cell_plus[j, x] = cell_x[x] + j - rx
    d = np.empty(nx, dtype=np.float32)
    for z in range(nz):
        pz = pos_z[z]
        cz = cell_z[z]
        for y in range(ny):
            py = pos_y[y]
            cy = cell_y[y]
            brow = best[z, y]
            lrow = labels[z, y]
            brow[:] = np.inf
            # a voxel starts with the centre of its own cell: whatever the distances (even NaN or
            # infinite ones, which no comparison accepts), its label is a centre that exists
            own = (cz * gy + cy) * gx
            for x in range(nx):
                lrow[x] = own + cell_x[x]
            for iz in range(max(cz - rz, 0), min(cz + rz + 1, gz)):
                for iy in range(max(cy - ry, 0), min(cy + ry + 1, gy)):
                    row = (iz * gy + iy) * gx
                    for j in range(2 * rx + 1):
                        e = cand[iz, iy, j]
                        ez, ey, ex = e[c_n], e[c_n + 1], e[c_n + 2]
                        for x in range(nx):
                            a = pz - ez[x]
                            b = py - ey[x]
                            t = pos_x[x] - ex[x]
                            d[x] = a * a + b * b + t * t
                        for c in range(c_n):
                            f = feat[c, z, y]
                            m = e[c]
                            for x in range(nx):
                                t = f[x] - m[x]
                                d[x] += t * t
                        cp = cell_plus[j]
                        for x in range(nx):
                            closer = d[x] < brow[x]
                            brow[x] = d[x] if closer else brow[x]
                            lrow[x] = row + cp[x] if closer else lrow[x]


@numba.njit(cache=True, nogil=True)
def _absorb_specks(labels, feat, cen_col, cen_pos, scale):
    """One-voxel fragments take the adjacent label whose centre is nearest (SLIC distance).

    Decided on the labels k-means left, for every speck at once (as the torch path does).
    """
    c_n, nz, ny, nx = feat.shape
    out = labels.copy()
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                own = labels[z, y, x]
                if (
                    (x > 0 and labels[z, y, x - 1] == own)
                    or (x + 1 < nx and labels[z, y, x + 1] == own)
                    or (y > 0 and labels[z, y - 1, x] == own)
                    or (y + 1 < ny and labels[z, y + 1, x] == own)
                    or (z > 0 and labels[z - 1, y, x] == own)
                    or (z + 1 < nz and labels[z + 1, y, x] == own)
                ):
                    continue
                best = np.inf
                choice = own
                for a in range(6):
                    zz, yy, xx = z, y, x
                    if a == 0:
                        zz -= 1
                    elif a == 1:
                        zz += 1
                    elif a == 2:
                        yy -= 1
                    elif a == 3:
                        yy += 1
                    elif a == 4:
                        xx -= 1
                    else:
                        xx += 1
                    if not (0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx):
                        continue
                    k = labels[zz, yy, xx]
                    d0 = z * scale[0] - cen_pos[k, 0]
                    d1 = y * scale[1] - cen_pos[k, 1]
                    d2 = x * scale[2] - cen_pos[k, 2]
                    d = d0 * d0 + d1 * d1 + d2 * d2
                    for c in range(c_n):
                        t = feat[c, z, y, x] - cen_col[k, c]
                        d += t * t
                    if d < best:
                        best = d
                        choice = k
                out[z, y, x] = choice
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


@numba.njit(cache=True, nogil=True, inline="always")
def _union(parent, i, j):
    a, b = _find(parent, i), _find(parent, j)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


@numba.njit(cache=True, nogil=True)
def components(labels):
    """Face-connected components of equal labels, numbered 0.. in raster order of their first voxel.

    Union-find in raster order; every root is the smallest voxel of its tree, so a component's
    root is its first voxel.
    """
    nz, ny, nx = labels.shape
    flat = labels.reshape(-1)
    n = flat.shape[0]
    sy, sz = nx, ny * nx
    parent = np.empty(n, dtype=np.int64)
    i = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                v = flat[i]
                left = x > 0 and flat[i - 1] == v
                parent[i] = parent[i - 1] if left else i
                # when the left voxel and both voxels above match, the one above is already joined
                if y > 0 and flat[i - sy] == v and not (left and flat[i - 1 - sy] == v):
                    _union(parent, i, i - sy)
                if z > 0 and flat[i - sz] == v and not (left and flat[i - 1 - sz] == v):
                    _union(parent, i, i - sz)
                i += 1
    comp = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        r = _find(parent, i)
        if r == i:
            comp[i] = k
            k += 1
        else:
            comp[i] = comp[r]
    return comp.reshape(labels.shape), k


def _small_boundaries(comp, small):
    """Pairs of face-adjacent components, one of them small, as met voxel pair by voxel pair
    (repeats are harmless: the merge takes a minimum over them). Counted first, then stored:
    growing the arrays inside the scan made it ten times slower."""
    count = _scan_boundaries(comp, small, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    first = np.empty(count, dtype=np.int64)
    second = np.empty(count, dtype=np.int64)
    _scan_boundaries(comp, small, first, second)
    return first, second


@numba.njit(cache=True, nogil=True)
def _scan_boundaries(comp, small, first, second):
    """Count the pairs (and store them when ``first`` has room for them all)."""
    nz, ny, nx = comp.shape
    flat = comp.reshape(-1)
    store = first.shape[0] > 0
    count = 0
    for z in range(nz):
        for y in range(ny):
            base = (z * ny + y) * nx
            for step in (1, nx, ny * nx):  # the next voxel along x, y and z
                if (step == nx and y + 1 == ny) or (step == ny * nx and z + 1 == nz):
                    continue
                stop = nx - 1 if step == 1 else nx
                for x in range(stop):
                    a, c = flat[base + x], flat[base + x + step]
                    if a != c and (small[a] or small[c]):
                        if store:
                            first[count] = a
                            second[count] = c
                        count += 1
    return count


def _merge_small_fragments(labels, feat, min_size):
    """Connected components; those under ``min_size`` voxels join the adjacent component that
    ranks higher by (size, number) and has the closest mean colour, in rounds (as the torch path).

    Returns, per voxel, the number of the component it ends in (components numbered in raster
    order of their first voxel; merged ones leave gaps, which the caller's relabelling closes).
    """
    comp, k_n = components(labels)
    size, colour_sum = _component_sums(comp, feat, k_n)
    small = size < min_size
    if not small.any():
        return comp
    # boundaries touching a small component: the only ones a merge can ever use
    first, second = _small_boundaries(comp, small)
    target = _merge_rounds(size, colour_sum, small, first, second, min_size)
    return target[comp]


@numba.njit(cache=True, nogil=True)
def _component_sums(comp, feat, k_n):
    """Voxel count and colour sum of every component."""
    c_n, nz, ny, nx = feat.shape
    size = np.zeros(k_n, dtype=np.int64)
    colour_sum = np.zeros((k_n, c_n))
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                q = comp[z, y, x]
                size[q] += 1
                for c in range(c_n):
                    colour_sum[q, c] += feat[c, z, y, x]
    return size, colour_sum


@numba.njit(cache=True, nogil=True)
def _merge_rounds(size, colour_sum, small, first, second, min_size):
    """Component -> component it ends in, merging small ones over the boundary pairs
    ``first``/``second`` in rounds (updates ``size``, ``colour_sum`` and ``small`` in place)."""
    k_n, c_n = colour_sum.shape
    n_pairs = first.shape[0]
    target = np.empty(k_n, dtype=np.int64)
    for q in range(k_n):
        target[q] = q
    best_d = np.empty(k_n)
    best_to = np.empty(k_n, dtype=np.int64)
    mean = np.empty((k_n, c_n))
    new_size = np.empty(k_n, dtype=np.int64)
    new_sum = np.empty((k_n, c_n))
    step = np.empty(k_n, dtype=np.int64)
    for _ in range(MERGE_ROUNDS):
        for q in range(k_n):
            for c in range(c_n):
                mean[q, c] = colour_sum[q, c] / max(size[q], 1)
        best_d[:] = np.inf
        best_to[:] = -1
        for p in range(n_pairs):
            a, c = target[first[p]], target[second[p]]
            if a == c:
                continue
            if size[c] > size[a] or (size[c] == size[a] and c > a):
                src, dst = a, c
            else:
                src, dst = c, a
            d = 0.0
            for ch in range(c_n):
                t = mean[src, ch] - mean[dst, ch]
                d += t * t
            if d < best_d[src] or (d == best_d[src] and dst < best_to[src]):
                best_d[src] = d
                best_to[src] = dst
        for q in range(k_n):
            step[q] = q
        moved = False
        for q in range(k_n):
            if small[q] and best_to[q] >= 0:
                step[q] = best_to[q]
                moved = True
        if not moved:
            break
        # chains of merges end at a component that does not move (rank rises along a chain)
        for q in range(k_n):
            r = q
            while step[r] != r:
                r = step[r]
            step[q] = r
        # sizes and colour sums move to the merge targets (buffers reused: rebinding arrays
        # inside a loop costs numba reference counting on every iteration)
        new_size[:] = 0
        new_sum[:] = 0.0
        for q in range(k_n):
            new_size[step[q]] += size[q]
            for c in range(c_n):
                new_sum[step[q], c] += colour_sum[q, c]
        for q in range(k_n):  # element by element (see kmeans: no array-to-array slice assignment)
            size[q] = new_size[q]
            for c in range(c_n):
                colour_sum[q, c] = new_sum[q, c]
        for q in range(k_n):
            target[q] = step[target[q]]
        any_small = False
        for q in range(k_n):
            small[q] = 0 < size[q] < min_size
            any_small = any_small or small[q]
        if not any_small:
            break
    return target

"""The three-class formulation of nucleus instance segmentation (background / interior / boundary).

A network trained on these classes separates touching nuclei by the boundary class: the interior map
splits into one connected component per nucleus, and each component seeds a watershed that gives the
boundary pixels back to their nucleus (Kumar et al., IEEE TMI 2017, used the same three classes).

* :func:`instances_to_three_class`: training target from a reference instance map;
* :func:`instances_from_interior`: instances from a (predicted) interior mask, optionally grown into a
  foreground mask;
* :func:`instances_from_probabilities`: the same from a network's ``(3, H, W)`` softmax output.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries, watershed

__all__ = [
    "BACKGROUND",
    "INTERIOR",
    "BOUNDARY",
    "instances_to_three_class",
    "instances_from_interior",
    "instances_from_probabilities",
]

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2

# 4-connectivity for seeds: two interiors that touch only at a corner stay two nuclei
_CROSS = ndimage.generate_binary_structure(2, 1)


def _instance_map(instances, name: str = "instances") -> np.ndarray:
    arr = np.asarray(instances.detach().cpu() if hasattr(instances, "detach") else instances)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (H, W) or (1, H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} holds negative ids; 0 is background")
    return arr


def instances_to_three_class(instances, boundary_width: int = 1) -> np.ndarray:
    """``(H, W)`` uint8 map: 0 background, 1 nucleus interior, 2 nucleus boundary.

    Boundary pixels are the pixels of a nucleus with a 4-neighbour outside it (background or another
    nucleus), widened inwards to ``boundary_width`` pixels; two touching nuclei are thus always
    separated by boundary pixels of both.
    """
    inst = _instance_map(instances)
    if int(boundary_width) != boundary_width or boundary_width < 1:
        raise ValueError(f"boundary_width must be a positive integer, got {boundary_width}")
    foreground = inst > 0
    boundary = find_boundaries(inst, connectivity=1, mode="inner") & foreground
    if boundary_width > 1:
        boundary = ndimage.binary_dilation(boundary, _CROSS, iterations=int(boundary_width) - 1) & foreground
    out = np.zeros(inst.shape, dtype=np.uint8)
    out[foreground] = INTERIOR
    out[boundary] = BOUNDARY
    return out


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    if min_size <= 1 or not labels.any():
        return labels
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    labels = labels.copy()
    labels[small[labels]] = 0
    return labels


def _relabel(labels: np.ndarray) -> np.ndarray:
    ids, inverse = np.unique(labels.ravel(), return_inverse=True)
    if ids[0] != 0:  # no background: ids start at 1
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32)


def instances_from_interior(
    interior,
    foreground=None,
    elevation: Optional[np.ndarray] = None,
    min_seed_size: int = 1,
    min_size: int = 1,
) -> np.ndarray:
    """Instances (``(H, W)`` int32, 0 background, ids 1..N) seeded by the connected components of ``interior``.

    Parameters
    ----------
    interior
        ``(H, W)`` bool mask of nucleus interiors; each 4-connected component of at least ``min_seed_size``
        pixels is one nucleus.
    foreground
        Optional ``(H, W)`` bool mask (interior + boundary) the seeds grow into by a marker-controlled
        watershed; foreground components that hold no seed become nuclei of their own. Without it the
        components themselves are returned.
    elevation
        Watershed relief (low first), e.g. ``1 - p(interior)``; default none: each foreground pixel goes to the
        nearest seed it is connected to.
    min_size
        Final objects smaller than this are removed.
    """
    seeds_mask = _instance_map(interior, "interior").astype(bool)
    seeds, _ = ndimage.label(seeds_mask, _CROSS)
    seeds = _drop_small(seeds, int(min_seed_size))
    if foreground is None:
        return _relabel(_drop_small(seeds, int(min_size)))
    fg = _instance_map(foreground, "foreground").astype(bool) | (seeds > 0)
    compactness = 0.0
    if elevation is None:
        # a flat relief with a compact watershed gives each pixel to the nearest seed it is connected to; a
        # distance-to-seed relief does not (two floods meeting at equal height split pixels by arrival order)
        elevation, compactness = np.zeros(fg.shape), 1.0
    elif np.shape(elevation) != fg.shape or not np.isfinite(elevation).all():
        raise ValueError(
            f"elevation must be a finite (H, W) array like the masks {fg.shape}, got shape {np.shape(elevation)}"
        )
    grown = (
        watershed(np.asarray(elevation, dtype=np.float64), markers=seeds, mask=fg, compactness=compactness)
        if seeds.any()
        else np.zeros(fg.shape, np.int64)
    )
    # foreground blobs that no seed reached (e.g. a small nucleus predicted as boundary only)
    orphans, count = ndimage.label(fg & (grown == 0), _CROSS)
    if count:
        grown = np.where(orphans > 0, orphans + grown.max(), grown)
    return _relabel(_drop_small(grown.astype(np.int64), int(min_size)))


def instances_from_probabilities(probabilities, min_seed_size: int = 4, min_size: int = 10) -> np.ndarray:
    """Instances from a ``(3, H, W)`` background / interior / boundary probability map.

    The seeds are the pixels whose most likely class is the interior; the foreground is every pixel not
    most likely background; the watershed relief is ``1 - p(interior)``, so boundary pixels join the
    seed they are least boundary-like towards.
    """
    probs = np.asarray(
        probabilities.detach().cpu() if hasattr(probabilities, "detach") else probabilities, dtype=np.float64
    )
    if probs.ndim != 3 or probs.shape[0] != 3:
        raise ValueError(f"probabilities must be (3, H, W) (background, interior, boundary), got shape {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities contain NaN or infinite values")
    label = probs.argmax(0)
    return instances_from_interior(
        label == INTERIOR, label != BACKGROUND, 1.0 - probs[INTERIOR], min_seed_size, min_size
    )

"""Where a lesion may be pasted (Soft-CP, Eq. 3-4) and the paste itself.

A candidate position is accepted when the pasted lesion lies wholly inside the image, overlaps the
reference region (e.g. kidney, brain) by more than ``s1`` of its volume, and overlaps lesions already
present by less than ``s2`` of its volume. Candidates are drawn at most ``max_tries`` times; when none
is accepted the caller gets ``None`` and decides to skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ["Placement", "overlap_fractions", "find_lesion_placement", "paste_region", "paste_object"]


@dataclass
class Placement:
    """An accepted position: the main-image coordinates of the patch's first voxel."""

    offset: Tuple[int, ...]
    tries: int
    reference_overlap: float
    lesion_overlap: float


def paste_region(offset: Sequence[int], patch_shape: Sequence[int], image_shape: Sequence[int]):
    """Slices of the part of a patch at ``offset`` that falls inside the image, in image and patch
    coordinates; ``None`` when they do not intersect."""
    off = np.asarray(offset)
    lo = np.maximum(off, 0)
    hi = np.minimum(off + np.asarray(patch_shape), np.asarray(image_shape))
    if np.any(hi <= lo):
        return None
    image_sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    patch_sl = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, off))
    return image_sl, patch_sl


def overlap_fractions(
    hard: torch.Tensor,
    offset: Sequence[int],
    image_shape: Sequence[int],
    reference: Optional[torch.Tensor] = None,
    lesions: Optional[torch.Tensor] = None,
) -> Tuple[float, float, float]:
    """Fractions of the pasted lesion's voxels (inside the image, on the reference, on lesions).

    Both ``reference`` and ``lesions`` are bool ``(*image_shape)``; a missing one counts as 0 overlap.
    """
    hard, reference, lesions = (_as_bool_numpy(a) for a in (hard, reference, lesions))
    total = np.count_nonzero(hard)
    if total == 0:
        raise ValueError("the pasted lesion mask is empty")
    region = paste_region(offset, hard.shape, image_shape)
    if region is None:
        return 0.0, 0.0, 0.0
    image_sl, patch_sl = region
    h = hard[patch_sl]
    inside = np.count_nonzero(h) / total
    ref = np.count_nonzero(h & reference[image_sl]) / total if reference is not None else 0.0
    les = np.count_nonzero(h & lesions[image_sl]) / total if lesions is not None else 0.0
    return float(inside), float(ref), float(les)


def _as_bool_numpy(a):
    # overlaps are counted on the CPU: np.count_nonzero on bool beats a torch sum (docs/performance.md)
    if a is None or (isinstance(a, np.ndarray) and a.dtype == bool):
        return a
    return (a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)) != 0


def find_lesion_placement(
    hard: torch.Tensor,
    image_shape: Sequence[int],
    rng: np.random.RandomState,
    reference: Optional[torch.Tensor] = None,
    lesions: Optional[torch.Tensor] = None,
    s1: float = 0.8,
    s2: float = 0.1,
    max_tries: int = 50,
    around: Optional[Sequence[int]] = None,
    max_shift: Optional[Sequence[int]] = None,
) -> Optional[Placement]:
    """Draw positions for the lesion ``hard`` (bool patch) until one satisfies the constraints.

    Parameters
    ----------
    hard : Tensor or ndarray
        bool ``(*patch)`` mask of the lesion inside its patch.
    image_shape : sequence of int
        Spatial shape of the image pasted into.
    rng : numpy RandomState
        Source of all randomness.
    reference : Tensor or ndarray, optional
        bool ``(*image_shape)`` region the lesion must overlap by more than ``s1``; when given, the
        lesion's centre is drawn from the reference voxels, otherwise uniformly over the image.
    lesions : Tensor or ndarray, optional
        bool ``(*image_shape)`` existing lesions the pasted one must overlap by less than ``s2``.
    s1, s2 : float
        Thresholds of Eq. 3 and Eq. 4, as fractions of the pasted lesion's volume.
    max_tries : int
        Candidates drawn before giving up.
    around, max_shift : sequence of int, optional
        Translation mode: draw the lesion centre uniformly within ``around +- max_shift`` instead.

    Returns
    -------
    Placement or None
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    shape = np.asarray(image_shape)
    hard, reference, lesions = (_as_bool_numpy(a) for a in (hard, reference, lesions))
    coords = np.argwhere(hard)
    if len(coords) == 0:
        raise ValueError("the pasted lesion mask is empty")
    # floor(x + 0.5), not round-half-even, so the anchor moves with the patch by whole voxels
    anchor = np.floor(coords.mean(0) + 0.5).astype(int)
    box_lo, box_hi = coords.min(0), coords.max(0)
    # only the lesion's bounding box matters for the overlaps: test that, not the whole padded patch
    crop_lo = box_lo
    hard = hard[tuple(slice(int(a), int(b) + 1) for a, b in zip(box_lo, box_hi))]
    anchor, box_hi, box_lo = anchor - crop_lo, box_hi - crop_lo, np.zeros_like(crop_lo)
    candidates = None
    if reference is not None and around is None:
        candidates = np.flatnonzero(reference)
    if candidates is not None and len(candidates) == 0:
        return None
    for attempt in range(1, max_tries + 1):
        if around is not None:
            shift = np.asarray(max_shift if max_shift is not None else np.zeros_like(shape))
            centre = np.asarray(around) + np.array([rng.randint(-s, s + 1) for s in shift])
        elif candidates is not None:
            centre = np.asarray(np.unravel_index(candidates[rng.randint(len(candidates))], tuple(shape)))
        else:
            centre = np.array([rng.randint(n) for n in shape])
        offset = centre - anchor
        if np.any(offset + box_lo < 0) or np.any(offset + box_hi >= shape):
            continue
        _, ref, les = overlap_fractions(hard, offset, image_shape, reference, lesions)
        if (reference is None or ref > s1) and les < s2:
            return Placement(tuple(int(v) for v in offset - crop_lo), attempt, ref, les)
    return None


def paste_object(
    image: torch.Tensor,
    label: torch.Tensor,
    obj_image: torch.Tensor,
    obj_label: torch.Tensor,
    hard: torch.Tensor,
    weight: torch.Tensor,
    offset: Sequence[int],
) -> None:
    """Blend an object into ``image`` and ``label`` in place.

    ``image = w * obj_image + (1 - w) * image`` over the patch's footprint, and the label takes the
    object's label wherever ``hard`` is True. Voxels where ``w == 0`` are left bit-for-bit unchanged.
    """
    region = paste_region(offset, hard.shape, image.shape[1:])
    if region is None:
        return
    image_sl, patch_sl = region
    w = weight[patch_sl].to(image.dtype)
    target = image[(slice(None),) + image_sl]
    blended = w * obj_image[(slice(None),) + patch_sl].to(image.dtype) + (1 - w) * target
    image[(slice(None),) + image_sl] = torch.where(w > 0, blended, target)
    lab = label[image_sl]
    label[image_sl] = torch.where(hard[patch_sl], obj_label[patch_sl].to(label.dtype), lab)

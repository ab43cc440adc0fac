"""Lesion instances in a label map and the patch ("object") cut around one of them for pasting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch
from scipy import ndimage

__all__ = ["LesionObject", "lesion_instances", "cut_lesion_object"]


@dataclass
class LesionObject:
    """A lesion cut from a donor, with context, ready to be transformed and pasted.

    Attributes
    ----------
    image : Tensor
        ``(C, *patch)`` float32 donor intensities around the lesion.
    label : Tensor
        ``(*patch)`` donor label values on the lesion, 0 elsewhere (other lesions are not carried).
    hard : Tensor
        ``(*patch)`` bool, the lesion instance.
    valid : Tensor
        ``(*patch)`` bool, True where the patch holds real donor data (False in padding added at the
        donor's border or by rotation); blending weights are zeroed where it is False.
    origin : tuple of int
        Donor coordinates of the patch's first voxel before any object transform.
    """

    image: torch.Tensor
    label: torch.Tensor
    hard: torch.Tensor
    valid: torch.Tensor
    origin: Tuple[int, ...]


def lesion_instances(
    label: torch.Tensor, label_values: Sequence[float], min_voxels: int = 1
) -> Tuple[np.ndarray, List[int]]:
    """Connected components (full connectivity) of the voxels whose label is in ``label_values``.

    Parameters
    ----------
    label : Tensor
        ``(*spatial)`` label map.
    label_values : sequence of numbers
        Label values that make up a lesion (several values, e.g. tumour sub-regions, form one instance
        when they touch).
    min_voxels : int
        Components smaller than this are ignored.

    Returns
    -------
    components : ndarray of int32, ``(*spatial)``
        Component index per voxel, 0 outside lesions.
    ids : list of int
        Component indices with at least ``min_voxels`` voxels.
    """
    lesion = np.isin(label.detach().cpu().numpy(), np.asarray(list(label_values)))
    structure = ndimage.generate_binary_structure(lesion.ndim, lesion.ndim)
    components, n = ndimage.label(lesion, structure=structure)
    if n == 0:
        return components, []
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    ids = [i for i in range(1, n + 1) if sizes[i] >= min_voxels]
    return components, ids


def cut_lesion_object(
    image: torch.Tensor, label: torch.Tensor, components: np.ndarray, instance: int, margin: int
) -> LesionObject:
    """Cut the bounding box of one instance plus ``margin`` voxels of context on every side.

    The patch always has the full margin: parts that fall outside the donor are zero-filled and
    marked invalid, so a lesion at the donor's border never pastes made-up context.
    """
    hard_np = components == instance
    coords = np.argwhere(hard_np)
    lo, hi = coords.min(0) - margin, coords.max(0) + margin + 1
    shape = np.asarray(hard_np.shape)
    src_lo, src_hi = np.maximum(lo, 0), np.minimum(hi, shape)
    src = tuple(slice(int(a), int(b)) for a, b in zip(src_lo, src_hi))
    dst = tuple(slice(int(a - l), int(b - l)) for a, b, l in zip(src_lo, src_hi, lo))
    size = tuple(int(s) for s in hi - lo)
    device = image.device
    patch_img = torch.zeros((image.shape[0], *size), dtype=torch.float32, device=device)
    patch_img[(slice(None),) + dst] = image[(slice(None),) + src].to(torch.float32)
    hard = torch.zeros(size, dtype=torch.bool, device=device)
    hard[dst] = torch.as_tensor(hard_np[src], device=device)
    patch_lbl = torch.zeros(size, dtype=label.dtype, device=device)
    patch_lbl[dst] = torch.where(hard[dst], label[src], torch.zeros_like(label[src]))
    valid = torch.zeros(size, dtype=torch.bool, device=device)
    valid[dst] = True
    return LesionObject(patch_img, patch_lbl, hard, valid, tuple(int(v) for v in lo))

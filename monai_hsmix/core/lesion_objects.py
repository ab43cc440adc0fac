"""Lesion instances in a label map and the patch ("object") cut around one of them for pasting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch
from scipy import ndimage

from monai_hsmix.core.paste_placement import paste_region

__all__ = ["LesionObject", "lesion_instances", "cut_lesion_object", "reframe_lesion_object"]


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


def _window(t: torch.Tensor, lo: np.ndarray, hi: np.ndarray) -> torch.Tensor:
    """``t[..., lo:hi]`` over the trailing ``len(lo)`` axes, zero-filled where the window leaves ``t``."""
    region = paste_region(-lo, t.shape[t.ndim - len(lo) :], hi - lo)
    out = torch.zeros((*t.shape[: t.ndim - len(lo)], *(int(v) for v in hi - lo)), dtype=t.dtype, device=t.device)
    if region is not None:
        dst, src = region
        lead = (slice(None),) * (t.ndim - len(lo))
        out[lead + dst] = t[lead + src]
    return out


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
    hard = _window(torch.as_tensor(hard_np, device=image.device), lo, hi)
    return LesionObject(
        image=_window(image, lo, hi).to(torch.float32),
        label=torch.where(hard, _window(label, lo, hi), torch.zeros((), dtype=label.dtype, device=label.device)),
        hard=hard,
        valid=_window(torch.ones(hard_np.shape, dtype=torch.bool, device=image.device), lo, hi),
        origin=tuple(int(v) for v in lo),
    )


def reframe_lesion_object(obj: LesionObject, margin: int) -> LesionObject:
    """The same object on a patch of exactly the lesion's bounding box plus ``margin`` on every side.

    Used after rotation/scaling: it drops the empty canvas those add and pads (as invalid) where the
    lesion came too close to the patch edge for the blending weight's support.
    """
    coords = torch.nonzero(obj.hard).cpu().numpy()
    if len(coords) == 0:
        raise ValueError("the lesion object has an empty hard mask")
    lo, hi = coords.min(0) - margin, coords.max(0) + margin + 1
    return LesionObject(
        _window(obj.image, lo, hi),
        _window(obj.label, lo, hi),
        _window(obj.hard, lo, hi),
        _window(obj.valid, lo, hi),
        obj.origin,
    )

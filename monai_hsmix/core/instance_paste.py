"""InsMix copy-paste: put morphology-matched template nuclei next to original nuclei."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np
from scipy import ndimage

from monai_hsmix.core.instance_bank import NucleusTemplate
from monai_hsmix.core.ssd_constraints import (
    SSDConstraints,
    find_nucleus_placement,
    forbidden_region,
    scale_factor,
    shape_factor,
)

__all__ = ["PasteResult", "paste_instances"]


@dataclass
class PasteResult:
    """Outcome of :func:`paste_instances`.

    Attributes
    ----------
    image
        (C, H, W) image with the templates pasted, same dtype as the input.
    instances
        (H, W) int32 instance map: original ids unchanged, pasted nuclei numbered from ``max(id) + 1``.
    pasted
        (H, W) bool union of the pasted masks.
    records
        One ``(original_id, new_id, template_index, (top, left))`` per pasted nucleus.
    """

    image: np.ndarray
    instances: np.ndarray
    pasted: np.ndarray
    records: List[Tuple[int, int, int, Tuple[int, int]]] = field(default_factory=list)


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def paste_instances(
    image: np.ndarray,
    instances: np.ndarray,
    templates: Sequence[NucleusTemplate],
    constraints: SSDConstraints,
    rng: np.random.RandomState,
    max_paste_ratio: float = 0.5,
    max_template_tries: int = 20,
) -> PasteResult:
    """Paste templates around a random subset of the original nuclei.

    Parameters
    ----------
    image
        (C, H, W) array.
    instances
        (H, W) int instance map with at least one nucleus.
    templates
        Candidate templates (e.g. an :class:`~monai_hsmix.core.instance_bank.InstanceBank`).
    constraints
        SSD thresholds; each pasted template satisfies all of them with respect to its original.
    max_paste_ratio
        Between 1 and ``max(1, int(max_paste_ratio * n_nuclei))`` originals are drawn; each gets at most one
        template (none when no template fits the constraints and the free space).
    max_template_tries
        Scale-compatible templates tried per original before giving up.
    """
    if image.ndim != 3 or image.shape[1:] != instances.shape:
        raise ValueError(f"image {image.shape} must be (C, H, W) with (H, W) == instances {instances.shape}")
    ids = np.unique(instances)
    ids = ids[ids > 0]
    if ids.size == 0:
        raise ValueError("the label has no nucleus instances: InsMix pastes templates next to existing nuclei")
    if len(templates) == 0:
        raise ValueError("no templates to paste: the instance bank is empty")
    if templates[0].image.shape[0] != image.shape[0]:
        raise ValueError(f"templates have {templates[0].image.shape[0]} channels, image has {image.shape[0]}")
    if not 0 < max_paste_ratio <= 1:
        raise ValueError(f"max_paste_ratio must lie in (0, 1], got {max_paste_ratio}")

    out_image = image.copy()
    out_inst = instances.astype(np.int32, copy=True)
    pasted = np.zeros(instances.shape, dtype=bool)
    forbidden_padded = np.pad(forbidden_region(instances > 0, constraints.allow_touching), 1)
    forbidden = forbidden_padded[1:-1, 1:-1]  # a view: updates to the padded array show through
    areas = np.bincount(instances.ravel())
    template_areas = np.array([t.area for t in templates])
    boxes = ndimage.find_objects(instances)
    centroids = ndimage.center_of_mass(np.ones(instances.shape), instances, ids)
    centroid_of = dict(zip(ids.tolist(), centroids))
    next_id = int(ids.max()) + 1
    n_add = rng.randint(1, max(1, int(max_paste_ratio * ids.size)) + 1)
    records = []
    for original in rng.choice(ids, size=n_add, replace=False).tolist():
        mask_o = instances[boxes[original - 1]] == original
        fits_scale = np.flatnonzero(scale_factor(areas[original], template_areas) <= constraints.epsilon)
        for t_idx in rng.permutation(fits_scale)[:max_template_tries].tolist():
            template = templates[t_idx]
            if shape_factor(mask_o, template.mask) > constraints.rho:
                continue
            corner = find_nucleus_placement(forbidden, template.mask, centroid_of[original], constraints, rng)
            if corner is None:
                continue
            top, left = corner
            h, w = template.mask.shape
            window = (slice(top, top + h), slice(left, left + w))
            pixels = _cast_like(template.image[:, template.mask], image.dtype)
            out_image[(slice(None), *window)][:, template.mask] = pixels
            out_inst[window][template.mask] = next_id
            pasted[window] |= template.mask
            # the padded border lets the 1-px growth ring spill over the image edge without clipping logic
            forbidden_padded[top : top + h + 2, left : left + w + 2] |= forbidden_region(
                np.pad(template.mask, 1), constraints.allow_touching
            )
            records.append((original, next_id, t_idx, corner))
            next_id += 1
            break
    return PasteResult(image=out_image, instances=out_inst, pasted=pasted, records=records)

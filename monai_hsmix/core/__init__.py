"""Pure functional core: the papers' equations on tensors.

HSMix (``hsmix_equations``, ``segment_ops``, ``labels``, ``pairing``), Soft-CP (``soft_mask``,
``lesion_objects``, ``paste_placement``) and InsMix
(``instance_bank``, ``ssd_constraints``, ``instance_paste``, ``background_shuffle``).

The HSMix functions take their random draws (pairings, Bernoulli uniforms, ratios) as arguments,
so they are deterministic and testable on their own. The Soft-CP and InsMix placement functions
draw from a ``numpy.random.RandomState`` (``rng``) they are given by their transform;
``background_shuffle.shuffle_background_patches`` does too, but falls back to a fresh, unseeded
``RandomState`` when given none (then its result is not reproducible).
"""

from monai_hsmix.core.instance_bank import InstanceBank
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.core.hsmix_equations import (
    HSMixMasks,
    blend,
    blend_index_labels,
    hard_mask_from_segments,
    hsmix_masks,
    identity_masks,
    mix_with_masks,
    mixed_segment_grid,
    relative_saliency,
    soft_mask_from_saliency,
)
from monai_hsmix.core.labels import class_indices, is_index_labels, labels_to_channels
from monai_hsmix.core.pairing import random_derangement
from monai_hsmix.core.segment_ops import grid_cells, segment_mean
from monai_hsmix.core.soft_mask import SoftMask, blend_weights, gaussian_mask, soft_mask

__all__ = [
    "HSMixMasks",
    "InstanceBank",
    "SSDConstraints",
    "SoftMask",
    "blend",
    "blend_index_labels",
    "blend_weights",
    "class_indices",
    "gaussian_mask",
    "hard_mask_from_segments",
    "grid_cells",
    "hsmix_masks",
    "identity_masks",
    "is_index_labels",
    "labels_to_channels",
    "mix_with_masks",
    "mixed_segment_grid",
    "random_derangement",
    "relative_saliency",
    "segment_mean",
    "soft_mask",
    "soft_mask_from_saliency",
]

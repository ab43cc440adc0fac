"""Pure functional core: the papers' equations on tensors, with no randomness of their own.

Random draws (pairings, Bernoulli uniforms, ratios) are passed in, so every function here is
deterministic and testable on its own.
"""

from monai_hsmix.core.hsmix_equations import (
    HSMixOutput,
    blend,
    hard_mask_from_segments,
    hsmix_batch,
    mixed_segment_grid,
    relative_saliency,
    soft_mask_from_saliency,
)
from monai_hsmix.core.labels import labels_to_channels
from monai_hsmix.core.pairing import random_derangement
from monai_hsmix.core.segment_ops import segment_mean, square_grid_segments

__all__ = [
    "HSMixOutput",
    "blend",
    "hard_mask_from_segments",
    "hsmix_batch",
    "labels_to_channels",
    "mixed_segment_grid",
    "random_derangement",
    "relative_saliency",
    "segment_mean",
    "soft_mask_from_saliency",
    "square_grid_segments",
]

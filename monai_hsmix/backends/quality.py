"""How good a superpixel map is: boundary recall against ground truth and shape regularity.

Used by ``benchmarks/superpixel_quality.py`` (the preset table in ``docs/superpixels.md``) and by
the backend tests, so that both measure the same thing. Plain numpy / scikit-image on one 2D map
at a time: these are evaluation tools, not part of the training path.
"""

from __future__ import annotations

import numpy as np
import torch

from monai_hsmix.core.labels import relabel_contiguous

__all__ = ["adjusted_rand_index", "boundary_recall", "label_boundaries", "regularity"]


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of a 2D label map whose lower or right neighbour has another label."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label_boundaries expects a 2D map, got shape {labels.shape}")
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge


def boundary_recall(segments: np.ndarray, truth: np.ndarray, tolerance: int = 2) -> float:
    """Fraction of ground-truth boundary pixels within ``tolerance`` pixels (Chebyshev) of a
    superpixel boundary; 1.0 when the truth has no boundary."""
    from scipy import ndimage

    truth_edge = label_boundaries(truth)
    if not truth_edge.any():
        return 1.0
    near = label_boundaries(segments)
    if tolerance > 0:
        near = ndimage.binary_dilation(near, structure=np.ones((2 * tolerance + 1,) * 2, dtype=bool))
    return float((truth_edge & near).sum() / truth_edge.sum())


def regularity(segments: np.ndarray) -> float:
    """Area-weighted isoperimetric quotient ``4 pi A / P^2`` of the superpixels (Schick et al. 2012's
    compactness): about 0.79 for a grid of squares, lower for ragged, elongated superpixels."""
    from skimage.measure import regionprops

    segments = np.asarray(segments)
    total = float(segments.size)
    score = 0.0
    for region in regionprops(segments.astype(np.int64) + 1):
        perimeter = max(region.perimeter, 1e-9)
        score += region.area / total * min(1.0, 4.0 * np.pi * region.area / perimeter**2)
    return score


def adjusted_rand_index(first: np.ndarray, second: np.ndarray) -> float:
    """Adjusted Rand index of two label maps of the same shape (1.0: the same partition)."""
    a = relabel_contiguous(torch.as_tensor(np.asarray(first)).reshape(1, -1))[0].numpy()
    b = relabel_contiguous(torch.as_tensor(np.asarray(second)).reshape(1, -1))[0].numpy()
    if a.shape != b.shape:
        raise ValueError("adjusted_rand_index needs two maps of the same size")
    table = np.bincount(a * (b.max() + 1) + b).astype(np.float64)

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    both = pairs(table)
    rows = pairs(np.bincount(a).astype(np.float64))
    cols = pairs(np.bincount(b).astype(np.float64))
    total = a.size * (a.size - 1) / 2
    expected = rows * cols / total if total else 0.0
    best = (rows + cols) / 2
    return 1.0 if best == expected else float((both - expected) / (best - expected))

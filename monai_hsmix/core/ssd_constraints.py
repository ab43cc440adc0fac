"""Scale, shape and distance (SSD) constraints of InsMix (Lin et al., MICCAI 2022, Eq. 1-2).

For an original nucleus mask ``Mo`` and a template mask ``Mt`` aligned at their centroids:

* scale  ``f_scale = max(|Mo|, |Mt|) / min(|Mo|, |Mt|) <= epsilon``
* shape  ``f_shape = |Mo xor Mt| / max(|Mo|, |Mt|) <= rho``   (``|Mo - Mt|`` of the paper, summed absolutely)
* distance ``delta <= ||c_o - c_t|| <= gamma`` between the original's centroid and the pasted one.

The defaults (epsilon 2, rho 0.8) are the thresholds of the authors' released augmentation code
(it keeps a template when min/max area >= 0.5 and the shape factor <= 0.8); its shift is drawn in
[-40, 40] pixels, hence gamma 40.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

__all__ = [
    "SSDConstraints",
    "scale_factor",
    "shape_factor",
    "mask_centroid",
    "forbidden_region",
    "find_nucleus_placement",
]


@dataclass(frozen=True)
class SSDConstraints:
    """Thresholds for pasting a template near an original nucleus.

    Parameters
    ----------
    epsilon
        Largest allowed area ratio max/min (>= 1).
    rho
        Largest allowed normalised symmetric difference of the centroid-aligned masks (>= 0).
    delta, gamma
        Allowed range of centroid distance in pixels, ``0 <= delta <= gamma``.
    allow_touching
        If False (default) a pasted nucleus keeps a one-pixel gap (8-neighbourhood) from every other
        nucleus, so semantic masks still separate into the same instances. Overlap is never allowed.
    """

    epsilon: float = 2.0
    rho: float = 0.8
    delta: float = 8.0
    gamma: float = 40.0
    allow_touching: bool = False

    def __post_init__(self):
        if not np.isfinite(self.epsilon) or self.epsilon < 1:
            raise ValueError(f"epsilon must be a finite number >= 1, got {self.epsilon}")
        if not np.isfinite(self.rho) or self.rho < 0:
            raise ValueError(f"rho must be a finite number >= 0, got {self.rho}")
        if not (np.isfinite(self.delta) and np.isfinite(self.gamma)) or not 0 <= self.delta <= self.gamma:
            raise ValueError(f"need 0 <= delta <= gamma (finite), got delta={self.delta}, gamma={self.gamma}")


def scale_factor(area_o, area_t):
    """``max / min`` of two areas (broadcasts over arrays); ``inf`` when one area is 0."""
    a = np.asarray(area_o, dtype=np.float64)
    b = np.asarray(area_t, dtype=np.float64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lo > 0, hi / np.where(lo > 0, lo, 1.0), np.inf)


def mask_centroid(mask: np.ndarray) -> Tuple[float, float]:
    """(row, col) centroid of a non-empty 2D boolean mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("mask is empty")
    return float(rows.mean()), float(cols.mean())


def shape_factor(mask_o: np.ndarray, mask_t: np.ndarray) -> float:
    """``|Mo xor Mt| / max(|Mo|, |Mt|)`` with ``Mt`` shifted by the rounded centroid difference onto ``Mo``."""
    mo, mt = np.asarray(mask_o, dtype=bool), np.asarray(mask_t, dtype=bool)
    # one integer shift from the centroid difference (rounding each centroid on its own can misalign
    # exact translated copies by a pixel, e.g. 3.5 -> 4 but 8.5 -> 8)
    shift = np.round(np.subtract(mask_centroid(mt), mask_centroid(mo))).astype(int)
    lo = np.minimum(0, -shift)
    hi = np.maximum(mo.shape, np.array(mt.shape) - shift)
    canvas = np.zeros((2, *(hi - lo)), dtype=bool)
    oo, ot = -lo, -shift - lo
    canvas[0, oo[0] : oo[0] + mo.shape[0], oo[1] : oo[1] + mo.shape[1]] = mo
    canvas[1, ot[0] : ot[0] + mt.shape[0], ot[1] : ot[1] + mt.shape[1]] = mt
    return float(np.logical_xor(canvas[0], canvas[1]).sum() / max(mo.sum(), mt.sum()))


def forbidden_region(occupied: np.ndarray, allow_touching: bool) -> np.ndarray:
    """Pixels a new nucleus may not cover: the nuclei themselves, plus their 8-neighbours unless touching is allowed."""
    occupied = np.asarray(occupied, dtype=bool)
    if allow_touching:
        return occupied
    return ndimage.binary_dilation(occupied, structure=np.ones((3, 3), dtype=bool))


def find_nucleus_placement(
    forbidden: np.ndarray,
    template_mask: np.ndarray,
    anchor: Tuple[float, float],
    constraints: SSDConstraints,
    rng: np.random.RandomState,
    n_candidates: int = 64,
) -> Optional[Tuple[int, int]]:
    """Top-left corner for ``template_mask`` whose centroid lies delta..gamma from ``anchor``.

    Candidate centroids are drawn uniformly in the annulus around ``anchor``; the first one that keeps
    the template fully inside the image and off ``forbidden`` wins. Returns None when none fits.
    """
    height, width = forbidden.shape
    th, tw = template_mask.shape
    tcr, tcc = mask_centroid(template_mask)
    radius = rng.uniform(constraints.delta, constraints.gamma, size=n_candidates)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n_candidates)
    top = np.round(anchor[0] + radius * np.sin(angle) - tcr).astype(int)
    left = np.round(anchor[1] + radius * np.cos(angle) - tcc).astype(int)
    # rounding the corner moves the centroid by < 1 px: re-check the distance that will really result
    dist = np.hypot(top + tcr - anchor[0], left + tcc - anchor[1])
    ok = (dist >= constraints.delta) & (dist <= constraints.gamma)
    ok &= (top >= 0) & (left >= 0) & (top + th <= height) & (left + tw <= width)
    for t, l in zip(top[ok], left[ok]):
        if not np.any(forbidden[t : t + th, l : l + tw] & template_mask):
            return int(t), int(l)
    return None

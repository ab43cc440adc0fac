"""Instance-level scores of a predicted instance map against a reference one.

* :func:`aggregated_jaccard_index` (AJI): Kumar et al., IEEE TMI 2017, the MoNuSeg challenge metric and
  the one the InsMix paper reports. Each reference object ``G_i`` is matched to the predicted object
  ``S_j`` of highest IoU with it; the intersections of these pairs are summed into ``C`` and their unions
  into ``U``; a reference object that overlaps no prediction adds its area to ``U``; finally every
  predicted object that was never chosen adds its area to ``U``. ``AJI = C / U``. A predicted object may be
  chosen by several reference objects (a merge), and its area then enters ``U`` once per choice: this
  is the published definition (AJI+, Graham et al. 2019, would forbid it).
* :func:`object_dice`: the object-level Dice of the GlaS challenge (Sirinukunwattana et al., MedIA 2017):
  ``0.5 * (sum_i w_i Dice(G_i, S*(G_i)) + sum_j v_j Dice(S_j, G*(S_j)))`` with the match ``*`` the object
  of largest overlap on the other side, ``w``/``v`` area weights; an object without overlap scores 0.
* :func:`pixel_dice`: the Dice of the foreground masks (what a semantic segmentation scores).

Everything is computed from one sparse contingency table of object overlaps
(:func:`instance_overlaps`), built in a single pass over the pixels: :func:`score_instances` took 0.12-0.15 s
on a 1000 x 1000 MoNuSeg tile with 398 nuclei (shared 2-core CPU). Ids need not be consecutive; 0 is background.

Empty maps: two empty maps agree perfectly (every score 1); an empty map against a non-empty one scores 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np
from scipy import sparse

__all__ = [
    "InstanceOverlaps",
    "InstanceScores",
    "instance_overlaps",
    "aggregated_jaccard_index",
    "object_dice",
    "pixel_dice",
    "score_instances",
]


def _as_instance_map(x, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must be a 2D or 3D instance map (optionally with a leading channel of 1), got shape {arr.shape}"
        )
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype != bool and not (np.isfinite(arr).all() and np.array_equal(arr, np.round(arr))):
            raise ValueError(f"{name} must hold integer instance ids, got non-integer values of dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} holds negative ids (min {int(arr.min())}); 0 is background, objects are > 0")
    return arr


@dataclass(frozen=True)
class InstanceOverlaps:
    """Overlaps of every reference object with every predicted object.

    Attributes
    ----------
    intersection
        ``(n_true, n_pred)`` CSR matrix of pixel counts (only overlapping pairs stored).
    true_area, pred_area
        Object areas in pixels, ``(n_true,)`` and ``(n_pred,)``.
    true_ids, pred_ids
        The ids of the rows and columns in the input maps.
    """

    intersection: sparse.csr_matrix
    true_area: np.ndarray
    pred_area: np.ndarray
    true_ids: np.ndarray
    pred_ids: np.ndarray

    def iou(self) -> sparse.csr_matrix:
        """IoU of every overlapping pair, same sparsity as ``intersection``."""
        coo = self.intersection.tocoo()
        union = self.true_area[coo.row] + self.pred_area[coo.col] - coo.data
        return sparse.csr_matrix((coo.data / union, (coo.row, coo.col)), shape=coo.shape)


def instance_overlaps(true, pred) -> InstanceOverlaps:
    """Contingency table of two instance maps of the same shape (background 0 left out).

    Parameters
    ----------
    true, pred
        Integer instance maps (numpy arrays or tensors), ``(H, W)``, ``(1, H, W)`` or 3D.
    """
    t, p = _as_instance_map(true, "true"), _as_instance_map(pred, "pred")
    if t.shape != p.shape:
        raise ValueError(f"true and pred must have the same shape, got {t.shape} and {p.shape}")
    t_ids, t_inv = np.unique(t.ravel(), return_inverse=True)
    p_ids, p_inv = np.unique(p.ravel(), return_inverse=True)
    # row/column 0 is background when present: shift so that objects start at index 0 after dropping it
    t_off, p_off = int(t_ids.size > 0 and t_ids[0] == 0), int(p_ids.size > 0 and p_ids[0] == 0)
    t_area = np.bincount(t_inv, minlength=t_ids.size)[t_off:].astype(np.float64)
    p_area = np.bincount(p_inv, minlength=p_ids.size)[p_off:].astype(np.float64)
    both = (t_inv >= t_off) & (p_inv >= p_off)
    shape = (t_ids.size - t_off, p_ids.size - p_off)
    counts = sparse.coo_matrix(
        (np.ones(int(both.sum()), dtype=np.float64), (t_inv[both] - t_off, p_inv[both] - p_off)), shape=shape
    ).tocsr()  # duplicates are summed: pixel counts per pair
    counts.sum_duplicates()
    return InstanceOverlaps(counts, t_area, p_area, t_ids[t_off:], p_ids[p_off:])


def _row_argmax(matrix: sparse.csr_matrix) -> np.ndarray:
    """Column of the largest stored value of each row (the first column on ties), -1 for empty rows."""
    out = np.full(matrix.shape[0], -1, dtype=np.int64)
    coo = matrix.tocoo()
    if coo.nnz == 0:
        return out
    # sort by row, then value descending, then column ascending: the first entry of each row wins
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows = coo.row[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    out[rows[first]] = coo.col[order][first]
    return out


def _lookup(matrix: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` as a flat array (SciPy returns a sparse matrix for empty index lists)."""
    if rows.size == 0:
        return np.zeros(0)
    return np.asarray(matrix[rows, cols]).ravel()


def _empty_score(o: InstanceOverlaps) -> float:
    return 1.0 if o.true_area.size == 0 and o.pred_area.size == 0 else 0.0


def aggregated_jaccard_index(true, pred) -> float:
    """AJI of ``pred`` against ``true`` (Kumar et al. 2017; see the module docstring).

    Ties in IoU go to the predicted object of smallest id.
    """
    o = true if isinstance(true, InstanceOverlaps) else instance_overlaps(true, pred)
    if o.true_area.size == 0 or o.pred_area.size == 0:
        return _empty_score(o)
    iou = o.iou()
    best = _row_argmax(iou)
    matched = best >= 0
    rows = np.nonzero(matched)[0]
    inter = _lookup(o.intersection, rows, best[matched])
    c = inter.sum()
    u = (o.true_area[rows] + o.pred_area[best[matched]] - inter).sum() + o.true_area[~matched].sum()
    used = np.zeros(o.pred_area.size, dtype=bool)
    used[best[matched]] = True
    u += o.pred_area[~used].sum()
    return float(c / u)


def object_dice(true, pred) -> float:
    """Object-level Dice (GlaS definition; see the module docstring). Ties go to the smaller id."""
    o = true if isinstance(true, InstanceOverlaps) else instance_overlaps(true, pred)
    if o.true_area.size == 0 or o.pred_area.size == 0:
        return _empty_score(o)

    def side(inter: sparse.csr_matrix, own: np.ndarray, other: np.ndarray) -> float:
        best = _row_argmax(inter)
        matched = best >= 0
        rows = np.nonzero(matched)[0]
        dice = np.zeros(own.size)
        shared = _lookup(inter, rows, best[matched])
        dice[rows] = 2.0 * shared / (own[rows] + other[best[matched]])
        return float((own * dice).sum() / own.sum())

    return 0.5 * (
        side(o.intersection, o.true_area, o.pred_area) + side(o.intersection.T.tocsr(), o.pred_area, o.true_area)
    )


def pixel_dice(true, pred) -> float:
    """Dice of the foreground masks (``id > 0``); 1 when both are empty."""
    t, p = _as_instance_map(true, "true") > 0, _as_instance_map(pred, "pred") > 0
    if t.shape != p.shape:
        raise ValueError(f"true and pred must have the same shape, got {t.shape} and {p.shape}")
    total = int(t.sum()) + int(p.sum())
    return 1.0 if total == 0 else float(2 * np.logical_and(t, p).sum() / total)


@dataclass(frozen=True)
class InstanceScores:
    """AJI, object Dice and pixel DSC of one image, with the object counts on both sides."""

    aji: float
    object_dice: float
    pixel_dice: float
    true_objects: int
    pred_objects: int

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


def score_instances(true, pred) -> InstanceScores:
    """Every score of this module for one image, from one contingency table."""
    o = instance_overlaps(true, pred)
    return InstanceScores(
        aji=aggregated_jaccard_index(o, None),
        object_dice=object_dice(o, None),
        pixel_dice=pixel_dice(true, pred),
        true_objects=int(o.true_area.size),
        pred_objects=int(o.pred_area.size),
    )

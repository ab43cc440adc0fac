"""Per-sample meta of batch outputs whose rows are picked from the input's rows (MONAI lacks this).

A transform that returns ``2B`` samples built from ``B`` (HSMix's hard and soft halves) must give
each output sample the meta of the input sample it derives from: MONAI's ``convert_to_dst_type``
copies the input's meta as it is, so ``decollate_batch`` would pair ``2B`` samples with ``B`` entries.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import convert_to_dst_type

__all__ = ["like_input_rows", "reindex_batch_meta"]


def reindex_batch_meta(out: MetaTensor, rows: Sequence[int], batch_size: int) -> MetaTensor:
    """Re-index, in place, every per-sample entry of a batched MetaTensor's meta with ``rows``.

    Per-sample entries are lists, tuples, arrays and tensors whose first dimension is
    ``batch_size`` (e.g. ``filename_or_obj`` and ``affine`` after ``list_data_collate``), and the
    per-sample ``applied_operations``; other entries are kept as they are.

    Parameters
    ----------
    out : MetaTensor
        Output batch carrying the input's meta (e.g. from ``convert_to_dst_type``).
    rows : sequence of int
        For each output sample, the input sample it derives from.
    batch_size : int
        The input's batch size.
    """
    index = list(rows)
    out.meta = {k: _reindex(v, index, batch_size) for k, v in out.meta.items()}
    out.applied_operations = _reindex(out.applied_operations, index, batch_size)
    return out


def like_input_rows(out: torch.Tensor, like: Any, rows: torch.Tensor) -> Any:
    """``out`` in the type of ``like`` (MONAI's ``convert_to_dst_type``, keeping ``out``'s dtype), with
    a batched MetaTensor's per-sample meta following ``rows`` (see :func:`reindex_batch_meta`)."""
    result = convert_to_dst_type(out, dst=like, dtype=out.dtype)[0]
    if isinstance(result, MetaTensor) and isinstance(like, MetaTensor) and like.is_batch:
        reindex_batch_meta(result, rows.tolist(), like.shape[0])
    return result


def _reindex(value: Any, index: list, bsz: int) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim >= 1 and value.shape[0] == bsz:
        return value[index]
    if isinstance(value, (list, tuple)) and len(value) == bsz:
        return type(value)(value[i] for i in index) if isinstance(value, tuple) else [value[i] for i in index]
    return value

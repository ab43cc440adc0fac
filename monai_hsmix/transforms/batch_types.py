"""Returning batch outputs in the caller's type: numpy, torch, or MetaTensor with per-sample meta."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor


def to_torch(data: Any, name: str) -> torch.Tensor:
    """A torch view of numpy / torch / MetaTensor input (MetaTensor meta is kept aside by the caller)."""
    if isinstance(data, MetaTensor):
        return data.as_tensor()
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype == np.bool_:
            data = data.astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(data))
    raise TypeError(f"{name} must be a numpy array, torch tensor or MetaTensor, got {type(data).__name__}")


def like_input(out: torch.Tensor, like: Any, rows: torch.Tensor) -> Any:
    """Return ``out`` (a batch built from rows ``rows`` of ``like``) in the type of ``like``.

    For a batched MetaTensor every per-sample meta entry (lists and tensors with the batch size as
    first dimension, e.g. ``filename_or_obj`` and ``affine``) is re-indexed with ``rows``, so that
    ``decollate_batch`` of the output gives each mixed sample the meta of its first image ``X1``.
    A plain ``torch.cat`` would keep only the first ``B`` meta entries for ``2B`` samples.
    """
    if isinstance(like, MetaTensor):
        if not like.is_batch:
            return MetaTensor(out, meta=dict(like.meta), applied_operations=list(like.applied_operations))
        bsz = like.shape[0]
        index = rows.tolist()
        meta = {k: _reindex(v, index, bsz) for k, v in like.meta.items()}
        ops = _reindex(like.applied_operations, index, bsz)
        result = MetaTensor(out, meta=meta, applied_operations=ops)
        result.is_batch = True
        return result
    if isinstance(like, np.ndarray):
        return out.detach().cpu().numpy()
    return out


def _reindex(value: Any, index: list, bsz: int) -> Any:
    if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == bsz:
        return value[index]
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == bsz:
        return value[index]
    if isinstance(value, (list, tuple)) and len(value) == bsz:
        return type(value)(value[i] for i in index) if isinstance(value, tuple) else [value[i] for i in index]
    return value

"""Eq. 2, 5 and 7 on CPU tensors as single passes compiled by numba.

:func:`monai_hsmix.core.mix_with_masks` and :func:`monai_hsmix.core.segment_mean` are torch
operations that run on any device. On a CPU each of them is several passes over the batch (a
one-hot scatter, a blend, a scatter-add, a gather) with a dispatch per row; these kernels write
every output value once, reading the partner's row in place. They compute the same formulas:
``torch.lerp``'s two-sided form for the blend (so a weight of 0 or 1 copies a value exactly) and
float64 sums for the segment means.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

__all__ = ["can_run", "blend_rows", "blend_index_rows", "segment_mean_rows"]

_FLOATS = (torch.float32, torch.float64)


def can_run(*tensors: torch.Tensor) -> bool:
    """Whether the kernels take these tensors: CPU, no autograd, floats in float32 or float64."""
    return all(t.device.type == "cpu" and not t.requires_grad and (not t.is_floating_point() or t.dtype in _FLOATS)
               for t in tensors)


def blend_rows(tensor: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[b] = lerp(tensor[b], tensor[partner[b]], mask[b])``, the mask broadcast over channels."""
    b, c = tensor.shape[:2]
    _blend_rows(_rows(tensor, b, c), partner.cpu().numpy(), _rows(mask.to(tensor.dtype), b, 1)[:, 0], _rows(out, b, c))
    return out


def blend_index_rows(indices: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """One-hot channels of ``indices[b]`` and ``indices[partner[b]]`` blended by ``mask[b]`` into ``out``."""
    b, k = out.shape[:2]
    _blend_index_rows(_rows(indices, b, 1)[:, 0], partner.cpu().numpy(), _rows(mask.to(out.dtype), b, 1)[:, 0], _rows(out, b, k))
    return out


def segment_mean_rows(values: torch.Tensor, segments: torch.Tensor, num: int) -> torch.Tensor:
    """Every value replaced by the mean over its segment, image by image (labels below ``num``)."""
    b = values.shape[0]
    out = torch.empty_like(values)
    _segment_means(_rows(values, b, 1)[:, 0], _rows(segments.long(), b, 1)[:, 0], num, _rows(out, b, 1)[:, 0])
    return out


def _rows(t: torch.Tensor, b: int, c: int) -> np.ndarray:
    """``(B, C, N)`` numpy view of a contiguous tensor (a copy only if it is not contiguous)."""
    return t.detach().contiguous().numpy().reshape(b, c, -1)


@numba.njit(cache=True, nogil=True)
def _blend_rows(x, partner, mask, out):
    b_n, c_n, n = x.shape
    for b in range(b_n):
        p = partner[b]
        w = mask[b]
        for c in range(c_n):
            first, second, dst = x[b, c], x[p, c], out[b, c]
            for i in range(n):
                a, e, t = first[i], second[i], w[i]
                # torch.lerp's form: exact copies at t = 0 and t = 1
                dst[i] = a + t * (e - a) if t < 0.5 else e - (e - a) * (1 - t)
    return out


@numba.njit(cache=True, nogil=True)
def _blend_index_rows(indices, partner, mask, out):
    b_n, k_n, n = out.shape
    for b in range(b_n):
        first, second, w = indices[b], indices[partner[b]], mask[b]
        for k in range(k_n):
            dst = out[b, k]
            for i in range(n):
                a = 1.0 if first[i] == k else 0.0
                e = 1.0 if second[i] == k else 0.0
                dst[i] = (1 - w[i]) * a + w[i] * e
    return out


@numba.njit(cache=True, nogil=True)
def _segment_means(values, segments, num, out):
    b_n, n = values.shape
    sums = np.empty(num)
    counts = np.empty(num)
    for b in range(b_n):
        sums[:] = 0.0
        counts[:] = 0.0
        v, s = values[b], segments[b]
        for i in range(n):
            sums[s[i]] += v[i]
            counts[s[i]] += 1.0
        for j in range(num):
            if counts[j] > 0:
                sums[j] /= counts[j]
        dst = out[b]
        for i in range(n):
            dst[i] = sums[s[i]]
    return out

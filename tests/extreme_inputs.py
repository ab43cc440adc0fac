"""Hypothesis strategies of extreme finite inputs for the compiled kernels and their torch twins.

Values at float32's limits (3.4e38, denormals down to 1.4e-45), float64 beyond float32's range,
mixed signs, constant images; 1-voxel images and 1-slice volumes; non-contiguous and channels-last
layouts; float16, bfloat16, float64 and integer dtypes.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from hypothesis import strategies as st

F32_MAX = float(np.finfo(np.float32).max)
F32_DENORMAL = float(np.finfo(np.float32).smallest_subnormal)

#: value families, by the float32 (or float64) range they probe
KINDS = ("unit", "huge", "denormal", "tiny_range", "mixed", "constant", "wide64", "narrow64")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64)
LAYOUTS = ("contiguous", "strided", "channels_last")


def _values(kind: str, shape: Tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """float64 values of one family (float64 kinds keep their float64 values)."""
    u = rng.random(shape)
    if kind == "unit":
        return u
    if kind == "huge":  # both signs up to float32's largest: the range overflows float32
        return (2 * u - 1) * F32_MAX
    if kind == "denormal":  # float32 subnormals only: the range is below float32's tiny
        return np.floor(u * 64) * F32_DENORMAL
    if kind == "tiny_range":  # a range of a few float32 ulps around a large value
        return 1e30 * (1 + np.floor(u * 4) * 2.0**-23)
    if kind == "mixed":  # every scale at once
        pool = np.array([F32_MAX, -F32_MAX, F32_DENORMAL, -F32_DENORMAL, 0.0, 1.0, -1e-30, 1e30, 3e-39])
        return pool[rng.integers(0, len(pool), shape)]
    if kind == "constant":
        return np.full(shape, rng.choice([0.0, -F32_MAX, F32_DENORMAL, 7.0]))
    if kind == "wide64":  # finite float64 far beyond float32's range, both signs
        return (2 * u - 1) * 1.7e308
    if kind == "narrow64":  # structure finer than float32 can hold at this magnitude
        return 1.0 + u * 1e-12
    raise ValueError(kind)


def as_dtype(values: np.ndarray, kind: str, dtype: torch.dtype) -> torch.Tensor:
    """``values`` in ``dtype``: floats saturate to the dtype's finite range, integers take the
    values' rank order spread over a wide integer range (the family's shape, as integers)."""
    if kind in ("wide64", "narrow64"):
        return torch.from_numpy(values)  # only float64 holds them
    if dtype.is_floating_point:
        top = torch.finfo(dtype).max
        return torch.from_numpy(np.clip(values, -top, top)).to(dtype)
    top = torch.iinfo(dtype).max
    ranks = np.argsort(np.argsort(values.reshape(-1), kind="stable"), kind="stable").reshape(values.shape)
    if kind == "constant":
        ranks = np.zeros_like(ranks)
    scale = top // max(int(ranks.max()), 1)
    return torch.from_numpy(ranks.astype(np.int64) * scale - top // 2).to(dtype)


def with_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another memory layout."""
    if layout == "strided":  # every other element of a larger buffer, along the last axis
        wide = torch.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "channels_last" and x.ndim in (4, 5):
        fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
        return x.contiguous(memory_format=fmt)
    return x


@st.composite
def image_batches(draw, max_side: int = 12, max_batch: int = 3, max_channels: int = 3):
    """``(images, kind, dtype, layout)``: a batch of extreme finite images in some dtype and layout."""
    b = draw(st.integers(1, max_batch))
    c = draw(st.integers(1, max_channels))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    depth = draw(st.sampled_from([None, None, 1, 2, 5]))
    shape = (b, c, h, w) if depth is None else (b, c, h, w, depth)
    kind = draw(st.sampled_from(KINDS))
    dtype = torch.float64 if kind in ("wide64", "narrow64") else draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**31 - 1))
    x = as_dtype(_values(kind, shape, np.random.default_rng(seed)), kind, dtype)
    return with_layout(x, layout), kind, dtype, layout

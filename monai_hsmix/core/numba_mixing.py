"""Eq. 2, 5 and 7 for class labels on CPU tensors, as single passes compiled by numba.

:func:`monai_hsmix.core.mix_with_masks` and :func:`monai_hsmix.core.segment_mean` are torch
operations that run on any device. On a CPU, blending the one-hot channels of class indices is
a zero fill and two scatters per row, and a segment mean a scatter-add, a bincount and a gather;
these kernels write every output value once, reading the partner's row in place, with the same
formulas (``(1 - m) [Y1 = k] + m [Y2 = k]``, exact at ``m`` = 0 or 1; float64 sums for the means).
Image blends stay with ``torch.lerp``: one pass already, bound by writing the output.

Which one runs is the ``engine`` argument of those functions (:func:`use_kernels`), the same switch
:class:`~monai_hsmix.transforms.RandHSMix` passes to the SLIC and saliency backends: no global state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Iterator, Optional

import numba
import numpy as np
import torch

__all__ = [
    "ENGINES",
    "can_run",
    "check_engine",
    "compile_lock_path",
    "first_compile_lock",
    "use_kernels",
    "kernels_enabled",
    "blend_index_rows",
    "segment_mean_rows",
]

#: the implementations a backend or blend function can be asked for: ``"auto"`` (numba kernels for
#: CPU tensors, torch operations elsewhere), ``"torch"`` (torch operations on any device) or ``"numba"``
ENGINES = ("auto", "torch", "numba")
_FLOATS = (torch.float32, torch.float64)
_auto_uses_kernels = True  # only kernels_enabled (deprecated) changes it


def check_engine(engine: str) -> str:
    """``engine`` itself if it is one of :data:`ENGINES`, else a ``ValueError`` naming the choices."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


def use_kernels(engine: str, *tensors: torch.Tensor) -> bool:
    """Whether a core function given ``engine`` runs these kernels on ``tensors``.

    ``"torch"``: never. ``"auto"``: when they take the tensors (:func:`can_run`). ``"numba"``: the
    same, and a ``ValueError`` for tensors that are not on the CPU (as the backends do); tensors
    the kernels do not take on a CPU (autograd, half precision) go through the torch operations,
    which give the same values.
    """
    check_engine(engine)
    if engine == "torch" or (engine == "auto" and not _auto_uses_kernels):
        return False
    if engine == "numba" and any(t.device.type != "cpu" for t in tensors):
        devices = sorted({str(t.device) for t in tensors})
        raise ValueError(f"engine='numba' runs on CPU tensors only, got tensors on {devices}; use 'auto' or 'torch'")
    return can_run(*tensors)


@contextlib.contextmanager
def kernels_enabled(enabled: bool) -> Iterator[None]:
    """Deprecated: pass ``engine="torch"`` (or ``"numba"``) to the functions instead.

    Within the block, ``engine="auto"`` uses (``True``) or bypasses (``False``) these kernels.
    """
    warnings.warn(
        "numba_mixing.kernels_enabled is deprecated: pass engine='torch' or engine='numba' to "
        "mix_with_masks, segment_mean, hsmix_masks or the transforms",
        DeprecationWarning,
        stacklevel=3,
    )
    global _auto_uses_kernels
    before, _auto_uses_kernels = _auto_uses_kernels, bool(enabled)
    try:
        yield
    finally:
        _auto_uses_kernels = before


def compile_lock_path() -> str:
    """The lock file of :func:`first_compile_lock`: one per numba cache folder (processes sharing a
    cache wait for each other, others do not), in the temporary folder."""
    cache = numba.config.CACHE_DIR or str(Path(__file__).resolve().parents[1])
    return os.path.join(
        tempfile.gettempdir(), f"monai_hsmix-numba-{hashlib.sha1(cache.encode()).hexdigest()[:16]}.lock"
    )


_held = threading.local()
_compiled = set()  # kernel groups whose first call completed in this process


@contextlib.contextmanager
def first_compile_lock(group: str) -> Iterator[None]:
    """Around a process's calls of a group of kernels until one has completed: one process at a time compiles.

    numba compiles a kernel on its first call and writes it to its on-disk cache, where other
    processes find it. DataLoader workers of a fresh install would otherwise all compile the same
    kernels at once (each taking a core for tens of seconds); under this file lock the first
    compiles and the others wait, then load the cached kernels. Once a call of ``group`` has
    completed in this process the lock is skipped for it (it costs nothing after the first batch);
    nested use does not take it twice. Without ``fcntl`` (Windows) it does nothing.
    """
    if group in _compiled or getattr(_held, "depth", 0):
        _held.depth = getattr(_held, "depth", 0) + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        fcntl = None
    with open(compile_lock_path(), "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
            _compiled.add(group)
        finally:
            _held.depth = 0


def can_run(*tensors: torch.Tensor) -> bool:
    """Whether the kernels take these tensors: CPU, no autograd, floats in float32 or float64."""
    return all(
        t.device.type == "cpu" and not t.requires_grad and (not t.is_floating_point() or t.dtype in _FLOATS)
        for t in tensors
    )


def blend_index_rows(
    indices: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """One-hot channels of ``indices[b]`` and ``indices[partner[b]]`` blended by ``mask[b]`` into ``out``.

    ``indices`` is ``(B, 1, *spatial)``, ``mask`` ``(B, *spatial)``, ``out`` ``(B, K, *spatial)`` and
    ``partner`` ``(B,)`` batch indices; anything else raises a ``ValueError`` (the kernel indexes
    with them unchecked).
    """
    b, k = out.shape[:2]
    spatial = tuple(out.shape[2:])
    if tuple(indices.shape) != (b, 1) + spatial or tuple(mask.shape) != (b,) + spatial or tuple(partner.shape) != (b,):
        raise ValueError(
            f"indices {tuple(indices.shape)}, mask {tuple(mask.shape)} and partner {tuple(partner.shape)} "
            f"do not fit an output of {tuple(out.shape)}"
        )
    _check_range(partner, b, "partner")
    if not out.is_contiguous() or out.dtype != torch.float32:
        # the kernel writes through a view of out's memory, in float32 (one compiled version: what
        # mix_with_masks's label channels are)
        return out.copy_(blend_index_rows(indices, partner, mask, torch.empty(out.shape, dtype=torch.float32)))
    with first_compile_lock("blend_index_rows"):
        _blend_index_rows(
            _rows(indices.long(), b, 1)[:, 0],
            partner.cpu().long().numpy(),
            _rows(mask.to(torch.float32), b, 1)[:, 0],
            _rows(out, b, k),
        )
    return out


def segment_mean_rows(values: torch.Tensor, segments: torch.Tensor, num: Optional[int] = None) -> torch.Tensor:
    """Every value replaced by the mean over its segment, image by image.

    ``segments`` must have ``values``' shape and labels in ``[0, num)`` (``num``: by default one past
    the largest label): anything else raises a ``ValueError`` (the kernel indexes with them unchecked).
    """
    if values.shape != segments.shape:
        raise ValueError(f"values {tuple(values.shape)} and segments {tuple(segments.shape)} must have the same shape")
    num = _check_range(segments, num, "segment labels")
    b = values.shape[0]
    # in the values' own dtype (float32 or float64: two compiled versions, both made by
    # monai_hsmix.warmup; a float64 copy of float32 values cost 16 bytes a voxel of extra peak).
    # Row-major, whatever the values' layout: the kernel writes through a view of this memory
    out = torch.empty(values.shape, dtype=values.dtype)
    with first_compile_lock("segment_means"):
        _segment_means(_rows(values, b, 1)[:, 0], _rows(segments.long(), b, 1)[:, 0], num, _rows(out, b, 1)[:, 0])
    return out


def _check_range(labels: torch.Tensor, stop: Optional[int], name: str) -> int:
    """Raise unless every value of ``labels`` is non-negative and below ``stop`` (by default one
    past the largest value); returns ``stop``."""
    if labels.numel() == 0:
        return 1 if stop is None else stop
    lo, hi = (int(v) for v in torch.aminmax(labels.detach()))
    stop = hi + 1 if stop is None else stop
    if lo < 0 or hi >= stop:
        raise ValueError(f"{name} must be non-negative and below {stop}, got values from {lo} to {hi}")
    return stop


def _rows(t: torch.Tensor, b: int, c: int) -> np.ndarray:
    """``(B, C, N)`` numpy view of a contiguous tensor (a copy only if it is not contiguous)."""
    return t.detach().contiguous().numpy().reshape(b, c, -1)


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

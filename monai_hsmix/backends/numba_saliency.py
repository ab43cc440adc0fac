"""Fine-grained saliency as one fused numba CPU kernel, equal bit for bit to the torch operations.

:func:`monai_hsmix.backends.torch_saliency.torch_fine_grained_saliency` describes the algorithm.
On a CPU its torch form is some sixty cheap passes over every map, each paying dispatch and a
trip through the caches; here every map goes through all steps while its arrays stay in cache.

Every step is the same arithmetic as the torch form, so the maps are identical, not close:

- 8-bit levels as :func:`monai_hsmix.backends.intensity.channels_to_uint8_range` computes them
  in float32 (its ``255.0 / span`` is torch's ``reciprocal(span) * 255``, rounded twice);
- the blurs and box sums are exact integer arithmetic (in any order);
- the one rounding step per voxel and scale, ``gray - surround / count``, is the same float32
  division and subtraction, truncated toward zero;
- the rescaling and the channel mean are the same float32 operations in the same order.

A 2D map ``(H, W)`` runs as a ``(1, H, W)`` volume: an axis of one voxel leaves the blur (up to
its weight 4, which the rounding shift absorbs), the boxes and the counts unchanged.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

__all__ = ["numba_fine_grained_saliency"]

SCALES = np.array([12, 24, 48, 28, 56, 112], dtype=np.int64)  # as torch_saliency.SCALES
_TINY = np.float32(np.finfo(np.float32).tiny)


def numba_fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """Fine-grained saliency of a validated CPU batch: ``(B, C, *spatial)`` -> ``(B, *spatial)`` float32.

    The caller (:func:`~monai_hsmix.backends.torch_saliency.torch_fine_grained_saliency`) checks
    the input; this takes any real dtype and casts it to float32 as the torch form does.
    """
    b, c = images.shape[:2]
    spatial = tuple(images.shape[2:])
    volume = spatial if len(spatial) == 3 else (1,) + spatial
    # the cast is torch's, so float64, float16 and integer inputs give the torch form's levels
    x = images.detach().cpu().float().contiguous().numpy().reshape((b * c,) + volume)
    voxels = int(np.prod(volume))
    # box sums of levels are exact integers: int32 while the whole map sums below 2**31
    wide = 255 * voxels >= 2**31
    integral = np.empty(tuple(s + 1 for s in volume), dtype=np.int64 if wide else np.int32)
    out = np.zeros((b,) + volume, dtype=np.float32)
    _saliency_maps(x, c, integral, SCALES, out)
    return torch.from_numpy(out.reshape((b,) + spatial))


@numba.njit(cache=True, nogil=True)
def _saliency_maps(x, channels, integral, scales, out):
    """Saliency of every map of ``x`` ``(M, A, B, C)``, averaged per ``channels`` maps into ``out``."""
    m, na, nb, nc = x.shape
    gray = np.empty((na, nb, nc), dtype=np.int32)
    tmp = np.empty((na, nb, nc), dtype=np.int32)
    on = np.empty((na, nb, nc), dtype=np.int32)
    off = np.empty((na, nb, nc), dtype=np.int32)
    for i in range(m):
        _levels(x[i], gray)
        _blur(gray, tmp)
        _blur(gray, tmp)
        _integral(gray, integral)
        _centre_surround(gray, integral, scales, on, off)
        _combine(on, off, out[i // channels])
    scale = np.float32(channels)
    flat = out.reshape(-1)
    for k in range(flat.size):
        flat[k] = flat[k] / scale


@numba.njit(cache=True, nogil=True, fastmath={"nnan", "nsz"})
def _range(flat):
    """Smallest and largest value; the flags let LLVM vectorise (inputs are finite, a sign of zero is lost only in ``x - lo``'s zero)."""
    lo = flat[0]
    hi = flat[0]
    for k in range(flat.size):
        v = flat[k]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _levels(x, gray):
    """Min-max scaled 8-bit levels of one map, rounded half to even, as the torch helper does."""
    flat = x.reshape(-1)
    lo, hi = _range(flat)
    span = np.float32(hi - lo)
    scale = np.float32(0.0)
    if span > 0:
        # torch computes 255.0 / span as reciprocal(span) * 255: two float32 roundings
        scale = np.float32(np.float32(1.0) / max(span, _TINY)) * np.float32(255.0)
    g = gray.reshape(-1)
    for k in range(flat.size):
        v = np.rint(np.float32(flat[k] - lo) * scale)
        g[k] = np.int32(min(max(v, np.float32(0.0)), np.float32(255.0)))


@numba.njit(cache=True, nogil=True)
def _blur(gray, tmp):
    """``[1, 2, 1]`` along every axis longer than one voxel (mirror borders), rounded half up, in place."""
    na, nb, nc = gray.shape
    axes = 0
    src, dst = gray, tmp
    if nc > 1:
        for a in range(na):
            for b in range(nb):
                s = src[a, b]
                d = dst[a, b]
                d[0] = 2 * s[0] + 2 * s[1]
                # shifted views indexed from 0: no negative index to wrap, so LLVM vectorises
                s0, s1, s2, d1 = s[: nc - 2], s[1 : nc - 1], s[2:], d[1 : nc - 1]
                for k in range(nc - 2):
                    d1[k] = s0[k] + 2 * s1[k] + s2[k]
                d[nc - 1] = 2 * s[nc - 1] + 2 * s[nc - 2]
        src, dst = dst, src
        axes += 1
    if nb > 1:
        for a in range(na):
            for b in range(nb):
                lo = b - 1 if b > 0 else 1
                hi = b + 1 if b < nb - 1 else nb - 2
                s0, s1, s2, d = src[a, lo], src[a, b], src[a, hi], dst[a, b]
                for k in range(nc):
                    d[k] = s0[k] + 2 * s1[k] + s2[k]
        src, dst = dst, src
        axes += 1
    if na > 1:
        for a in range(na):
            lo = a - 1 if a > 0 else 1
            hi = a + 1 if a < na - 1 else na - 2
            for b in range(nb):
                s0, s1, s2, d = src[lo, b], src[a, b], src[hi, b], dst[a, b]
                for k in range(nc):
                    d[k] = s0[k] + 2 * s1[k] + s2[k]
        src, dst = dst, src
        axes += 1
    # the torch form weighs a one-voxel axis by 4 and shifts 2 bits more: the same rounding
    shift = 2 * axes
    s = src.reshape(-1)
    g = gray.reshape(-1)
    if shift == 0:
        return
    half = 1 << (shift - 1)
    for k in range(g.size):
        g[k] = (s[k] + half) >> shift


@numba.njit(cache=True, nogil=True)
def _integral(gray, integral):
    """``integral[a, b, c]``: sum of ``gray[:a, :b, :c]`` (a zero plane leads every axis)."""
    na, nb, nc = gray.shape
    integral[0, :, :] = 0
    integral[:, 0, :] = 0
    integral[:, :, 0] = 0
    for a in range(na):
        for b in range(nb):
            g = gray[a, b]
            up = integral[a, b + 1]
            left = integral[a + 1, b]
            corner = integral[a, b]
            d = integral[a + 1, b + 1]
            run = corner[0]  # 0, in the integral's type
            for k in range(nc):
                run += g[k]
                d[k + 1] = run + up[k + 1] + left[k + 1] - corner[k + 1]


@numba.njit(cache=True, nogil=True)
def _box_bounds(size, n):
    """Per index of an axis: the clipped box ``[i - n + 1, i + n]`` as integral indices ``lo, hi`` and its length."""
    lo = np.empty(size, dtype=np.int64)
    hi = np.empty(size, dtype=np.int64)
    count = np.empty(size, dtype=np.float32)  # exact integers, as in the torch form
    for i in range(size):
        lo[i] = max(i - n + 1, 0)
        hi[i] = min(i + n + 1, size)
        count[i] = hi[i] - lo[i]
    return lo, hi, count


@numba.njit(cache=True, nogil=True)
def _centre_surround(gray, integral, scales, on, off):
    """On and off sums over the scales of one map, row by row of the last axis.

    Each row of box sums over the first two axes, cumulative along the last, is written into
    ``ext`` between zeros (the clipped lower end: the integral starts at 0) and copies of its
    total (the clipped upper end). There every box along the last axis is a difference of two
    shifted slices, with no clipping: one loop without branches, which LLVM vectorises.
    """
    na, nb, nc = gray.shape
    on[:] = 0
    off[:] = 0
    pad = scales.max() + 1
    ext = np.zeros(pad + nc + pad, dtype=integral.dtype)
    row = ext[pad : pad + nc + 1]
    surround = np.empty(nc, dtype=integral.dtype)
    one = np.float32(1.0)
    for n in scales:
        alo, ahi, acount = _box_bounds(na, n)
        blo, bhi, bcount = _box_bounds(nb, n)
        _, _, ccount = _box_bounds(nc, n)
        # the box [k - n + 1, k + n] is row[k + n + 1] - row[k - n + 1] on the extended row
        upper = ext[pad + n + 1 : pad + n + 1 + nc]
        lower = ext[pad - n + 1 : pad - n + 1 + nc]
        beyond = ext[pad + nc + 1 :]
        for a in range(na):
            a0, a1 = alo[a], ahi[a]
            for b in range(nb):
                b0, b1 = blo[b], bhi[b]
                p11, p01, p10, p00 = integral[a1, b1], integral[a0, b1], integral[a1, b0], integral[a0, b0]
                for k in range(nc + 1):
                    row[k] = p11[k] - p01[k] - p10[k] + p00[k]
                total = row[nc]
                for k in range(beyond.size):
                    beyond[k] = total
                head = acount[a] * bcount[b]
                g, o, f = gray[a, b], on[a, b], off[a, b]
                # numba computes int32 differences in int64, which AVX2 cannot convert to float
                # in vectors: storing them in the integral's type narrows them back
                for k in range(nc):
                    surround[k] = upper[k] - lower[k] - g[k]
                for k in range(nc):
                    centre = g[k]
                    # voxels of the box but the centre, in float32 as the torch form builds them
                    # (exact integers); only a one-voxel map has none, and there the torch
                    # form divides by 1
                    count = max(head * ccount[k] - one, one)
                    d = np.int32(np.float32(centre) - np.float32(surround[k]) / count)  # the cast truncates toward zero
                    o[k] += max(d, 0)
                    f[k] += max(-d, 0)


@numba.njit(cache=True, nogil=True)
def _combine(on, off, out):
    """Rescales on and off to 0..255, adds them, rescales to the larger maximum and adds the map to ``out``."""
    on_flat = on.reshape(-1)
    off_flat = off.reshape(-1)
    o = out.reshape(-1)
    top_on = np.float32(max(on_flat.max(), 1))
    top_off = np.float32(max(off_flat.max(), 1))
    scale = np.float32(255.0)
    # the rescaling is monotone, so the largest rescaled value is that of the largest sum
    top = max(
        np.floor(np.float32(np.float32(on_flat.max()) / top_on) * scale),
        np.floor(np.float32(np.float32(off_flat.max()) / top_off) * scale),
        np.float32(1.0),
    )
    for k in range(on_flat.size):
        # truncated 255 * x / max(x), in the torch form's order: division first
        u = np.floor(np.float32(np.float32(on_flat[k]) / top_on) * scale)
        v = np.floor(np.float32(np.float32(off_flat[k]) / top_off) * scale)
        mixed = min(np.floor(np.float32((u + v) * scale) / top), scale)
        o[k] += mixed / scale

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
from numba.extending import overload
import numpy as np
import torch

from monai_hsmix.backends.intensity import float32_maps
from monai_hsmix.backends.torch_saliency import SCALES as _SCALES
from monai_hsmix.core.numba_mixing import first_compile_lock

__all__ = ["numba_fine_grained_saliency"]

SCALES = np.array(_SCALES, dtype=np.int64)  # the kernels take the torch form's scales as an array
_TINY = np.float32(np.finfo(np.float32).tiny)


def numba_fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """Fine-grained saliency of a validated CPU batch: ``(B, C, *spatial)`` -> ``(B, *spatial)`` float32.

    The caller (:func:`~monai_hsmix.backends.torch_saliency.torch_fine_grained_saliency`) checks
    the input; this takes any real dtype and casts it to float32 as the torch form does.
    """
    b, c = images.shape[:2]
    spatial = tuple(images.shape[2:])
    volume = spatial if len(spatial) == 3 else (1,) + spatial
    # the float32 maps the torch form's levels come from (float64, float16, integer inputs, and
    # values whose float32 range would overflow, included)
    maps, lo, hi = float32_maps(images.detach().cpu().reshape((b * c,) + spatial))
    x = maps.contiguous().numpy().reshape((b * c,) + volume)
    voxels = int(np.prod(volume))
    # box sums of levels are exact integers: int32 while the whole map sums below 2**31
    wide = 255 * voxels >= 2**31
    # columns of the integral before and after the last axis, for boxes beyond either end
    pad = min(int(SCALES.max()), volume[-1]) + 1
    integral = np.empty((volume[0] + 1, volume[1] + 1, pad + volume[2] + pad), dtype=np.int64 if wide else np.int32)
    out = np.zeros((b,) + volume, dtype=np.float32)
    with first_compile_lock("saliency"):
        _saliency_maps(x, lo.numpy(), hi.numpy(), c, integral, pad, SCALES, out)
    return torch.from_numpy(out.reshape((b,) + spatial))


def _narrow(value, like):
    """``value`` (a box sum) in the dtype of the integral image ``like``."""
    return like.dtype.type(value)


# numba computes int32 differences in int64, which AVX2 cannot convert to float in vectors; a
# box sum fits in the integral's type, so narrowing it back lets LLVM vectorise. An overload
# (not a function passed as an argument, which numba cannot cache) picks the cast at compile time
@overload(_narrow)
def _narrow_overload(value, like):
    if like.dtype == numba.types.int32:
        return lambda value, like: np.int32(value)
    return lambda value, like: value


@numba.njit(cache=True, nogil=True)
def _saliency_maps(x, lo, hi, channels, integral, pad, scales, out):
    """Saliency of every map of ``x`` ``(M, A, B, C)``, averaged per ``channels`` maps into ``out``."""
    m, na, nb, nc = x.shape
    gray = np.empty((na, nb, nc), dtype=np.int32)
    tmp = np.empty((na, nb, nc), dtype=np.int32)
    sums = np.empty((na, nb, nc), dtype=np.int32)
    integral[:] = 0  # the leading zero planes and columns; every map writes the rest
    for i in range(m):
        _levels(x[i], lo[i], hi[i], gray)
        _blur(gray, tmp)
        _blur(gray, tmp)
        _integral(gray, integral, pad)
        _centre_surround(gray, integral, pad, scales, sums)
        _combine(sums, out[i // channels])
    scale = np.float32(channels)
    flat = out.reshape(-1)
    for k in range(flat.size):
        flat[k] = flat[k] / scale


@numba.njit(cache=True, nogil=True, inline="always")
def _levels(x, lo, hi, gray):
    """Min-max scaled 8-bit levels of one map, rounded half to even, as the torch helper does."""
    flat = x.reshape(-1)
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
    # unsigned 32-bit operands (the sums are positive): numba widens signed ones to int64,
    # whose arithmetic shift halves the vector width
    half = np.uint32(1 << (shift - 1))
    bits = np.uint32(shift)
    for k in range(g.size):
        g[k] = (np.uint32(s[k]) + half) >> bits


@numba.njit(cache=True, nogil=True, inline="always")
def _integral(gray, integral, pad):
    """Integral image, padded along the last axis so that no box along it needs clipping.

    ``integral[a, b, pad + c]`` is the sum of ``gray[:a, :b, :c]`` (a zero plane leads the first
    two axes); along the last axis ``pad`` zeros lead (the sum before the first voxel) and
    copies of the row's total follow (the sum up to the last voxel, for boxes beyond it).
    """
    na, nb, nc = gray.shape
    for a in range(na):
        for b in range(nb):
            g = gray[a, b]
            # rows of the integral from the column before the first voxel on (the leading
            # zeros are written once, by the caller)
            up = integral[a, b + 1, pad:]
            left = integral[a + 1, b, pad:]
            corner = integral[a, b, pad:]
            d = integral[a + 1, b + 1, pad:]
            # the running sum along the row is sequential; adding the rows before it is not,
            # and in a loop of its own LLVM vectorises it
            run = corner[0]  # 0, in the integral's type
            for k in range(nc):
                run += g[k]
                d[k + 1] = run
            if na == 1:  # 2D map: the rows of the leading zero plane add nothing
                for k in range(1, nc + 1):
                    d[k] += left[k]
            else:
                for k in range(1, nc + 1):
                    d[k] += up[k] + left[k] - corner[k]
            d[nc + 1 :] = d[nc]


@numba.njit(cache=True, nogil=True)
def _box_bounds(size, scales):
    """Per scale and index of an axis: the clipped box ``[i - n + 1, i + n]`` as integral indices ``lo, hi``
    and its length."""
    lo = np.empty((scales.size, size), dtype=np.int64)
    hi = np.empty((scales.size, size), dtype=np.int64)
    count = np.empty((scales.size, size), dtype=np.float32)  # exact integers, as in the torch form
    for s in range(scales.size):
        n = scales[s]
        for i in range(size):
            lo[s, i] = max(i - n + 1, 0)
            hi[s, i] = min(i + n + 1, size)
            count[s, i] = hi[s, i] - lo[s, i]
    return lo, hi, count


@numba.njit(cache=True, nogil=True)
def _centre_surround(gray, integral, pad, scales, sums):
    """On and off sums over the scales of one map, packed as ``on + off * 2**16`` in ``sums``.

    On the padded integral (:func:`_integral`) the box ``[k - n + 1, k + n]`` along the last
    axis is the difference of columns ``pad + k + n + 1`` and ``pad + k - n + 1`` of the rows
    the other axes' bounds pick, with no clipping: one loop without branches, which LLVM
    vectorises. It checks at run time that the arrays it writes overlap none it reads, and
    gives up beyond a few such checks: hence one packed output (each sum is at most
    6 x 255 < 2**16), and in 3D the four rows' combination built first into ``row``. All
    scales of a row run together, so its sums stay in the L1 cache.
    """
    na, nb, nc = gray.shape
    alo, ahi, acount = _box_bounds(na, scales)
    blo, bhi, bcount = _box_bounds(nb, scales)
    _, _, ccount = _box_bounds(nc, scales)
    row = np.empty(integral.shape[2], dtype=integral.dtype)
    for a in range(na):
        for b in range(nb):
            g, out = gray[a, b], sums[a, b]
            out[:] = 0
            for s in range(scales.size):
                n = min(scales[s], nc)  # a box longer than the axis covers all of it either way
                a0, a1, b0, b1 = alo[s, a], ahi[s, a], blo[s, b], bhi[s, b]
                up, low = pad + n + 1, pad - n + 1
                head = acount[s, a] * bcount[s, b]
                cc = ccount[s]
                # d = g - (box - g) / count, truncated toward zero by the cast; count is the
                # number of voxels of the box but the centre, in float32 as the torch form builds
                # it (exact integers); a one-voxel map has none, and the torch form divides by 1.
                # Both branches spell this out: LLVM did not vectorise it behind a helper
                if na == 1:  # 2D map: the rows of the leading zero plane add nothing
                    q1, q0 = integral[a1, b1, up : up + nc], integral[a1, b0, up : up + nc]
                    r1, r0 = integral[a1, b1, low : low + nc], integral[a1, b0, low : low + nc]
                    for k in range(nc):
                        count = max(head * cc[k] - np.float32(1.0), np.float32(1.0))
                        surround = np.float32(_narrow((q1[k] - q0[k]) - (r1[k] - r0[k]) - g[k], row))
                        d = np.int32(np.float32(g[k]) - surround / count)
                        out[k] += max(d, 0) + (max(-d, 0) << 16)
                else:
                    p11, p01, p10, p00 = integral[a1, b1], integral[a0, b1], integral[a1, b0], integral[a0, b0]
                    for k in range(row.size):
                        row[k] = p11[k] - p01[k] - p10[k] + p00[k]
                    q, r = row[up : up + nc], row[low : low + nc]
                    for k in range(nc):
                        count = max(head * cc[k] - np.float32(1.0), np.float32(1.0))
                        surround = np.float32(_narrow(q[k] - r[k] - g[k], row))
                        d = np.int32(np.float32(g[k]) - surround / count)
                        out[k] += max(d, 0) + (max(-d, 0) << 16)


@numba.njit(cache=True, nogil=True, inline="always")
def _combine(sums, out):
    """Rescales on and off to 0..255, adds them, rescales to the larger maximum and adds the map to ``out``."""
    packed = sums.reshape(-1)
    o = out.reshape(-1)
    max_on = np.int32(0)
    max_off = np.int32(0)
    for k in range(packed.size):
        max_on = max(max_on, np.int32(packed[k] & 0xFFFF))
        max_off = max(max_off, np.int32(packed[k] >> 16))
    top_on = np.float32(max(max_on, 1))
    top_off = np.float32(max(max_off, 1))
    scale = np.float32(255.0)
    for k in range(packed.size):
        # truncated 255 * x / max(x), in the torch form's order: division first
        # (np.int32: numba widens to int64, which AVX2 cannot convert to float in vectors)
        u = np.floor(np.float32(np.float32(np.int32(packed[k] & 0xFFFF)) / top_on) * scale)
        v = np.floor(np.float32(np.float32(np.int32(packed[k] >> 16)) / top_off) * scale)
        # the torch form then takes floor((u + v) * 255 / top) with top the larger maximum of
        # u and v: 255 (a maximum divided by itself is 1) unless both maps are 0, where u + v
        # is 0 too; both products and the quotient are exact, so that is u + v itself
        o[k] += min(u + v, scale) / scale

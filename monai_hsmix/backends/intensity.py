"""Intensity helpers shared by the superpixel and saliency backends."""

from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["all_finite", "channels_to_uint8_range", "finite_magnitude", "float32_maps"]

# float32 arithmetic on a map whose values stay within 2**100 in magnitude, and whose range is 0 or at
# least 2**-100, cannot overflow: sums of 8 voxels (pooling), the range itself and 255 / range stay finite
_SAFE_MAGNITUDE = 2.0**100
_SAFE_RANGE = 2.0**-100


def channels_to_uint8_range(images: torch.Tensor) -> torch.Tensor:
    """Min-max scale every channel of every image to integer levels 0..255.

    OpenCV's fine-grained saliency reads its input as 8-bit (given float32 it silently reinterprets
    raw bytes), so both saliency backends quantise exactly like this before computing saliency:
    the torch backend matches the reference only if they see the same 8-bit levels.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, *spatial)`` real-valued tensor (finite).

    Returns
    -------
    torch.Tensor
        Same shape, ``float32`` holding integers in ``[0, 255]``. The range is taken over all
        spatial dimensions of a channel (a whole volume for 3D input); a constant channel maps to 0.
    """
    b, c = images.shape[:2]
    x, lo, hi = float32_maps(images.reshape((b * c,) + tuple(images.shape[2:])))
    x, lo, hi = x.reshape(images.shape), lo.reshape(b, c), hi.reshape(b, c)
    span = hi - lo
    scale = torch.where(span > 0, 255.0 / span.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(span))
    view = (slice(None), slice(None)) + (None,) * (x.ndim - 2)
    return torch.round((x - lo[view]) * scale[view]).clamp_(0, 255)


def all_finite(images: torch.Tensor) -> bool:
    """Whether a tensor holds no NaN or infinite value, without a full-size temporary.

    ``torch.isfinite(x).all()`` materialises ``x.abs()`` and two boolean masks (about 1.7 times a
    float32 input on the CPU). The smallest and largest values are finite exactly when every
    value is (NaN propagates through both reductions), and one ``aminmax`` pass finds them.
    """
    if not images.is_floating_point():
        return True
    return finite_magnitude(images) is not None


def finite_magnitude(images: torch.Tensor) -> "float | None":
    """The largest absolute value of a floating tensor (0 when empty), or ``None`` when it holds a NaN
    or an infinity: one ``aminmax`` pass (see :func:`all_finite`)."""
    if images.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(images.detach())
    if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
        return None
    return max(abs(float(lo)), abs(float(hi)))


def float32_maps(maps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``maps`` in float32, each map's min-max scaling kept, with its smallest and largest value.

    Every backend min-max scales its input (per image for SLIC, per channel for saliency) and works
    in float32 from there. Finite inputs can still overflow that arithmetic: float32 values near
    3e38 give an infinite range, float64 values beyond 3.4e38 an infinite cast, and ranges below
    about 1e-36 an infinite ``255 / range``. Maps at risk are multiplied by a power of two (exact:
    their min-max scaling does not change) that brings their largest magnitude into ``[0.5, 1)``.
    float64 maps are min-max scaled in float64 and cast afterwards, so structure finer than
    float32's precision at their magnitude (``1 + 1e-9 x``) survives.

    Parameters
    ----------
    maps : torch.Tensor
        ``(N, ...)`` finite real tensor: ``N`` maps, each scaled on its own.

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)
        The ``float32`` maps (``maps`` itself when it is float32 and safe), and their ``(N,)``
        minima and maxima in float32. Within a map, ``(x - lo) / (hi - lo)`` computed in float32
        never overflows.
    """
    x = maps.detach()
    n = x.shape[0]
    view = (n,) + (1,) * (x.ndim - 1)
    if x.dtype == torch.float64:
        flat = x.reshape(n, -1)
        lo, hi = flat.amin(dim=1), flat.amax(dim=1)
        span = hi - lo
        # values near 1.8e308 of both signs have an infinite range: halve both first (exact)
        wide = ~torch.isfinite(span)
        if bool(wide.any()):
            half = torch.where(wide, 0.5, 1.0).to(x.dtype)
            x, lo, hi = x * half.view(view), lo * half, hi * half
            span = hi - lo
        span = torch.where(span > 0, span, torch.ones_like(span))
        x = ((x - lo.view(view)) / span.view(view)).float()
        flat = x.reshape(n, -1)
        return x, flat.amin(dim=1), flat.amax(dim=1)
    x = x.float()
    flat = x.reshape(n, -1)
    # two reductions, not torch.aminmax: along a dimension it is the slower one on the CPU
    # (benchmarks/bench_torch_idioms.py, docs/performance.md)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    lo64, hi64 = lo.double(), hi.double()
    top = torch.maximum(lo64.abs(), hi64.abs())
    span = hi64 - lo64
    risky = (top > _SAFE_MAGNITUDE) | ((span > 0) & (span < _SAFE_RANGE))
    if not bool(risky.any()):
        return x, lo, hi
    # top = m * 2**e with m in [0.5, 1): dividing by 2**e is exact for every value that stays a
    # normal float32, and the ones that do not lie far below float32's precision at the map's top
    factor = torch.where(risky, torch.ldexp(torch.ones_like(top), -torch.frexp(top).exponent), torch.ones_like(top))
    x = (x.double() * factor.view(view)).float()
    return x, (lo64 * factor).float(), (hi64 * factor).float()

"""Intensity helpers shared by the saliency backends."""

from __future__ import annotations

import torch


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
    x = images.float()
    flat = x.flatten(2)
    lo = flat.amin(dim=2)
    hi = flat.amax(dim=2)
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
    if not images.is_floating_point() or images.numel() == 0:
        return True
    lo, hi = torch.aminmax(images.detach())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))

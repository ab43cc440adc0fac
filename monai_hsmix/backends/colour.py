"""sRGB to CIELAB on torch tensors, on the tensor's device.

scikit-image's ``slic`` clusters colour images in CIELAB (``rgb2lab``: sRGB with the D65 white
point, 2-degree observer), and the HSMix paper's compactness values for H&E and dermoscopy assume
those units (L in 0-100, a and b up to about +-100). The torch SLIC needs the same features
without a round trip to numpy, so the conversion is written here with the standard constants.
"""

from __future__ import annotations

import torch

__all__ = ["rgb_to_lab", "SLIC_SPACES", "check_slic_space"]

SLIC_SPACES = ("intensity", "lab")

# linear sRGB -> CIE XYZ (D65), rows X, Y, Z
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3: below it CIELAB's cube root becomes a line
_KAPPA_SLOPE = 7.787  # slope of that line, (29/6)^2 / 3


def check_slic_space(slic_space: str, channels: int) -> None:
    """Raise a ``ValueError`` for an unknown feature space, or Lab asked for non-RGB input."""
    if slic_space not in SLIC_SPACES:
        raise ValueError(f"slic_space must be one of {SLIC_SPACES}, got {slic_space!r}")
    if slic_space == "lab" and channels != 3:
        raise ValueError(
            f"slic_space='lab' converts RGB images to CIELAB and needs 3 channels, got {channels}; "
            "use slic_space='intensity' for intensity or modality stacks"
        )


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB of sRGB values in ``[0, 1]``, channel axis 1.

    Parameters
    ----------
    rgb : torch.Tensor
        ``(B, 3, *spatial)`` floating tensor, gamma-encoded sRGB in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        ``(B, 3, *spatial)`` L (0-100), a, b in the input's floating dtype (computed in at least
        float32), equal to ``skimage.color.rgb2lab`` up to rounding.
    """
    if rgb.ndim < 3 or rgb.shape[1] != 3:
        raise ValueError(f"rgb_to_lab expects (B, 3, *spatial), got shape {tuple(rgb.shape)}")
    dtype = torch.promote_types(rgb.dtype, torch.float32)
    x = rgb.to(dtype)
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055).pow(2.4), x / 12.92)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=dtype, device=x.device)
    white = torch.tensor(_D65_WHITE, dtype=dtype, device=x.device)
    xyz = torch.einsum("ij,bj...->bi...", matrix, linear)
    xyz = xyz / white.view((1, 3) + (1,) * (x.ndim - 2))
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON).pow(1.0 / 3.0), _KAPPA_SLOPE * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)
    return lab.to(rgb.dtype if rgb.is_floating_point() else dtype)

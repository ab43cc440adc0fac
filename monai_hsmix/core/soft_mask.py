"""Blending weights for pasting a lesion: Soft-CP's ring-decayed soft mask, a Gaussian-blurred mask
(TumorCP-style) and the hard mask itself.

Every function takes a binary mask whose last ``spatial_dims`` axes are spatial (leading axes are
batch-like) and returns float32 weights in ``[0, 1]`` of the same shape, on the same device.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import GaussianSmooth
from monai.utils import convert_to_dst_type, convert_to_tensor
from scipy import ndimage

__all__ = ["BLEND_MODES", "SoftMask", "dilate", "soft_mask", "gaussian_mask", "blend_weights", "support_radius"]

BLEND_MODES = ("soft", "gaussian", "hard")
ArrayLike = Union[np.ndarray, torch.Tensor]


def _spatial_dims(mask: torch.Tensor, spatial_dims: Optional[int]) -> int:
    if spatial_dims is None:
        if mask.ndim not in (2, 3):
            raise ValueError(
                f"mask has {mask.ndim} dimensions: pass spatial_dims (2 or 3) to say which trailing axes are spatial"
            )
        return mask.ndim
    if spatial_dims not in (2, 3) or mask.ndim < spatial_dims:
        raise ValueError(f"spatial_dims must be 2 or 3 and at most mask.ndim={mask.ndim}, got {spatial_dims}")
    return spatial_dims


def dilate(mask: torch.Tensor, spatial_dims: int, iterations: int = 1, connectivity: str = "full") -> torch.Tensor:
    """Binary dilation of a float {0, 1} tensor ``(N, *spatial)`` by a 3-wide structuring element.

    ``connectivity="full"`` uses the square/cube (chessboard rings); ``"face"`` the cross
    (city-block rings). Implemented with max pooling, so it runs on any device without Python loops
    over voxels. MONAI's ``utils_morphological_ops.dilate`` gives the same result for ``"full"`` but
    has no cross element and convolves a ``(2k+1)^d`` kernel, which is slower (docs/performance.md).
    """
    if connectivity not in ("full", "face"):
        raise ValueError(f"connectivity must be 'full' or 'face', got {connectivity!r}")
    pool = F.max_pool2d if spatial_dims == 2 else F.max_pool3d

    def axis_pool(x: torch.Tensor, axis: int, reach: int) -> torch.Tensor:
        kernel, pad = [1] * spatial_dims, [0] * spatial_dims
        kernel[axis], pad[axis] = 2 * reach + 1, reach
        return pool(x, kernel_size=tuple(kernel), stride=1, padding=tuple(pad))

    x = mask.unsqueeze(1)
    if iterations < 1:
        return mask
    if connectivity == "full":
        # the square/cube is separable: n dilations = one 1D max filter of reach n per axis
        for axis in range(spatial_dims):
            x = axis_pool(x, axis, iterations)
        return x.squeeze(1)
    for _ in range(iterations):
        x = torch.stack([axis_pool(x, axis, 1) for axis in range(spatial_dims)]).amax(0)
    return x.squeeze(1)


def _as_batched_float(mask: ArrayLike, spatial_dims: Optional[int]):
    t = convert_to_tensor(mask, track_meta=False)
    sd = _spatial_dims(t, spatial_dims)
    spatial = t.shape[t.ndim - sd :]
    flat = (t.reshape(-1, *spatial) != 0).to(torch.float32)
    return t, sd, flat


def soft_mask(
    mask: ArrayLike,
    alpha: float = 0.7,
    num_rings: int = 5,
    ring_width: int = 1,
    connectivity: str = "full",
    spatial_dims: Optional[int] = None,
    backend: str = "auto",
) -> ArrayLike:
    """Soft-CP soft mask: 1 inside the lesion, ``alpha ** k`` on the k-th ring outside it, 0 beyond.

    Ring ``k`` (1-based) is what ``k * ring_width`` dilations add to the mask compared with
    ``(k - 1) * ring_width`` dilations, so the weight is non-increasing with distance from the lesion
    edge and the support is the mask dilated ``num_rings * ring_width`` times. (Dilating the lesion
    is eroding the background, so the same rings come from eroding the complement.)

    Parameters
    ----------
    mask : ndarray or Tensor
        Binary lesion mask (non-zero = lesion); the last ``spatial_dims`` axes are spatial.
    alpha : float
        Softening coefficient in (0, 1): the factor by which the weight drops per ring.
    num_rings : int
        Number of rings outside the lesion (>= 0; 0 gives the hard mask).
    ring_width : int
        Dilation iterations per ring (>= 1).
    connectivity : {"full", "face"}
        Structuring element of the dilation: square/cube or cross.
    spatial_dims : int, optional
        2 or 3; defaults to ``mask.ndim`` when that is 2 or 3.
    backend : {"auto", "torch", "scipy"}
        "torch" dilates by max pooling on the mask's device; "scipy" uses one chamfer distance
        transform on the CPU (the faster one there, see docs/performance.md); "auto" picks scipy for
        CPU input.

    Returns
    -------
    ndarray or Tensor
        float32 weights, same shape and container type as ``mask``.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie in the open interval (0, 1), got {alpha}")
    if int(num_rings) != num_rings or num_rings < 0:
        raise ValueError(f"num_rings must be a non-negative integer, got {num_rings}")
    if int(ring_width) != ring_width or ring_width < 1:
        raise ValueError(f"ring_width must be a positive integer, got {ring_width}")
    if backend not in ("auto", "torch", "scipy"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'scipy', got {backend!r}")
    t, sd, hard = _as_batched_float(mask, spatial_dims)
    if connectivity not in ("full", "face"):
        raise ValueError(f"connectivity must be 'full' or 'face', got {connectivity!r}")
    if backend == "scipy" or (backend == "auto" and hard.device.type == "cpu"):
        out = _soft_mask_scipy(hard, alpha, num_rings, ring_width, connectivity)
    else:
        # ring index = how many of the cumulative dilations fail to reach a voxel, counted down
        reached = torch.zeros_like(hard)
        grown = hard
        for _ in range(int(num_rings)):
            grown = dilate(grown, sd, int(ring_width), connectivity)
            reached += grown
        ring = float(num_rings) + 1.0 - reached  # 1 for the first ring, ..., num_rings for the last
        out = torch.where(hard > 0, torch.ones_like(hard), torch.where(reached > 0, float(alpha) ** ring, 0.0))
    return convert_to_dst_type(out.reshape(t.shape), mask, dtype=torch.float32)[0]


def _soft_mask_scipy(hard: torch.Tensor, alpha: float, num_rings: int, ring_width: int, connectivity: str):
    """CPU path: one chamfer distance transform gives every ring at once (same rings as the dilations)."""
    metric = "chessboard" if connectivity == "full" else "taxicab"
    out = np.zeros(tuple(hard.shape), dtype=np.float32)
    for i, item in enumerate(hard.cpu().numpy() > 0):
        if not item.any():
            continue
        ring = np.ceil(ndimage.distance_transform_cdt(~item, metric=metric) / ring_width)
        out[i] = np.where(item, 1.0, np.where(ring <= num_rings, float(alpha) ** ring, 0.0))
    return torch.from_numpy(out).to(hard.device)


def gaussian_mask(mask: ArrayLike, sigma: float = 2.0, spatial_dims: Optional[int] = None) -> ArrayLike:
    """TumorCP-style blending weight: the hard mask smoothed by a Gaussian of std ``sigma`` voxels.

    Unlike the soft mask it drops below 1 inside the lesion near its edge.
    """
    if not float(sigma) > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    t, sd, hard = _as_batched_float(mask, spatial_dims)
    smooth = GaussianSmooth(sigma=float(sigma))
    out = torch.stack([convert_to_tensor(smooth(h[None]), track_meta=False)[0] for h in hard])
    return convert_to_dst_type(out.clamp(0, 1).reshape(t.shape), mask, dtype=torch.float32)[0]


def support_radius(mode: str, num_rings: int = 5, ring_width: int = 1, sigma: float = 2.0) -> int:
    """How many voxels beyond the lesion edge the weight of ``mode`` can be non-zero."""
    if mode == "soft":
        return int(num_rings) * int(ring_width)
    if mode == "gaussian":
        # MONAI's GaussianSmooth truncates its kernel at 4 sigma.
        return int(math.ceil(4.0 * float(sigma)))
    if mode == "hard":
        return 0
    raise ValueError(f"mode must be one of {BLEND_MODES}, got {mode!r}")


def blend_weights(
    mask: ArrayLike,
    mode: str = "soft",
    alpha: float = 0.7,
    num_rings: int = 5,
    ring_width: int = 1,
    sigma: float = 2.0,
    connectivity: str = "full",
    spatial_dims: Optional[int] = None,
) -> ArrayLike:
    """Blending weight of ``mode`` ("soft", "gaussian" or "hard") for a binary lesion mask."""
    if mode == "soft":
        return soft_mask(mask, alpha, num_rings, ring_width, connectivity, spatial_dims)
    if mode == "gaussian":
        return gaussian_mask(mask, sigma, spatial_dims)
    if mode == "hard":
        t, _, hard = _as_batched_float(mask, spatial_dims)
        return convert_to_dst_type(hard.reshape(t.shape), mask, dtype=torch.float32)[0]
    raise ValueError(f"mode must be one of {BLEND_MODES}, got {mode!r}")


class SoftMask:
    """Callable form of :func:`soft_mask` with its parameters fixed (and checked) at construction.

    Examples
    --------
    >>> make = SoftMask(alpha=0.5, num_rings=2)
    >>> weights = make(lesion_mask)  # doctest: +SKIP
    """

    def __init__(
        self,
        alpha: float = 0.7,
        num_rings: int = 5,
        ring_width: int = 1,
        connectivity: str = "full",
        spatial_dims: Optional[int] = None,
        backend: str = "auto",
    ) -> None:
        self.kwargs = dict(
            alpha=alpha,
            num_rings=num_rings,
            ring_width=ring_width,
            connectivity=connectivity,
            spatial_dims=spatial_dims,
            backend=backend,
        )
        # fail where a bad configuration is written, not at the first call
        soft_mask(np.zeros((1, 1), dtype=np.uint8), **dict(self.kwargs, spatial_dims=None))

    def __call__(self, mask: ArrayLike) -> ArrayLike:
        return soft_mask(mask, **self.kwargs)

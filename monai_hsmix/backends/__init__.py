"""Superpixel and saliency backends.

A superpixel backend maps ``(images (B, C, *spatial) float, n_segments (B,) int, compactness,
spacing)`` to ``(B, *spatial)`` int64 label maps with labels contiguous from 0. A saliency backend maps
``images (B, C, *spatial)`` to ``(B, *spatial)`` float32 saliency in ``[0, 1]``. Both return
tensors on the input's device.
"""

from monai_hsmix.backends.registry import available_backends, resolve_backend

__all__ = ["available_backends", "resolve_backend"]

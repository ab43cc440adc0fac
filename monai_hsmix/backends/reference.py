"""Reference backends: scikit-image SLIC and OpenCV fine-grained static saliency.

These run image by image on the CPU. They are the ground truth that the torch backends are tested
against, and they run as the paper's code ran: scikit-image's ``slic`` on all channels (CIELAB for
RGB images with ``slic_space="lab"``, the intensities otherwise), OpenCV's
``StaticSaliencyFineGrained`` on 8-bit input.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from monai_hsmix.backends.colour import check_slic_space
from monai_hsmix.backends.intensity import channels_to_uint8_range, float32_maps
from monai_hsmix.backends.validation import check_image_batch
from monai_hsmix.core.labels import relabel_contiguous

__all__ = ["opencv_saliency", "skimage_slic"]


def skimage_slic(
    images: torch.Tensor,
    n_segments: torch.Tensor,
    compactness: float,
    spacing: Optional[Sequence[float]] = None,
    max_num_iter: int = 10,
    slic_space: str = "intensity",
    max_segments: Optional[int] = None,
    validate: bool = True,
) -> torch.Tensor:
    """SLIC superpixels (2D) or supervoxels (3D) with scikit-image, one image at a time.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` float tensor. ``skimage.segmentation.slic`` min-max
        scales it to ``[0, 1]`` over all channels (so ``compactness`` does not depend on intensity
        units) and, for ``slic_space="lab"``, converts the 3 channels from RGB to CIELAB.
    n_segments : torch.Tensor
        ``(B,)`` integer tensor, the requested number of segments for each image.
    compactness : float
        Balance of colour proximity and space proximity (scikit-image's meaning).
    spacing : sequence of float, optional
        Voxel spacing along each spatial axis, for anisotropic volumes.
    max_num_iter : int
        Largest number of k-means iterations (scikit-image stops earlier when no pixel moves).
    slic_space : {"intensity", "lab"}
        Cluster the channels as they are, or (3 channels only) as CIELAB colours.
    max_segments : int, optional
        Accepted for the torch backend's contract; scikit-image clusters every image on its own,
        so it changes nothing here.
    validate : bool
        Check ``images`` (:func:`~monai_hsmix.backends.validation.check_image_batch`); callers that
        have checked the batch already (the transforms) pass ``False``.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``int64`` label maps on the input's device, labels contiguous from 0.
    """
    from skimage.segmentation import slic

    if validate:
        check_image_batch(images, "images", allow_empty_batch=True)
    check_slic_space(slic_space, images.shape[1])
    # scikit-image min-max scales each image itself; float32_maps keeps that scaling, finite
    arr = float32_maps(images)[0].cpu().numpy()
    counts = n_segments.detach().cpu().numpy().astype(int).reshape(-1)
    out = np.empty((arr.shape[0],) + arr.shape[2:], dtype=np.int64)
    for b in range(arr.shape[0]):
        # channel-last view: reshaping (C, H, W) to (H, W, C) would scramble the pixels
        img = np.ascontiguousarray(np.moveaxis(arr[b], 0, -1), dtype=np.float64)
        seg = slic(
            img,
            n_segments=int(counts[b]),
            compactness=float(compactness),
            max_num_iter=int(max_num_iter),
            spacing=None if spacing is None else np.asarray(spacing, dtype=np.float64),
            channel_axis=-1,
            convert2lab=slic_space == "lab",
            enforce_connectivity=True,
            start_label=0,
        )
        out[b] = seg
    # the backend contract promises labels 0..k-1 in every image; scikit-image does not
    return relabel_contiguous(torch.from_numpy(out)).to(images.device)


def opencv_saliency(images: torch.Tensor, validate: bool = True) -> torch.Tensor:
    """OpenCV fine-grained static saliency (Montabone & Soto 2010), one 2D slice at a time.

    Every channel is min-max scaled to 8 bits (:func:`channels_to_uint8_range`), its saliency
    computed, and the per-channel maps averaged. 3D volumes are processed slice by slice along the
    last axis, since OpenCV's algorithm is 2D.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` or ``(B, C, H, W, D)`` float tensor.
    validate : bool
        Check ``images`` (:func:`~monai_hsmix.backends.validation.check_image_batch`); callers that
        have checked the batch already (the transforms) pass ``False``.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``float32`` saliency in ``[0, 1]`` on the input's device.
    """
    import cv2

    if validate:
        check_image_batch(images, "images", allow_empty_batch=True)
    levels = channels_to_uint8_range(images).cpu().numpy().astype(np.uint8)
    spatial = levels.shape[2:]
    if len(spatial) not in (2, 3):
        raise ValueError(f"opencv_saliency expects 2D or 3D images, got spatial shape {spatial}")
    stack = levels if len(spatial) == 3 else levels[..., None]
    sal = np.zeros((stack.shape[0],) + stack.shape[2:], dtype=np.float32)
    engine = cv2.saliency.StaticSaliencyFineGrained_create()
    for b in range(stack.shape[0]):
        for c in range(stack.shape[1]):
            for z in range(stack.shape[-1]):
                ok, smap = engine.computeSaliency(np.ascontiguousarray(stack[b, c, :, :, z]))
                if not ok:
                    raise RuntimeError("OpenCV StaticSaliencyFineGrained.computeSaliency failed")
                sal[b, :, :, z] += smap.astype(np.float32)
    sal /= stack.shape[1]
    if len(spatial) == 2:
        sal = sal[..., 0]
    return torch.from_numpy(np.clip(sal, 0.0, 1.0)).to(images.device)

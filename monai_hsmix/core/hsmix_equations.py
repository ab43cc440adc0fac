"""HSMix (arXiv 2511.17614, Sec. 3, Algorithm 1) as pure tensor functions.

Notation follows the paper: ``X1, Y1`` an image and its labels, ``X2, Y2`` its partner in the batch,
``SP1, SP2`` their superpixel maps, ``SA1, SA2`` their saliency maps.

* Eq. 1-2 (hard mixing): every superpixel of ``SP2`` is selected with probability ``p``; the union
  is the binary mask ``Mh`` and ``Xh = X1 (1 - Mh) + X2 Mh``, ``Yh`` likewise.
* Eq. 3-7 (soft mixing): ``SPm = SP1 (1 - Mh) + SP2 Mh`` (with the two label sets kept distinct),
  ``SA21 = SA2 / (SA1 + SA2)``, ``Ms`` = mean of ``SA21`` over each superpixel of ``SPm``, and
  ``Xs = X1 (1 - Ms) + X2 Ms``, ``Ys`` likewise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from monai_hsmix.core.labels import one_hot_channels
from monai_hsmix.core.segment_ops import segment_mean

#: value of SA2 / (SA1 + SA2) where both saliencies are 0: neither image is more salient there
EQUAL_SALIENCY_RATIO = 0.5


def hard_mask_from_segments(segments: torch.Tensor, uniforms: torch.Tensor, p: float) -> torch.Tensor:
    """Eq. 1: the union of the segments selected by Bernoulli(p) draws.

    Parameters
    ----------
    segments : torch.Tensor
        ``(B, *spatial)`` integer labels of the partner images' superpixels (``SP2``).
    uniforms : torch.Tensor
        ``(B, K)`` draws from U(0, 1) with ``K`` greater than every label; segment ``k`` of pair
        ``b`` is selected when ``uniforms[b, k] < p``.
    p : float
        Selection probability in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` float mask of 0 and 1 (``Mh``).
    """
    bsz = segments.shape[0]
    flat = segments.reshape(bsz, -1).long()
    if uniforms.shape[0] != bsz or uniforms.shape[1] <= int(flat.max()):
        raise ValueError(f"uniforms {tuple(uniforms.shape)} must be (B, K) with K > every segment label")
    selected = (uniforms < p).to(uniforms.dtype)
    return selected.gather(1, flat).reshape(segments.shape)


def mixed_segment_grid(segments1: torch.Tensor, segments2: torch.Tensor, hard_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``SPm = SP1 (1 - Mh) + SP2 Mh`` with the labels of ``SP2`` shifted past those of ``SP1``.

    Without the shift, superpixel ``k`` of ``SP1`` and superpixel ``k`` of ``SP2`` would merge into
    one region of ``SPm`` and Eq. 5 would average saliency across two unrelated areas.
    """
    offset = int(segments1.max().item()) + 1
    return torch.where(hard_mask > 0.5, segments2.long() + offset, segments1.long())


def relative_saliency(saliency1: torch.Tensor, saliency2: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``SA21 = SA2 / (SA1 + SA2)``, :data:`EQUAL_SALIENCY_RATIO` where both are 0."""
    total = saliency1 + saliency2
    # where both are 0 the division gives NaN, which the where replaces
    return torch.where(total > 0, saliency2 / total, EQUAL_SALIENCY_RATIO)


def soft_mask_from_saliency(saliency1: torch.Tensor, saliency2: torch.Tensor, mixed_segments: torch.Tensor) -> torch.Tensor:
    """Eq. 4-5: the relative saliency averaged inside every superpixel of ``SPm`` (``Ms``)."""
    return segment_mean(relative_saliency(saliency1, saliency2), mixed_segments)


def blend(
    first: torch.Tensor, second: torch.Tensor, mask: torch.Tensor, out: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Eq. 2 and 6-7: ``first (1 - mask) + second mask``, the mask broadcast over channels.

    Parameters
    ----------
    first, second : torch.Tensor
        ``(B, C, *spatial)``.
    mask : torch.Tensor
        ``(B, *spatial)`` values in ``[0, 1]``.
    out : torch.Tensor, optional
        Where to write the result (e.g. a slice of a preallocated output batch).
    """
    # torch.lerp returns exactly `first` where the mask is 0 and exactly `second` where it is 1
    # (so hard-mixed pixels are copies, not recomputations), with no full-size temporaries
    return torch.lerp(first, second, mask.unsqueeze(1).to(first.dtype), out=out)


def blend_index_labels(
    first: torch.Tensor,
    second: torch.Tensor,
    mask: torch.Tensor,
    num_classes: int,
    out: Optional[torch.Tensor] = None,
    binary: bool = False,
) -> torch.Tensor:
    """:func:`blend` of the one-hot encodings of class-index labels, without building them.

    Only the channels of the two classes at a pixel are non-zero: ``first``'s class gets
    ``1 - mask`` and ``second``'s ``mask`` added (their sum where both classes agree), written by
    two scatters. Where the mask is 0 or 1 the result is exactly the one-hot encoding of ``first``
    or ``second``.

    Parameters
    ----------
    first, second : torch.Tensor
        ``(B, 1, *spatial)`` ``int64`` class indices in ``[0, num_classes)``.
    mask : torch.Tensor
        ``(B, *spatial)`` values in ``[0, 1]``.
    num_classes : int
        Number of output channels.
    out : torch.Tensor, optional
        ``(B, num_classes, *spatial)`` floating tensor to write into.
    binary : bool
        The mask holds only 0 and 1 (hard mixing): the result is the one-hot encoding of the
        selected classes, written by one scatter.
    """
    weight = mask.unsqueeze(1)
    if binary:
        return one_hot_channels(torch.where(weight > 0.5, second, first), num_classes, out=out)
    if out is None:
        out = torch.empty((first.shape[0], num_classes) + tuple(first.shape[2:]), dtype=torch.float32, device=first.device)
    weight = weight.to(out.dtype)
    out.zero_().scatter_(1, first, 1 - weight)
    return out.scatter_add_(1, second, weight)


@dataclass
class HSMixMasks:
    """The masks and maps of one HSMix call (everything needed to mix any tensor of the batch).

    Attributes are ``(B, *spatial)`` tensors except ``partner`` (``(B,)``, the batch index of ``X2``
    for pair ``b``). ``soft_mask`` is ``None`` when only hard mixing was asked for (no saliency is
    computed then); the three superpixel maps are ``None`` when they were not kept (mixing needs
    only the masks, and the maps are as large as the masks).
    """

    hard_mask: torch.Tensor
    soft_mask: Optional[torch.Tensor]
    segments: Optional[torch.Tensor]
    partner_segments: Optional[torch.Tensor]
    mixed_segments: Optional[torch.Tensor]
    partner: torch.Tensor


@dataclass
class HSMixOutput(HSMixMasks):
    """The masks plus the mixed images and labels (channel axis kept); soft fields ``None`` for
    hard-only mixing, label fields ``None`` without labels."""

    hard_image: Optional[torch.Tensor] = None
    hard_label: Optional[torch.Tensor] = None
    soft_image: Optional[torch.Tensor] = None
    soft_label: Optional[torch.Tensor] = None


def hsmix_masks(
    partner: torch.Tensor,
    segments: torch.Tensor,
    uniforms: torch.Tensor,
    p: float,
    soft_mask: Optional[torch.Tensor] = None,
    saliency: Optional[torch.Tensor] = None,
    keep_maps: bool = True,
) -> HSMixMasks:
    """Eq. 1 and 3-5 for a batch: ``Mh``, ``SPm`` and ``Ms`` (see :func:`hsmix_batch` for the arguments).

    With ``keep_maps=False`` the superpixel maps are not returned, so their memory is freed as
    soon as the masks are built.
    """
    partner = partner.to(segments.device)
    segments2 = segments[partner]
    hard = hard_mask_from_segments(segments2, uniforms, p)
    soft_from_saliency = soft_mask is None and saliency is not None
    mixed = mixed_segment_grid(segments, segments2, hard) if keep_maps or soft_from_saliency else None
    if soft_from_saliency:
        soft_mask = soft_mask_from_saliency(saliency, saliency[partner], mixed)
    if not keep_maps:
        segments = segments2 = mixed = None
    return HSMixMasks(hard_mask=hard, soft_mask=soft_mask, segments=segments, partner_segments=segments2,
                      mixed_segments=mixed, partner=partner)


def hsmix_batch(
    images: torch.Tensor,
    labels: Optional[torch.Tensor],
    partner: torch.Tensor,
    segments: torch.Tensor,
    uniforms: torch.Tensor,
    p: float,
    soft_mask: Optional[torch.Tensor] = None,
    saliency: Optional[torch.Tensor] = None,
) -> HSMixOutput:
    """Hard and soft mixing of every image with its partner (Algorithm 1 for a batch).

    Each image's superpixels and saliency are computed once for the batch; ``SP2`` and ``SA2`` are
    gathered through ``partner`` rather than recomputed for every pair.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, *spatial)`` images.
    labels : torch.Tensor, optional
        ``(B, K, *spatial)`` label channels (one-hot or multi-label), mixed exactly like the images.
    partner : torch.Tensor
        ``(B,)`` int64 index of each image's partner.
    segments : torch.Tensor
        ``(B, *spatial)`` superpixel labels of every image.
    uniforms : torch.Tensor
        ``(B, K)`` U(0, 1) draws for the Bernoulli selection (see :func:`hard_mask_from_segments`).
    p : float
        Selection probability.
    soft_mask : torch.Tensor, optional
        ``(B, *spatial)`` ready-made ratio ``Ms`` (the Table 7 ablations: one Beta ratio per image, or
        the pixel-wise saliency ratio). When omitted, Eq. 3-5 build it from ``saliency``.
    saliency : torch.Tensor, optional
        ``(B, *spatial)`` saliency of every image. With neither ``soft_mask`` nor ``saliency`` only
        hard mixing is done.
    """
    masks = hsmix_masks(partner.to(images.device), segments, uniforms, p, soft_mask=soft_mask, saliency=saliency)
    images2 = images[masks.partner]
    out = HSMixOutput(**vars(masks))
    out.hard_image = blend(images, images2, masks.hard_mask)
    if masks.soft_mask is not None:
        out.soft_image = blend(images, images2, masks.soft_mask)
    if labels is not None:
        labels2 = labels[masks.partner]
        out.hard_label = blend(labels, labels2, masks.hard_mask)
        if masks.soft_mask is not None:
            out.soft_label = blend(labels, labels2, masks.soft_mask)
    return out

"""HSMix (arXiv 2511.17614, Sec. 3, Algorithm 1) as pure tensor functions.

Notation and equation numbers follow the paper: ``X1, Y1`` an image and its labels, ``X2, Y2`` its
partner in the batch, ``SP1, SP2`` their superpixel maps, ``SA1, SA2`` their saliency maps.

* Eq. 1 (hard mask): every superpixel of ``SP2`` is selected with probability ``p``; the union of
  the selected ones is the binary mask ``Mh``.
* Eq. 2 (hard sample): ``Xh = X1 (1 - Mh) + X2 Mh``, ``Yh`` likewise.
* Eq. 3 (relative saliency): ``SA21 = SA2 / (SA1 + SA2)``.
* Eq. 4 (mixed grid): ``SPm = SP1 (1 - Mh) + SP2 Mh``, with the two label sets kept distinct.
* Eq. 5 (per-superpixel mean): ``SA21`` averaged over the pixels of each superpixel of ``SPm``.
* Eq. 6 (soft mask): ``Ms``, every pixel carrying the mean of its ``SPm`` superpixel.
* Eq. 7 (soft sample): ``Xs = X1 (1 - Ms) + X2 Ms``, ``Ys`` likewise.

:func:`hsmix_masks` builds ``Mh`` and ``Ms`` for a batch, :func:`mix_with_masks` applies them to any
tensor of the batch (images, one-hot or multi-label channels, class indices): the transforms call
exactly these two.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from monai.networks.utils import one_hot

from monai_hsmix.core import numba_mixing
from monai_hsmix.core.segment_ops import segment_mean

__all__ = [
    "blend",
    "blend_index_labels",
    "EQUAL_SALIENCY_RATIO",
    "hard_mask_from_segments",
    "hsmix_masks",
    "HSMixMasks",
    "identity_masks",
    "mix_with_masks",
    "mixed_segment_grid",
    "relative_saliency",
    "soft_mask_from_saliency",
]

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
    """Eq. 4: ``SPm = SP1 (1 - Mh) + SP2 Mh`` with the labels of ``SP2`` shifted past those of ``SP1``.

    Without the shift, superpixel ``k`` of ``SP1`` and superpixel ``k`` of ``SP2`` would merge into
    one region of ``SPm`` and Eq. 5 would average saliency across two unrelated areas.
    """
    offset = int(segments1.max().item()) + 1
    return torch.where(hard_mask > 0.5, segments2.long() + offset, segments1.long())


def relative_saliency(saliency1: torch.Tensor, saliency2: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``SA21 = SA2 / (SA1 + SA2)``, :data:`EQUAL_SALIENCY_RATIO` where both are 0."""
    total = saliency1 + saliency2
    # where both are 0 the division gives NaN, which the where replaces
    return torch.where(total > 0, saliency2 / total, EQUAL_SALIENCY_RATIO)


def soft_mask_from_saliency(
    saliency1: torch.Tensor, saliency2: torch.Tensor, mixed_segments: torch.Tensor, engine: str = "auto"
) -> torch.Tensor:
    """Eq. 5-6: the relative saliency (Eq. 3) averaged inside every superpixel of ``SPm`` (``Ms``).

    ``engine`` chooses the implementation of the means (see :func:`~monai_hsmix.core.segment_mean`).
    """
    return segment_mean(relative_saliency(saliency1, saliency2), mixed_segments, engine=engine)


def blend(
    first: torch.Tensor, second: torch.Tensor, mask: torch.Tensor, out: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Eq. 2 and 7: ``first (1 - mask) + second mask``, the mask broadcast over channels.

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
        return _one_hot_into(torch.where(weight > 0.5, second, first), num_classes, out)
    if out is None:
        shape = (first.shape[0], num_classes) + tuple(first.shape[2:])
        out = torch.empty(shape, dtype=torch.float32, device=first.device)
    weight = weight.to(out.dtype)
    out.zero_().scatter_(1, first, 1 - weight)
    return out.scatter_add_(1, second, weight)


@dataclass
class HSMixMasks:
    """The masks and maps of one HSMix call (everything needed to mix any tensor of the batch).

    Attributes are ``(B, *spatial)`` tensors except ``partner`` (``(B,)``, the batch index of ``X2``
    for pair ``b``). ``soft_mask`` is ``None`` when it was not asked for (no saliency is computed
    for hard-only mixing; ``Mh`` is always built, since ``SPm`` needs it); the three superpixel maps
    are ``None`` when they were not kept (mixing needs
    only the masks, and the maps are as large as the masks).
    """

    hard_mask: torch.Tensor
    soft_mask: Optional[torch.Tensor]
    segments: Optional[torch.Tensor]
    partner_segments: Optional[torch.Tensor]
    mixed_segments: Optional[torch.Tensor]
    partner: torch.Tensor

    def parts(self, hard: bool = True, soft: bool = True) -> List[Tuple[torch.Tensor, bool]]:
        """``(mask, binary)`` for the hard and/or soft part, in the paper's order (hard first)."""
        chosen = [(self.hard_mask, True)] if hard else []
        if soft:
            if self.soft_mask is None:
                raise ValueError("the soft mask was not computed for this batch")
            chosen.append((self.soft_mask, False))
        return chosen


def hsmix_masks(
    partner: torch.Tensor,
    segments: torch.Tensor,
    uniforms: torch.Tensor,
    p: float,
    soft_mask: Optional[torch.Tensor] = None,
    saliency: Optional[torch.Tensor] = None,
    keep_maps: bool = True,
    engine: str = "auto",
) -> HSMixMasks:
    """Eq. 1 and 3-6 for a batch: ``Mh``, ``SPm`` and ``Ms``.

    Each image's superpixels and saliency are computed once for the batch; ``SP2`` and ``SA2`` are
    gathered through ``partner`` rather than recomputed for every pair.

    Parameters
    ----------
    partner : torch.Tensor
        ``(B,)`` int64 batch index of each image's partner ``X2``.
    segments : torch.Tensor
        ``(B, *spatial)`` superpixel labels of every image.
    uniforms : torch.Tensor
        ``(B, K)`` U(0, 1) draws for the Bernoulli selection (see :func:`hard_mask_from_segments`).
    p : float
        Selection probability.
    soft_mask : torch.Tensor, optional
        ``(B, *spatial)`` ready-made ratio ``Ms`` (the Table 7 ablations: one Beta ratio per image,
        or the pixel-wise saliency ratio). When omitted, Eq. 3-6 build it from ``saliency``.
    saliency : torch.Tensor, optional
        ``(B, *spatial)`` saliency of every image. With neither ``soft_mask`` nor ``saliency``
        only the hard mask is built.
    keep_maps : bool
        Return the superpixel maps too; ``False`` frees them as soon as the masks exist.
    engine : {"auto", "torch", "numba"}
        Implementation of Eq. 5's means (see :func:`~monai_hsmix.core.segment_mean`).

    Returns
    -------
    HSMixMasks
    """
    partner = partner.to(segments.device)
    segments2 = segments[partner]
    hard = hard_mask_from_segments(segments2, uniforms, p)
    soft_from_saliency = soft_mask is None and saliency is not None
    mixed = mixed_segment_grid(segments, segments2, hard) if keep_maps or soft_from_saliency else None
    if soft_from_saliency:
        soft_mask = soft_mask_from_saliency(saliency, saliency[partner], mixed, engine=engine)
    if not keep_maps:
        segments = segments2 = mixed = None
    return HSMixMasks(
        hard_mask=hard,
        soft_mask=soft_mask,
        segments=segments,
        partner_segments=segments2,
        mixed_segments=mixed,
        partner=partner,
    )


def mix_with_masks(
    tensor: torch.Tensor,
    partner: torch.Tensor,
    parts: Sequence[Tuple[torch.Tensor, bool]],
    include_original: bool = False,
    num_classes: Optional[int] = None,
    engine: str = "auto",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2 and 7 for any tensor of the batch: every part's blend, stacked along the batch axis.

    This is the one mixing path of the package: images, one-hot / multi-label channels and class
    indices all go through it.

    Parameters
    ----------
    tensor : torch.Tensor
        ``(B, C, *spatial)`` floating tensor, or, with ``num_classes``, validated ``(B, 1, *spatial)``
        ``int64`` class indices whose one-hot channels are mixed (without building them).
    partner : torch.Tensor
        ``(B,)`` batch index of each row's ``X2``.
    parts : sequence of (torch.Tensor, bool)
        The masks to apply, each ``(B, *spatial)`` with values in ``[0, 1]``, and whether it holds
        only 0 and 1 (``Mh``: label channels are then copied, not blended). See
        :meth:`HSMixMasks.parts`.
    include_original : bool
        Put the unmixed rows (one-hot for class indices) in front.
    num_classes : int, optional
        Number of classes of index labels.
    engine : {"auto", "torch", "numba"}
        How index labels are blended on a CPU: one compiled pass per part (``"auto"``, ``"numba"``;
        :func:`monai_hsmix.core.numba_mixing.use_kernels`) or the torch scatters (``"torch"``, what
        other devices run); the same values either way. Image blends are ``torch.lerp`` always.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The ``(B * n, C', *spatial)`` output (``n`` = number of parts, plus one with
        ``include_original``; ``C' = num_classes`` for index labels, which come back ``float32``)
        and, for each output row, the input row it derives from (its ``X1``).
    """
    numba_mixing.check_engine(engine)
    bsz = tensor.shape[0]
    first = 1 if include_original else 0
    if partner.shape != (bsz,) or (bsz and (int(partner.min()) < 0 or int(partner.max()) >= bsz)):
        raise ValueError(f"partner must hold one batch index in [0, {bsz}) per sample, got {partner.tolist()}")
    rows = torch.arange(bsz).repeat(first + len(parts))
    if num_classes is None and tensor.requires_grad and torch.is_grad_enabled():
        # autograd cannot record writes into a preallocated output (lerp's out=): build the parts
        # as new tensors, so gradients reach both images through the blend, as with MONAI's CutMix
        pieces = [tensor] if first else []
        pieces += [blend(tensor, tensor.index_select(0, partner.to(tensor.device)), mask) for mask, _ in parts]
        return torch.cat(pieces), rows
    channels, dtype = (tensor.shape[1], tensor.dtype) if num_classes is None else (num_classes, torch.float32)
    shape = (bsz * (first + len(parts)), channels) + tuple(tensor.shape[2:])
    out = torch.empty(shape, dtype=dtype, device=tensor.device)
    if first and num_classes is None:
        out[:bsz] = tensor
    elif first:
        _one_hot_into(tensor, num_classes, out[:bsz])
    partners = partner.tolist()
    for k, (mask, binary) in enumerate(parts, start=first):
        part = out[k * bsz : (k + 1) * bsz]
        if num_classes is not None and numba_mixing.use_kernels(engine, tensor, mask, out):
            # CPU: one compiled pass writes the blended one-hot channels instead of a zero fill and two
            # scatters (docs/performance.md); image blends are bound by writing the output, and
            # torch.lerp already is one pass
            numba_mixing.blend_index_rows(tensor, partner, mask, part)
            continue
        mix = blend
        if num_classes is not None:
            # a binary mask makes its labels one-hot copies: one scatter each
            mix = functools.partial(blend_index_labels, num_classes=num_classes, binary=binary)
        # row by row: partners' rows are read in place instead of gathered into a copy, and
        # temporaries stay one sample large
        for row, other in enumerate(partners):
            mix(tensor[row : row + 1], tensor[other : other + 1], mask[row : row + 1], out=part[row : row + 1])
    return out, rows


def identity_masks(
    bsz: int, spatial: Sequence[int], device: "torch.device | str | None" = None, dtype: torch.dtype = torch.float32
) -> HSMixMasks:
    """Masks that mix nothing: every image paired with itself, ``Mh = Ms = 0``, one superpixel.

    What a batch that was not mixed (``prob`` not drawn, a batch of one) reports, so that callers
    see the same fields whatever the draw.
    """
    zeros = torch.zeros((bsz,) + tuple(spatial), dtype=dtype, device=device)
    segments = torch.zeros((bsz,) + tuple(spatial), dtype=torch.long, device=device)
    return HSMixMasks(
        hard_mask=zeros,
        soft_mask=zeros.clone(),
        segments=segments,
        partner_segments=segments.clone(),
        mixed_segments=segments.clone(),
        partner=torch.arange(bsz, device=device),
    )


def _one_hot_into(indices: torch.Tensor, num_classes: int, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MONAI's ``one_hot(indices, num_classes, dim=1)`` (float32), written into ``out`` when given: a
    slice of the mixed batch, which ``one_hot`` (no ``out``) would make a second copy of."""
    if out is None:
        return one_hot(indices, num_classes, dim=1)
    return out.zero_().scatter_(1, indices, 1.0)

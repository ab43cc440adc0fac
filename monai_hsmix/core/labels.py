"""Label validation and conversion to channels that can be mixed.

Mixing class indices (``0.7 * 2 + 0.3 * 5``) produces classes present in neither source, so labels
are always mixed as one-hot or multi-label channels.
"""

from __future__ import annotations

from typing import Optional

import torch

_ONE_HOT_ATOL = 1e-3


def labels_to_channels(labels: torch.Tensor, num_classes: Optional[int] = None, multilabel: bool = False) -> torch.Tensor:
    """Validate a batch of labels and return them as float channels ready for mixing.

    Parameters
    ----------
    labels : torch.Tensor
        ``(B, 1, *spatial)`` class indices, or ``(B, K, *spatial)`` one-hot / soft one-hot channels, or
        (with ``multilabel=True``) ``(B, K, *spatial)`` independent binary or soft channels.
    num_classes : int, optional
        Number of classes. Required for index labels; checked against ``K`` for channel labels.
    multilabel : bool
        Channels are independent (e.g. BraTS WT/TC/ET) and may overlap; values must lie in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        ``(B, K, *spatial)`` float32 channels on the labels' device.

    Raises
    ------
    ValueError
        For non-finite values, index labels without ``num_classes``, index values outside
        ``[0, num_classes)`` or non-integer, channels outside ``[0, 1]``, one-hot channels that do not
        sum to 1, or a channel count different from ``num_classes``.
    """
    if labels.ndim < 3:
        raise ValueError(f"labels must be (B, C, *spatial), got shape {tuple(labels.shape)}")
    channels = labels.shape[1]
    if channels == 1 and not multilabel:
        return one_hot_channels(class_indices(labels, num_classes), num_classes)
    lab = labels.float() if not labels.is_floating_point() else labels
    if not bool(torch.isfinite(lab).all()):
        raise ValueError("labels contain NaN or infinite values")
    if multilabel:
        if num_classes is not None and channels != num_classes:
            raise ValueError(f"multi-label labels have {channels} channels but num_classes={num_classes}")
        _check_unit_range(lab, "multi-label channels")
        return lab.float()
    if num_classes is not None and channels != num_classes:
        raise ValueError(f"labels have {channels} channels but num_classes={num_classes}")
    _check_unit_range(lab, "one-hot channels")
    sums = lab.sum(dim=1)
    if not bool(torch.allclose(sums, torch.ones_like(sums), atol=_ONE_HOT_ATOL)):
        raise ValueError(
            "multi-channel labels are read as one-hot and must sum to 1 at every pixel; "
            "for overlapping channels (e.g. BraTS WT/TC/ET) pass multilabel=True"
        )
    return lab.float()


def is_index_labels(labels: torch.Tensor, multilabel: bool = False) -> bool:
    """Whether :func:`labels_to_channels` reads ``labels`` as class indices (one channel, not multi-label)."""
    return not multilabel and labels.ndim >= 3 and labels.shape[1] == 1


def class_indices(labels: torch.Tensor, num_classes: Optional[int]) -> torch.Tensor:
    """Validate ``(B, 1, *spatial)`` class-index labels and return them as ``int64`` (no copy if they are).

    Raises
    ------
    ValueError
        Without ``num_classes`` (or with fewer than 2), for non-finite or non-integer values, and
        for values outside ``[0, num_classes)``.
    """
    if labels.ndim < 3 or labels.shape[1] != 1:
        raise ValueError(f"class-index labels must be (B, 1, *spatial), got shape {tuple(labels.shape)}")
    if num_classes is None:
        raise ValueError(
            "labels have one channel, so they are read as class indices and num_classes is required "
            "(for a single binary mask channel mixed as it is, pass multilabel=True)"
        )
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 for index labels, got {num_classes}")
    if labels.is_complex():
        raise ValueError(f"index labels must be real numbers, got {labels.dtype}")
    if labels.dtype == torch.bool:
        labels = labels.to(torch.uint8)  # a binary mask: classes 0 and 1
    if labels.is_floating_point():
        if not bool(torch.isfinite(labels).all()):
            raise ValueError("labels contain NaN or infinite values")
        if not bool((labels == torch.round(labels)).all()):
            raise ValueError("index labels must hold integer class values; soft labels need one channel per class")
    if labels.numel():
        lo, hi = (int(v) for v in torch.aminmax(labels))
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"label values must lie in [0, {num_classes - 1}] for num_classes={num_classes}, found [{lo}, {hi}]")
    return labels.long()


def one_hot_channels(indices: torch.Tensor, num_classes: int, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(B, 1, *spatial)`` validated ``int64`` class indices as ``(B, num_classes, *spatial)`` float32 one-hot.

    Written into ``out`` when given (e.g. a slice of a preallocated batch), by one scatter.
    """
    if out is None:
        out = torch.empty((indices.shape[0], num_classes) + tuple(indices.shape[2:]), dtype=torch.float32, device=indices.device)
    return out.zero_().scatter_(1, indices, 1.0)


def _check_unit_range(lab: torch.Tensor, what: str) -> None:
    lo, hi = float(lab.min()), float(lab.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{what} must lie in [0, 1], found [{lo:g}, {hi:g}]")

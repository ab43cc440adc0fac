"""Label validation and conversion to channels that can be mixed.

Mixing class indices (``0.7 * 2 + 0.3 * 5``) produces classes present in neither source, so labels
are always mixed as one-hot or multi-label channels.
"""

from __future__ import annotations

from typing import Optional

import torch
from monai.networks.utils import one_hot

__all__ = ["check_label_channels", "class_indices", "is_index_labels", "labels_to_channels", "relabel_contiguous"]

_ONE_HOT_ATOL = 1e-3


def labels_to_channels(
    labels: torch.Tensor, num_classes: Optional[int] = None, multilabel: bool = False
) -> torch.Tensor:
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
        return one_hot(class_indices(labels, num_classes), num_classes, dim=1)
    lab = labels.float() if not labels.is_floating_point() else labels
    if multilabel:
        if num_classes is not None and channels != num_classes:
            raise ValueError(f"multi-label labels have {channels} channels but num_classes={num_classes}")
        check_label_channels(lab, "multi-label channels", sums_to_one=False)
        return lab.float()
    if num_classes is not None and channels != num_classes:
        raise ValueError(f"labels have {channels} channels but num_classes={num_classes}")
    check_label_channels(
        lab,
        "one-hot channels",
        sums_to_one=True,
        hint="for overlapping channels (e.g. BraTS WT/TC/ET) pass multilabel=True",
    )
    return lab.float()


def is_index_labels(labels: torch.Tensor, multilabel: bool = False) -> bool:
    """Whether :func:`labels_to_channels` reads ``labels`` as class indices (one channel, not multi-label)."""
    return not multilabel and labels.ndim >= 3 and labels.shape[1] == 1


def class_indices(labels: torch.Tensor, num_classes: Optional[int], who: str = "") -> torch.Tensor:
    """Validate ``(B, 1, *spatial)`` class-index labels and return them as ``int64`` (no copy if they are).

    This is the one check of index labels: the transforms and the losses call it.

    Parameters
    ----------
    labels : torch.Tensor
        ``(B, 1, *spatial)`` class indices, of any real or bool dtype.
    num_classes : int, optional
        Number of classes (at least 2).
    who : str
        Prefix of the error messages, naming the caller (e.g. ``"SoftDiceCELoss: "``).

    Raises
    ------
    ValueError
        Without ``num_classes`` (or with fewer than 2), for non-finite or non-integer values, and
        for values outside ``[0, num_classes)``.
    """
    if labels.ndim < 3 or labels.shape[1] != 1:
        raise ValueError(f"{who}class-index labels must be (B, 1, *spatial), got shape {tuple(labels.shape)}")
    if num_classes is None:
        raise ValueError(
            f"{who}labels have one channel, so they are read as class indices and num_classes is required "
            "(for a single binary mask channel mixed as it is, pass multilabel=True)"
        )
    if num_classes < 2:
        raise ValueError(f"{who}num_classes must be at least 2 for index labels, got {num_classes}")
    if labels.is_complex():
        raise ValueError(f"{who}index labels must be real numbers, got {labels.dtype}")
    if labels.dtype == torch.bool:
        labels = labels.to(torch.uint8)  # a binary mask: classes 0 and 1
    if labels.is_floating_point():
        if not bool(torch.isfinite(labels).all()):
            raise ValueError(f"{who}labels contain NaN or infinite values")
        if not bool((labels == torch.round(labels)).all()):
            raise ValueError(
                f"{who}index labels must hold integer class values, found non-integer values; "
                "soft labels need one channel per class"
            )
    if labels.numel():
        lo, hi = (int(v) for v in torch.aminmax(labels))
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{who}label values must lie in [0, {num_classes - 1}] (class indices in [0, {num_classes})) "
                f"for num_classes={num_classes}, found [{lo}, {hi}]"
            )
    return labels.long()


def check_label_channels(
    channels: torch.Tensor, what: str, sums_to_one: bool, hint: str = "", who: str = "", slack: float = 0.0
) -> None:
    """Validate ``(B, K, *spatial)`` label channels: finite, in ``[0, 1]`` and, for one-hot or soft
    one-hot channels, summing to 1 at every pixel.

    This is the one check of channel labels: the transforms and the losses call it.

    Parameters
    ----------
    channels : torch.Tensor
        ``(B, K, *spatial)`` floating channels.
    what : str
        What the channels are, for the messages (e.g. ``"one-hot channels"``).
    sums_to_one : bool
        Channels are one class distribution per pixel (not independent multi-label channels).
    hint : str
        Appended to the message when the channels do not sum to 1 (what to use instead).
    who : str
        Prefix of the error messages, naming the caller.
    slack : float
        Float round-off allowed outside ``[0, 1]``.

    Raises
    ------
    ValueError
        For NaN or infinite values, values outside ``[0, 1]`` or channels that do not sum to 1.
    """
    if not bool(torch.isfinite(channels).all()):
        raise ValueError(f"{who}labels contain NaN or infinite values")
    lo, hi = float(channels.min()), float(channels.max())
    if lo < -slack or hi > 1.0 + slack:
        raise ValueError(f"{who}{what} must lie in [0, 1], found [{lo:g}, {hi:g}]")
    if sums_to_one:
        worst = float((channels.sum(dim=1) - 1).abs().max())
        if worst > _ONE_HOT_ATOL:
            raise ValueError(
                f"{who}{what} are one class distribution per pixel and must sum to 1 at every pixel "
                f"(max deviation {worst:.4g})" + (f"; {hint}" if hint else "")
            )


def relabel_contiguous(labels: torch.Tensor) -> torch.Tensor:
    """Relabel every map of a batch to ``0..k-1`` (``k`` its number of distinct labels), keeping their order.

    The one relabelling of segment or instance maps: both SLIC backends (scikit-image's labels and
    both engines of the torch backend) and the superpixel quality measures use it.

    Parameters
    ----------
    labels : torch.Tensor
        ``(B, *spatial)`` labels of any real dtype; each of the ``B`` maps is relabelled on its own.

    Returns
    -------
    torch.Tensor
        ``(B, *spatial)`` ``int64`` labels on the input's device.
    """
    if labels.ndim < 1:
        raise ValueError("relabel_contiguous needs a batch (B, *spatial), got a scalar")
    if labels.numel() == 0:
        return torch.zeros(labels.shape, dtype=torch.long, device=labels.device)
    flat = labels.reshape(labels.shape[0], -1)
    if not flat.is_floating_point() and int(flat.min()) >= 0 and int(flat.max()) < 2 * flat.shape[1] + 1024:
        # small non-negative integers (superpixel ids): mark the labels present, rank them, no sort
        present = torch.zeros(flat.shape[0], int(flat.max()) + 1, dtype=torch.long, device=flat.device)
        present.scatter_(1, flat.long(), 1)
        return (present.cumsum(dim=1) - 1).gather(1, flat.long()).reshape(labels.shape)
    ordered, order = flat.sort(dim=1)
    starts = torch.ones_like(ordered, dtype=torch.long)
    starts[:, 1:] = (ordered[:, 1:] != ordered[:, :-1]).long()
    return torch.empty_like(starts).scatter_(1, order, starts.cumsum(dim=1) - 1).reshape(labels.shape)

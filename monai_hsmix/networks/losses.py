"""Dice + cross-entropy losses that are correct on soft (probabilistic) targets, as mixing produces them.

HSMix, Soft-CP and MixUp-style augmentations return labels that are convex mixtures of one-hot maps.
Two things go wrong with the usual losses on such targets: MONAI's ``DiceLoss`` without
``soft_label=True`` uses the hard-label formula and is not minimised at prediction = target (0.43 there
in a measured case), and anything that takes ``argmax`` of the target throws the mixing away. Both losses
here use ``DiceLoss(soft_label=True)`` and a cross-entropy that reads the target as probabilities, so
each part is minimised exactly where the predicted probabilities equal the target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from monai.networks.utils import one_hot
from torch import nn

from monai_hsmix.core.labels import check_label_channels, class_indices

__all__ = ["SoftDiceCELoss", "SoftDiceBCELoss"]

_TOL = 1e-3  # slack for float round-off when checking that targets are probabilities


def _check_pair(name: str, input: torch.Tensor, target: torch.Tensor) -> None:
    if input.dim() < 3:
        raise ValueError(f"{name}: input must be (B, K, spatial...) logits, got shape {tuple(input.shape)}")
    if target.dim() != input.dim() or target.shape[0] != input.shape[0] or target.shape[2:] != input.shape[2:]:
        raise ValueError(
            f"{name}: target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)} "
            f"(expected (B, K, spatial...) like the input, or (B, 1, spatial...) class indices where allowed)"
        )
    if not torch.is_floating_point(input):
        raise TypeError(f"{name}: input must be floating-point logits, got {input.dtype}")


def _check_probabilities(name: str, target: torch.Tensor, *, sums_to_one: bool) -> None:
    hint = "multi-label targets need SoftDiceBCELoss" if sums_to_one else ""
    check_label_channels(target, "soft target values", sums_to_one, hint=hint, who=f"{name}: ", slack=_TOL)


class _SoftDiceLoss(nn.Module):
    """Shared part: option checks, MONAI's soft-label Dice, and the weighted sum with a cross-entropy term."""

    def __init__(
        self,
        activation: str,
        include_background: bool,
        lambda_dice: float,
        lambda_xent: float,
        smooth_nr: float,
        smooth_dr: float,
        squared_pred: bool,
        jaccard: bool,
        batch: bool,
        reduction: str,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{name}: reduction must be 'mean' or 'sum', got {reduction!r}")
        if lambda_dice < 0 or lambda_xent < 0:
            raise ValueError(f"{name}: the lambda weights must be >= 0, got {lambda_dice}, {lambda_xent}")
        self.dice = DiceLoss(
            include_background=include_background,
            softmax=activation == "softmax",
            sigmoid=activation == "sigmoid",
            soft_label=True,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            squared_pred=squared_pred,
            jaccard=jaccard,
            batch=batch,
            reduction=reduction,
        )
        self.lambda_dice = float(lambda_dice)
        self._lambda_xent = float(lambda_xent)
        self.reduction = reduction

    def _xent(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _weighted_sum(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = input.new_zeros(())
        if self.lambda_dice:
            loss = loss + self.lambda_dice * self.dice(input, target)
        if self._lambda_xent:
            loss = loss + self._lambda_xent * self._xent(input, target)
        return loss


class SoftDiceCELoss(_SoftDiceLoss):
    """Softmax Dice + cross-entropy for one class distribution per pixel, hard or soft.

    Parameters
    ----------
    include_background : bool
        Whether channel 0 takes part in the Dice term (the cross-entropy always uses every channel).
    lambda_dice, lambda_ce : float
        Non-negative weights of the two terms; ``loss = lambda_dice * dice + lambda_ce * ce``.
    smooth_nr, smooth_dr, squared_pred, jaccard, batch
        Passed to MONAI's ``DiceLoss`` (with ``softmax=True, soft_label=True``).
    ce_weight : sequence of float or Tensor, optional
        Per-class weights of the cross-entropy (length K).
    reduction : {"mean", "sum"}
        How both terms are reduced over the batch (and pixels, for the cross-entropy).

    Notes
    -----
    ``forward(input, target)``: ``input`` are logits ``(B, K, spatial...)`` with ``K >= 2``. ``target``
    is either ``(B, K, spatial...)`` class probabilities (values in [0, 1], summing to 1 over channels:
    one-hot or mixed), or ``(B, 1, spatial...)`` integer class indices in ``[0, K)``, turned into one-hot
    so that an unmixed baseline trains with the same loss. The cross-entropy is
    ``-sum_k target_k * log_softmax(input)_k``, linear in the target, so a mixed target gives the same
    mixture of the two one-hot losses and the gradient w.r.t. the logits is ``softmax(input) - target``.
    """

    def __init__(
        self,
        include_background: bool = True,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        squared_pred: bool = False,
        jaccard: bool = False,
        batch: bool = False,
        ce_weight: Sequence[float] | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            "softmax",
            include_background,
            lambda_dice,
            lambda_ce,
            smooth_nr,
            smooth_dr,
            squared_pred,
            jaccard,
            batch,
            reduction,
        )
        weight = None if ce_weight is None else torch.as_tensor(ce_weight, dtype=torch.float32)
        self.register_buffer("ce_weight", weight)

    @property
    def lambda_ce(self) -> float:
        return self._lambda_xent

    def _as_probabilities(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        num_classes = input.shape[1]
        if num_classes < 2:
            raise ValueError(f"{name}: softmax needs K >= 2 input channels, got {num_classes}; use SoftDiceBCELoss")
        if target.shape[1] == 1 and num_classes > 1:
            target = class_indices(target, num_classes, who=f"{name}: ")
            return one_hot(target, num_classes, dtype=input.dtype, dim=1)
        if target.shape[1] != num_classes:
            raise ValueError(
                f"{name}: target has {target.shape[1]} channels, input {num_classes}; expected a soft "
                f"target (B, {num_classes}, ...) or class indices (B, 1, ...)"
            )
        target = target.to(input.dtype)
        _check_probabilities(name, target, sums_to_one=True)
        return target

    def ce(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with probability targets (no argmax), reduced like the Dice term."""
        weight = None if self.ce_weight is None else self.ce_weight.to(input)
        return F.cross_entropy(input, target, weight=weight, reduction=self.reduction)

    _xent = ce

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(type(self).__name__, input, target)
        return self._weighted_sum(input, self._as_probabilities(input, target))


class SoftDiceBCELoss(_SoftDiceLoss):
    """Sigmoid multi-label Dice + binary cross-entropy, for overlapping labels such as BraTS WT/TC/ET.

    Parameters
    ----------
    include_background : bool
        Whether channel 0 takes part in the Dice term; keep ``True`` when every channel is a real label.
    lambda_dice, lambda_bce : float
        Non-negative weights; ``loss = lambda_dice * dice + lambda_bce * bce``.
    smooth_nr, smooth_dr, squared_pred, jaccard, batch
        Passed to MONAI's ``DiceLoss`` (with ``sigmoid=True, soft_label=True``).
    pos_weight : sequence of float or Tensor, optional
        Per-label weight of positives in ``BCEWithLogitsLoss`` (length K).
    reduction : {"mean", "sum"}
        How both terms are reduced.

    Notes
    -----
    ``forward(input, target)``: logits and target both ``(B, K, spatial...)``; the target holds one
    probability per label and pixel in [0, 1] (binary or mixed); channels need not sum to 1. Each term
    is minimised where ``sigmoid(input)`` equals the target.
    """

    def __init__(
        self,
        include_background: bool = True,
        lambda_dice: float = 1.0,
        lambda_bce: float = 1.0,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        squared_pred: bool = False,
        jaccard: bool = False,
        batch: bool = False,
        pos_weight: Sequence[float] | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            "sigmoid",
            include_background,
            lambda_dice,
            lambda_bce,
            smooth_nr,
            smooth_dr,
            squared_pred,
            jaccard,
            batch,
            reduction,
        )
        weight = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        self.register_buffer("pos_weight", weight)

    @property
    def lambda_bce(self) -> float:
        return self._lambda_xent

    def bce(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy on logits; ``pos_weight`` broadcasts over the channel axis."""
        pos_weight = None
        if self.pos_weight is not None:
            if self.pos_weight.numel() != input.shape[1]:
                raise ValueError(
                    f"SoftDiceBCELoss: pos_weight has {self.pos_weight.numel()} entries, "
                    f"input {input.shape[1]} channels"
                )
            pos_weight = self.pos_weight.to(input).reshape(-1, *([1] * (input.dim() - 2)))
        return F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction=self.reduction)

    _xent = bce

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        _check_pair(name, input, target)
        if target.shape[1] != input.shape[1]:
            raise ValueError(
                f"{name}: target has {target.shape[1]} channels, input {input.shape[1]}; multi-label targets "
                f"must be (B, K, ...) like the logits"
            )
        target = target.to(input.dtype)
        _check_probabilities(name, target, sums_to_one=False)
        return self._weighted_sum(input, target)

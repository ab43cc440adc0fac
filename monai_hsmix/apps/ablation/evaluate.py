"""Per-volume evaluation of a 2D network: slice-by-slice inference, stacked, scored with MONAI metrics.

Logits are resized from the network grid back to the stored in-plane size before the argmax, so the
scores are against the labels as stored. Per foreground class: Dice, Jaccard (IoU) and HD95.

HD95 is MONAI's ``HausdorffDistanceMetric(percentile=95)``: the larger of the two directed 95th
percentile surface distances (medpy's ``hd95`` pools both directions instead), in the units of the
NIfTI header's voxel spacing. A class absent from the reference gives NaN (left out of averages);
a class present in the reference but not predicted gets HD95 = the volume's diagonal (the worst
distance possible) instead of MONAI's infinity, so that means stay finite.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from monai.metrics import DiceMetric, HausdorffDistanceMetric, MeanIoU
from monai.networks.utils import one_hot

from monai_hsmix.apps.ablation.data2d import Volume, volume_slices
from monai_hsmix.metrics.known_warnings import quiet_monai_metric_warnings

__all__ = ["evaluate", "predict_volume", "score_volume"]


@torch.no_grad()
def predict_volume(model: torch.nn.Module, volume: Volume, size: int, chunk: int = 32) -> torch.Tensor:
    """``(X, Y, Z)`` class indices predicted slice by slice at ``size`` and resized back."""
    slices = volume_slices(volume, size)
    spatial = tuple(volume.image.shape[1:3])
    preds = []
    for start in range(0, slices.shape[0], chunk):
        logits = model(slices[start : start + chunk])
        logits = F.interpolate(logits, size=spatial, mode="bilinear", align_corners=False)
        preds.append(logits.argmax(1))
    return torch.cat(preds).permute(1, 2, 0)


def score_volume(
    pred: torch.Tensor, label: torch.Tensor, num_classes: int, spacing: Sequence[float]
) -> Dict[str, List[float]]:
    """Dice, Jaccard and HD95 of each foreground class (lists of ``num_classes - 1`` floats, NaN when absent)."""
    p = one_hot(pred[None, None], num_classes, dim=1)
    y = one_hot(label[None, None], num_classes, dim=1)
    dice = DiceMetric(include_background=False, reduction="none", ignore_empty=True)(p, y)[0]
    iou = MeanIoU(include_background=False, reduction="none", ignore_empty=True)(p, y)[0]
    with quiet_monai_metric_warnings():
        hd = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(
            p, y, spacing=list(spacing)
        )[0]
    diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(label.shape, spacing)))
    present = y[0, 1:].flatten(1).any(1)
    # a present class that is not predicted: MONAI gives inf (older) or NaN (1.6); it scores the diagonal
    hd = torch.where(~torch.isfinite(hd) & present, torch.full_like(hd, diagonal), hd)
    hd = torch.where(present, hd, torch.full_like(hd, float("nan")))
    return {"dice": dice.tolist(), "jaccard": iou.tolist(), "hd95": hd.tolist()}


def evaluate(model: torch.nn.Module, volumes: Sequence[Volume], size: int, num_classes: int) -> List[Dict[str, object]]:
    """Scores of every volume: ``[{"volume", "patient", "dice", "jaccard", "hd95"}, ...]``."""
    was_training = model.training
    model.eval()
    try:
        rows = []
        for volume in volumes:
            pred = predict_volume(model, volume, size)
            rows.append(
                {
                    "volume": volume.name,
                    "patient": volume.patient,
                    **score_volume(pred, volume.label, num_classes, volume.spacing),
                }
            )
        return rows
    finally:
        model.train(was_training)

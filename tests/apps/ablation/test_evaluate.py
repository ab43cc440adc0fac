"""Per-volume scores of the ablation: a class the reference has but the prediction misses."""

from __future__ import annotations

import math

import torch

from monai_hsmix.apps.ablation.evaluate import score_volume


def test_a_missed_class_scores_the_diagonal_and_an_absent_class_nan():
    """MONAI 1.6 returns NaN (not inf) for a missed class, which dropped the volume from the HD95 means."""
    label = torch.zeros(16, 12, dtype=torch.long)
    label[4:8, 4:8] = 1
    scores = score_volume(torch.zeros_like(label), label, 3, (2.0, 1.0))
    assert scores["dice"][0] == 0.0
    assert math.isclose(scores["hd95"][0], math.hypot(16 * 2.0, 12 * 1.0), rel_tol=1e-6)  # present, missed
    assert math.isnan(scores["hd95"][1])  # class 2: absent from the reference, left out

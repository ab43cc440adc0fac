"""Per-volume scores of the ablation: a class the reference has but the prediction misses."""

from __future__ import annotations

import math
import warnings

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


def test_scoring_prints_none_of_monais_internal_warnings_but_keeps_others():
    """Every evaluation printed MONAI's deprecation of ``always_return_as_numpy`` (its own call, not ours) and
    an "all 0" warning per absent class, whose NaN the scores already stand for; a user's warnings still show."""
    label = torch.zeros(16, 12, dtype=torch.long)
    label[4:8, 4:8] = 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score_volume(torch.zeros_like(label), label, 3, (1.0, 1.0))
        warnings.warn("a user's own warning", UserWarning)
    assert [str(w.message) for w in caught] == ["a user's own warning"]

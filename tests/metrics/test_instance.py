"""AJI, object Dice and pixel DSC on hand-made instance maps whose answers are worked out by hand below."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monai_hsmix.metrics import aggregated_jaccard_index, instance_overlaps, object_dice, pixel_dice, score_instances


def _boxes(shape, boxes):
    out = np.zeros(shape, dtype=np.int32)
    for ident, (r0, r1, c0, c1) in boxes.items():
        out[r0:r1, c0:c1] = ident
    return out


# reference: A and B touch (4x4 each), C is 4x6, D 4x4, E 4x4
TRUE = _boxes((20, 20), {1: (0, 4, 0, 4), 2: (0, 4, 4, 8), 3: (10, 14, 0, 6), 4: (10, 14, 10, 14), 5: (16, 20, 16, 20)})
# prediction: A and B merged (P1, 4x8), C split in two 4x3 halves (P2, P3), D missed, E exact (P4),
# a false positive of 3x4 (P5); ids deliberately not consecutive
PRED = _boxes(
    (20, 20), {7: (0, 4, 0, 8), 9: (10, 14, 0, 3), 11: (10, 14, 3, 6), 20: (16, 20, 16, 20), 30: (5, 8, 15, 19)}
)


def test_aji_by_hand():
    # A -> P1: I 16, U 32; B -> P1 again (a merge counts P1's area twice): I 16, U 32;
    # C -> P2 (IoU 12/24, tie with P3): I 12, U 24; D overlaps nothing: U 16; E -> P4: I 16, U 16;
    # never chosen: P3 (12) and P5 (12) add 24 to U.
    c = 16 + 16 + 12 + 16
    u = 32 + 32 + 24 + 16 + 16 + 24
    assert aggregated_jaccard_index(TRUE, PRED) == pytest.approx(c / u)  # 60 / 144


def test_object_dice_by_hand():
    # reference side (weights area / 88): A, B: Dice with P1 = 32/48; C: with P2 (largest overlap, tie) = 24/36;
    # D: 0; E: 1.   prediction side (weights area / 84): P1 with A (tie with B) = 32/48; P2, P3 with C = 24/36;
    # P4: 1; P5: 0.
    g = (16 * 2 / 3 + 16 * 2 / 3 + 24 * 2 / 3 + 0 + 16 * 1) / 88
    s = (32 * 2 / 3 + 12 * 2 / 3 + 12 * 2 / 3 + 16 * 1 + 0) / 84
    assert object_dice(TRUE, PRED) == pytest.approx(0.5 * (g + s))


def test_pixel_dice_by_hand():
    # foreground 88 and 84 pixels; shared: A+B (32) + C (24) + E (16) = 72
    assert pixel_dice(TRUE, PRED) == pytest.approx(2 * 72 / (88 + 84))


def test_score_instances_counts_and_types():
    s = score_instances(torch.from_numpy(TRUE)[None], torch.from_numpy(PRED))
    assert (s.true_objects, s.pred_objects) == (5, 5)
    assert s.aji == pytest.approx(60 / 144)
    assert set(s.as_dict()) == {"aji", "object_dice", "pixel_dice", "true_objects", "pred_objects"}


def test_each_error_alone_costs_what_it_should():
    perfect = TRUE.copy()
    assert aggregated_jaccard_index(TRUE, perfect) == object_dice(TRUE, perfect) == 1.0
    missed = np.where(TRUE == 4, 0, TRUE)  # D missed: U grows by its 16 pixels
    assert aggregated_jaccard_index(TRUE, missed) == pytest.approx(72 / 88)
    extra = np.where(PRED == 30, 99, TRUE)  # one false positive of 12 pixels
    assert aggregated_jaccard_index(TRUE, extra) == pytest.approx(88 / 100)
    merged = np.where(TRUE == 2, 1, TRUE)  # A and B merged: 2 x (16 / 32) on 32 of the 88
    assert aggregated_jaccard_index(TRUE, merged) == pytest.approx((16 + 16 + 24 + 16 + 16) / (32 + 32 + 24 + 16 + 16))


def test_ids_do_not_matter():
    remap = np.array([0, 50, 3, 1000, 7, 2], dtype=np.int64)
    assert aggregated_jaccard_index(remap[TRUE], PRED) == pytest.approx(aggregated_jaccard_index(TRUE, PRED))


def test_empty_maps():
    empty = np.zeros_like(TRUE)
    assert aggregated_jaccard_index(empty, empty) == object_dice(empty, empty) == pixel_dice(empty, empty) == 1.0
    assert aggregated_jaccard_index(TRUE, empty) == object_dice(TRUE, empty) == pixel_dice(TRUE, empty) == 0.0
    assert aggregated_jaccard_index(empty, PRED) == 0.0


def test_bad_inputs_raise_clearly():
    with pytest.raises(ValueError, match="same shape"):
        aggregated_jaccard_index(TRUE, PRED[:10])
    with pytest.raises(ValueError, match="negative"):
        aggregated_jaccard_index(-TRUE, PRED)
    with pytest.raises(ValueError, match="integer"):
        object_dice(TRUE + 0.5, PRED)


def _aji_loop(true, pred):
    """Straight transcription of the published algorithm, one object at a time (a check, not a hot path)."""
    t_ids = [i for i in np.unique(true) if i]
    p_ids = [j for j in np.unique(pred) if j]
    c = u = 0
    used = set()
    for i in t_ids:
        g = true == i
        best, best_iou = None, 0.0
        for j in p_ids:
            s = pred == j
            iou = (g & s).sum() / (g | s).sum()
            if iou > best_iou:
                best, best_iou = j, iou
        if best is None:
            u += g.sum()
        else:
            s = pred == best
            c += (g & s).sum()
            u += (g | s).sum()
            used.add(best)
    u += sum((pred == j).sum() for j in p_ids if j not in used)
    return c / u if u else 1.0


maps = arrays(np.int32, (9, 9), elements=st.integers(0, 5))


@settings(max_examples=60, deadline=None)
@given(maps, maps)
def test_aji_matches_the_published_loop(true, pred):
    assert aggregated_jaccard_index(true, pred) == pytest.approx(_aji_loop(true, pred))


@settings(max_examples=60, deadline=None)
@given(maps, maps)
def test_scores_in_unit_interval_and_object_dice_symmetric(true, pred):
    for f in (aggregated_jaccard_index, object_dice, pixel_dice):
        assert 0.0 <= f(true, pred) <= 1.0
    assert object_dice(true, pred) == pytest.approx(object_dice(pred, true))


def test_contingency_table():
    o = instance_overlaps(TRUE, PRED)
    assert list(o.true_ids) == [1, 2, 3, 4, 5] and list(o.pred_ids) == [7, 9, 11, 20, 30]
    assert o.intersection.toarray().tolist() == [
        [16, 0, 0, 0, 0],
        [16, 0, 0, 0, 0],
        [0, 12, 12, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 16, 0],
    ]
    assert o.true_area.tolist() == [16, 16, 24, 16, 16] and o.pred_area.tolist() == [32, 12, 12, 16, 12]

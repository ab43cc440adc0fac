import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.core.paste_placement import find_lesion_placement, overlap_fractions, paste_object, paste_region


def _canvas(hard, offset, shape):
    """The lesion drawn into a full image by plain numpy indexing, as an independent check."""
    out = np.zeros(shape, dtype=bool)
    for c in np.argwhere(hard):
        p = c + np.asarray(offset)
        if np.all(p >= 0) and np.all(p < shape):
            out[tuple(p)] = True
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    s1=st.floats(0.0, 0.95),
    s2=st.floats(0.05, 1.0),
    dims=st.sampled_from([2, 3]),
)
def test_every_accepted_placement_satisfies_the_constraints(seed, s1, s2, dims):
    rng = np.random.RandomState(seed)
    shape = (20, 18) if dims == 2 else (10, 9, 8)
    hard = rng.rand(*([5] * dims)) > 0.5
    hard[(2,) * dims] = True
    reference = np.zeros(shape, dtype=bool)
    reference[tuple(slice(1, s - 2) for s in shape)] = True
    lesions = rng.rand(*shape) > 0.8
    placement = find_lesion_placement(
        torch.as_tensor(hard), shape, rng, torch.as_tensor(reference), torch.as_tensor(lesions), s1, s2, 30
    )
    if placement is None:
        return
    pasted = _canvas(hard, placement.offset, shape)
    assert pasted.sum() == hard.sum()  # wholly inside the image
    assert (pasted & reference).sum() / hard.sum() > s1
    assert (pasted & lesions).sum() / hard.sum() < s2
    assert 1 <= placement.tries <= 30


def test_placement_without_reference_ignores_s1_and_keeps_lesion_inside():
    rng = np.random.RandomState(3)
    hard = torch.ones(4, 4, dtype=torch.bool)
    for _ in range(20):
        p = find_lesion_placement(hard, (10, 10), rng, s1=0.99, s2=0.5, max_tries=50)
        assert p is not None
        assert all(0 <= o <= 6 for o in p.offset)


def test_no_valid_place_returns_none():
    rng = np.random.RandomState(0)
    hard = torch.ones(3, 3, dtype=torch.bool)
    tiny_ref = torch.zeros(12, 12, dtype=torch.bool)
    tiny_ref[5, 5] = True  # at most 1/9 of the lesion can lie on it
    assert find_lesion_placement(hard, (12, 12), rng, reference=tiny_ref, s1=0.5, max_tries=20) is None
    assert find_lesion_placement(hard, (12, 12), rng, reference=torch.zeros(12, 12, dtype=torch.bool)) is None
    full_lesions = torch.ones(12, 12, dtype=torch.bool)
    assert find_lesion_placement(hard, (12, 12), rng, lesions=full_lesions, s2=0.5, max_tries=20) is None


def test_translation_mode_stays_within_shift():
    rng = np.random.RandomState(1)
    hard = torch.zeros(5, 5, dtype=torch.bool)
    hard[2, 2] = True
    for _ in range(30):
        p = find_lesion_placement(hard, (30, 30), rng, around=(15, 12), max_shift=(2, 0), max_tries=5)
        centre = np.asarray(p.offset) + 2
        assert abs(centre[0] - 15) <= 2 and centre[1] == 12


def test_bad_arguments_raise():
    rng = np.random.RandomState(0)
    with pytest.raises(ValueError, match="max_tries"):
        find_lesion_placement(torch.ones(2, 2, dtype=torch.bool), (5, 5), rng, max_tries=0)
    with pytest.raises(ValueError, match="empty"):
        find_lesion_placement(torch.zeros(2, 2, dtype=torch.bool), (5, 5), rng)
    with pytest.raises(ValueError, match="empty"):
        overlap_fractions(torch.zeros(2, 2, dtype=torch.bool), (0, 0), (5, 5))


def test_paste_region_clips_at_borders():
    image_sl, patch_sl = paste_region((-2, 3), (5, 5), (6, 6))
    assert image_sl == (slice(0, 3), slice(3, 6)) and patch_sl == (slice(2, 5), slice(0, 3))
    assert paste_region((10, 0), (3, 3), (6, 6)) is None


def test_paste_object_blends_and_leaves_zero_weight_untouched():
    rng = np.random.RandomState(0)
    image = torch.as_tensor(rng.rand(2, 10, 10))
    label = torch.zeros(10, 10, dtype=torch.long)
    label[0, 0] = 3
    before_img, before_lbl = image.clone(), label.clone()
    obj_image = torch.full((2, 4, 4), 7.0, dtype=torch.float64)
    obj_label = torch.full((4, 4), 2, dtype=torch.long)
    hard = torch.zeros(4, 4, dtype=torch.bool)
    hard[1:3, 1:3] = True
    weight = torch.zeros(4, 4)
    weight[hard] = 1.0
    weight[0, 1] = 0.25
    paste_object(image, label, obj_image, obj_label, hard, weight, (3, 4))
    changed = (image != before_img).any(0)
    expected_support = torch.zeros(10, 10, dtype=torch.bool)
    expected_support[4:6, 5:7] = True
    expected_support[3, 5] = True
    assert torch.equal(changed, expected_support)
    assert torch.allclose(image[:, 3, 5], 0.25 * 7 + 0.75 * before_img[:, 3, 5])
    assert torch.all(image[:, 4:6, 5:7] == 7)
    assert torch.equal(label != before_lbl, expected_support & (torch.arange(10)[:, None] > 3))
    assert label[0, 0] == 3

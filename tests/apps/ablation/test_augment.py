"""The shared flip/rotation keeps images and labels aligned and labels valid."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.apps.ablation.augment import flip_rotate


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), degrees=st.floats(0, 45))
def test_labels_stay_classes_and_follow_the_image(seed, degrees):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (3, 1, 12, 12), generator=g)
    # the image is the labels' one-hot channels: any misalignment shows up as a mismatch
    images = torch.nn.functional.one_hot(labels[:, 0], 4).movedim(-1, 1).float()
    out_images, out_labels = flip_rotate(images, labels, torch.Generator().manual_seed(seed), degrees)
    assert out_labels.dtype == torch.long and set(out_labels.unique().tolist()) <= {0, 1, 2, 3}
    # where channel k is (almost) 1, every pixel the bilinear sample weighs is of class k, and so
    # is the nearest one (it always weighs at least 1/4). An integer-valued image would not do:
    # halfway between classes 1 and 3 it reads 2
    pure = out_images > 1 - 1e-4
    for k in range(4):
        assert bool((out_labels[:, 0][pure[:, k]] == k).all())


def test_no_rotation_no_flip_is_identity():
    images = torch.rand(2, 1, 8, 8)
    labels = torch.randint(0, 3, (2, 1, 8, 8))
    out_images, out_labels = flip_rotate(images, labels, torch.Generator().manual_seed(0), 0.0, flip_prob=0.0)
    assert torch.allclose(out_images, images, atol=1e-5) and torch.equal(out_labels, labels)


def test_always_flip_without_rotation_mirrors_both_axes():
    images = torch.rand(1, 1, 6, 6)
    labels = torch.randint(0, 3, (1, 1, 6, 6))
    out_images, out_labels = flip_rotate(images, labels, torch.Generator().manual_seed(0), 0.0, flip_prob=1.0)
    assert torch.allclose(out_images, images.flip(2, 3), atol=1e-5)
    assert torch.equal(out_labels, labels.flip(2, 3))


def test_label_shape_mismatch_raises():
    with pytest.raises(ValueError, match="labels"):
        flip_rotate(torch.rand(2, 1, 8, 8), torch.zeros(2, 1, 8, 7, dtype=torch.long), torch.Generator())

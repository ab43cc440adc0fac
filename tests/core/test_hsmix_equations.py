"""Invariants of the paper's equations, checked on random batches (hypothesis)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.core import (
    blend,
    blend_index_labels,
    hard_mask_from_segments,
    hsmix_masks,
    identity_masks,
    mix_with_masks,
    labels_to_channels,
    mixed_segment_grid,
    random_derangement,
    relative_saliency,
    soft_mask_from_saliency,
)


@st.composite
def batches(draw):
    b = draw(st.integers(2, 4))
    c = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(2, 9), min_size=2, max_size=3)))
    k = draw(st.integers(1, 6))
    ncls = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    p = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.normal(size=(b, c) + shape))
    labels = labels_to_channels(torch.from_numpy(rng.integers(0, ncls, size=(b, 1) + shape)), ncls).double()
    segments = torch.from_numpy(rng.integers(0, k, size=(b,) + shape))
    saliency = torch.from_numpy(rng.uniform(0, 1, size=(b,) + shape) * (rng.uniform(size=(b,) + shape) > 0.2))
    partner = torch.from_numpy(random_derangement(b, np.random.RandomState(seed % 2**32)))
    uniforms = torch.from_numpy(rng.uniform(size=(b, k)))
    return images, labels, segments, saliency, partner, uniforms, p


@settings(max_examples=60, deadline=None)
@given(batches())
def test_hsmix_invariants(batch):
    images, labels, segments, saliency, partner, uniforms, p = batch
    out = hsmix_masks(partner, segments, uniforms, p, saliency=saliency)
    mixed_images, rows = mix_with_masks(images, partner, out.parts())
    mixed_labels, _ = mix_with_masks(labels, partner, out.parts())
    bsz = images.shape[0]
    assert torch.equal(rows, torch.arange(bsz).repeat(2))
    hard_image, soft_image = mixed_images[:bsz], mixed_images[bsz:]
    hard_label, soft_label = mixed_labels[:bsz], mixed_labels[bsz:]
    x1, x2 = images, images[partner]
    mh = out.hard_mask
    # Mh is binary and is a union of whole superpixels of SP2
    assert set(torch.unique(mh).tolist()) <= {0.0, 1.0}
    for b in range(images.shape[0]):
        for s in torch.unique(out.partner_segments[b]):
            region = mh[b][out.partner_segments[b] == s]
            assert bool((region == region[0]).all())
    # each pixel of Xh is exactly X1 or X2, as the mask says
    hard_expect = torch.where(mh.unsqueeze(1) > 0, x2, x1)
    assert torch.equal(hard_image, hard_expect)
    # Ms lies in [0, 1] and is constant inside every superpixel of SPm
    ms, spm = out.soft_mask, out.mixed_segments
    assert float(ms.min()) >= 0.0 and float(ms.max()) <= 1.0
    for b in range(images.shape[0]):
        for s in torch.unique(spm[b]):
            vals = ms[b][spm[b] == s]
            assert torch.allclose(vals, vals[0].expand_as(vals))
    # Y is mixed exactly as X
    assert torch.equal(hard_label, blend(labels, labels[partner], mh))
    assert torch.allclose(soft_label, blend(labels, labels[partner], ms))
    assert torch.allclose(soft_image, x1 * (1 - ms.unsqueeze(1)) + x2 * ms.unsqueeze(1))
    # soft labels stay a probability distribution per pixel
    ones = torch.ones_like(soft_label[:, 0])
    assert torch.allclose(soft_label.sum(1), ones) and torch.allclose(hard_label.sum(1), ones)
    assert torch.isfinite(soft_image).all()


def test_selection_follows_uniform_draws():
    segments = torch.tensor([[[0, 0, 1, 2]]])
    uniforms = torch.tensor([[0.1, 0.5, 0.29]])
    assert hard_mask_from_segments(segments, uniforms, 0.3).tolist() == [[[1.0, 1.0, 0.0, 1.0]]]
    assert hard_mask_from_segments(segments, uniforms, 0.0).sum() == 0
    assert hard_mask_from_segments(segments, uniforms, 1.0).min() == 1


def test_mixed_grid_keeps_labels_of_both_maps_distinct():
    sp1 = torch.tensor([[[0, 0, 1, 1]]])
    sp2 = torch.tensor([[[0, 1, 1, 0]]])
    mh = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]])
    spm = mixed_segment_grid(sp1, sp2, mh)
    # label 0 of SP1 (pixel 0) and label 0 of SP2 (pixel 3) must be different regions of SPm
    assert spm[0, 0, 0] != spm[0, 0, 3]
    assert spm[0, 0, 2] == sp1[0, 0, 2]


def test_relative_saliency_is_defined_where_both_are_zero():
    sa1 = torch.tensor([0.0, 0.2, 0.0, 0.3])
    sa2 = torch.tensor([0.0, 0.6, 0.4, 0.0])
    assert torch.allclose(relative_saliency(sa1, sa2), torch.tensor([0.5, 0.75, 1.0, 0.0]))


def test_soft_ratio_is_the_mean_over_the_superpixel_not_the_image():
    # superpixel 0 covers 1 pixel with ratio 1.0, superpixel 1 covers 3 pixels with ratio 0.0;
    # an image-wide average (as in published code) would make Ms follow the superpixel's area
    sa1 = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    sa2 = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    spm = torch.tensor([[0, 1, 1, 1]])
    assert soft_mask_from_saliency(sa1, sa2, spm).tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_hard_only_skips_soft_outputs():
    images = torch.rand(2, 1, 4, 4)
    segs = torch.zeros(2, 4, 4, dtype=torch.long)
    masks = hsmix_masks(torch.tensor([1, 0]), segs, torch.zeros(2, 1), 0.5)
    assert masks.soft_mask is None
    with pytest.raises(ValueError, match="soft mask was not computed"):
        masks.parts(hard=False, soft=True)
    out, rows = mix_with_masks(images, masks.partner, masks.parts(hard=True, soft=False))
    assert torch.equal(out, images.flip(0)) and rows.tolist() == [0, 1]


def test_include_original_and_index_labels_share_the_one_path():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (3, 1, 5, 6), generator=g)
    segments, uniforms = torch.randint(0, 4, (3, 5, 6), generator=g), torch.rand(3, 4, generator=g)
    masks = hsmix_masks(torch.tensor([2, 0, 1]), segments, uniforms, 0.5, saliency=torch.rand(3, 5, 6, generator=g))
    out, rows = mix_with_masks(labels, masks.partner, masks.parts(), include_original=True, num_classes=3)
    channels = labels_to_channels(labels, 3)
    expected, expected_rows = mix_with_masks(channels, masks.partner, masks.parts(), include_original=True)
    assert out.shape == (9, 3, 5, 6) and torch.equal(rows, expected_rows) and rows.tolist() == [0, 1, 2] * 3
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert torch.equal(out[:3], channels)


def test_identity_masks_mix_nothing():
    images = torch.rand(3, 2, 4, 5)
    masks = identity_masks(3, (4, 5))
    out, _ = mix_with_masks(images, masks.partner, masks.parts())
    assert torch.equal(out, torch.cat([images, images]))


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=3),
    classes=st.integers(2, 5),
    hard=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_index_labels_blend_like_their_one_hot_channels(shape, classes, hard, seed):
    rng = np.random.default_rng(seed)
    size = (3, 1) + tuple(shape)
    first = torch.from_numpy(rng.integers(0, classes, size=size))
    second = torch.from_numpy(rng.integers(0, classes, size=size))
    mask = torch.from_numpy(rng.uniform(size=(3,) + tuple(shape))).float()
    if hard:
        mask = (mask > 0.5).float()
    ours = blend_index_labels(first, second, mask, classes)
    expected = blend(labels_to_channels(first, classes), labels_to_channels(second, classes), mask)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.sum(dim=1), torch.ones_like(mask), rtol=0, atol=1e-6)
    if hard:  # exactly one-hot copies of one source or the other, also by the one-scatter path
        assert torch.equal(ours, expected)
        assert torch.equal(blend_index_labels(first, second, mask, classes, binary=True), expected)


def test_masks_without_maps_are_the_same_masks():
    g = torch.Generator().manual_seed(0)
    segments = torch.randint(0, 5, (3, 6, 7), generator=g)
    saliency = torch.rand(3, 6, 7, generator=g)
    partner = torch.tensor([1, 2, 0])
    uniforms = torch.rand(3, 5, generator=g)
    full = hsmix_masks(partner, segments, uniforms, 0.5, saliency=saliency)
    lean = hsmix_masks(partner, segments, uniforms, 0.5, saliency=saliency, keep_maps=False)
    assert torch.equal(full.hard_mask, lean.hard_mask) and torch.equal(full.soft_mask, lean.soft_mask)
    assert lean.segments is None and lean.partner_segments is None and lean.mixed_segments is None
    assert full.mixed_segments is not None

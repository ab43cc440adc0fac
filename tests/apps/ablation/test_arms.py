"""Every ablation arm turns its source batch into exactly B samples with valid soft labels."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.networks.utils import one_hot

from monai_hsmix.apps.ablation.arms import ARMS, MixOptions, arm_settings, get_arm

OPTIONS = MixOptions(num_classes=3, n_segments=(6, 10), backend="reference")


def _batch(k: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (k, 1, 16, 16), generator=g)
    images = torch.rand(k, 1, 16, 16, generator=g) + labels
    return images, one_hot(labels, 3, dim=1)


@pytest.mark.parametrize("name", list(ARMS))
def test_every_arm_gives_batch_size_samples_with_labels_summing_to_one(name):
    arm = get_arm(name)
    k, n = arm.sources_per_step(8), arm.samples_per_step(8)
    images, labels = _batch(k, 0)
    out_images, out_labels = arm.build(k, OPTIONS, 0)(images, labels)
    assert out_images.shape == (n, 1, 16, 16) and out_labels.shape == (n, 3, 16, 16)
    assert torch.allclose(out_labels.sum(1), torch.ones(n, 16, 16), atol=1e-5)
    assert bool(((out_labels >= -1e-6) & (out_labels <= 1 + 1e-6)).all())


@pytest.mark.parametrize("name", [n for n in ARMS if not n.startswith("none")])
def test_mixing_arms_change_images_and_labels_together(name):
    arm = get_arm(name)
    k = arm.sources_per_step(8)
    images, labels = _batch(k, 1)
    out_images, out_labels = arm.build(k, OPTIONS, 3)(images, labels)
    rows = torch.arange(arm.samples_per_step(8)) % k
    changed_images = (out_images != images[rows]).flatten(1).any(1)
    changed_labels = (out_labels != labels[rows]).flatten(1).any(1)
    assert bool(changed_labels.any())
    # a label may only change where the image changed (same weights or masks on both)
    assert bool((changed_labels <= changed_images).all())


def test_hsmix_both_halves_the_sources_and_the_others_do_not():
    assert [n for n, a in ARMS.items() if a.sources_per_step(8) != 8] == ["none_2b", "hsmix_both"]
    assert get_arm("hsmix_both").sources_per_step(8) == 4


def test_none_2b_is_hsmix_paper_without_mixing():
    control, paper = get_arm("none_2b"), get_arm("hsmix_paper")
    assert control.always_mix and control.samples_per_step(8) == paper.samples_per_step(8) == 16
    assert control.sources_per_step(8) == 16  # 2B distinct unmixed samples, not B sources repeated
    images, labels = _batch(16, 4)
    out_images, out_labels = control.build(16, OPTIONS, 0)(images, labels)
    assert torch.equal(out_images, images) and torch.equal(out_labels, labels)


def test_hsmix_paper_gives_a_hard_and_a_soft_sample_of_each_of_its_b_sources():
    arm = get_arm("hsmix_paper")
    assert arm.always_mix
    assert [n for n, a in ARMS.items() if a.samples_per_step(8) != 8] == [
        "none_2b",
        "mixup_paper",
        "cutmix_paper",
        "hsmix_paper",
    ]
    images, labels = _batch(arm.sources_per_step(8), 2)
    out_images, out_labels = arm.build(8, OPTIONS, 5)(images, labels)
    assert out_images.shape[0] == out_labels.shape[0] == 16
    # no originals: rows i and i + 8 are the hard and the soft mix of source i (every soft mix differs from it)
    hard, soft = out_labels[:8], out_labels[8:]
    assert bool((out_images[8:] != images).flatten(1).any(1).all())
    assert bool(((hard == 0) | (hard == 1)).all()) and not bool(((soft == 0) | (soft == 1)).all())
    # hard sample i is source i with regions of one other source pasted in: the B sources feed the 2B samples
    for i in range(8):
        own = out_images[i] == images[i]
        assert any(bool((own | (out_images[i] == images[j])).all()) for j in range(8) if j != i)


@pytest.mark.parametrize("name,single", [("cutmix_paper", "cutmix"), ("mixup_paper", "mixup")])
def test_monai_paper_controls_hold_the_protocol_of_hsmix_paper(name, single):
    """``cutmix_paper`` / ``mixup_paper``: the same B sources give 2B mixed samples at every step (issue 23)."""
    arm, paper = get_arm(name), get_arm("hsmix_paper")
    assert (arm.always_mix, arm.sources_per_step(8), arm.samples_per_step(8)) == (True, 8, 16)
    assert (paper.sources_per_step(8), paper.samples_per_step(8)) == (8, 16)
    assert arm.uses == get_arm(single).uses  # resumed sweeps compare the same options as the single-draw arm
    images, labels = _batch(8, 6)
    out_images, out_labels = arm.build(8, OPTIONS, 2)(images, labels)
    assert out_images.shape == (16, 1, 16, 16) and torch.allclose(out_labels.sum(1), torch.ones(16, 16, 16), atol=1e-5)
    # two independent draws: the halves differ, and neither half is the unmixed batch
    assert not torch.equal(out_images[:8], out_images[8:])
    assert not torch.equal(out_images[:8], images) and not torch.equal(out_images[8:], images)
    if name == "cutmix_paper":  # sample i of each half is source i with a box of one other source pasted in
        for i in range(16):
            own = out_images[i] == images[i % 8]
            assert any(bool((own | (out_images[i] == images[j])).all()) for j in range(8))


@pytest.mark.parametrize("name", ["cutmix", "cutmix_paper"])
def test_monai_cutmix_pastes_the_label_box_with_the_image_box(name):
    """MONAI's ``CutMix.apply_on_labels`` blends whole labels by the box's area (classification CutMix); a
    segmentation needs the label pasted in the same box as the image, hard labels staying hard. MONAI's own
    box loop indexes with a list (torch's "non-tuple sequence" warning), so a torch or MONAI change there
    would show here."""
    arm = get_arm(name)
    images, labels = _batch(8, 7)  # continuous intensities: a pixel's value names its source
    out_images, out_labels = arm.build(8, OPTIONS, 5)(images, labels)
    assert bool(((out_labels == 0) | (out_labels == 1)).all())
    pasted = 0
    for i in range(out_images.shape[0]):
        box = (out_images[i] != images[i % 8])[0]
        assert torch.equal(out_labels[i][:, ~box], labels[i % 8][:, ~box])
        if not bool(box.any()):
            continue
        rows, cols = box.any(1).nonzero()[:, 0], box.any(0).nonzero()[:, 0]
        assert bool(box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all())  # a filled rectangle
        partner = [j for j in range(8) if j != i % 8 and bool((out_images[i][:, box] == images[j][:, box]).all())]
        assert len(partner) == 1 and torch.equal(out_labels[i][:, box], labels[partner[0]][:, box])
        pasted += 1
    assert pasted > 0


def test_arm_settings_hold_only_what_the_arm_depends_on():
    options = MixOptions(num_classes=2, n_segments=(6, 10), preset="monuseg", mixup_alpha=0.4)
    assert arm_settings(get_arm("none"), options) == {"num_classes": 2}
    assert arm_settings(get_arm("mixup"), options) == {"num_classes": 2, "mixup_alpha": 0.4}
    grid = arm_settings(get_arm("grid_hard"), options)["hsmix"]
    assert grid["hard_region"] == "grid" and grid["mode"] == "hard" and grid["preset"] == "monuseg"
    assert grid["n_segments"] == [6, 10]  # the option overrides the preset's count
    # the arm builds the transform these settings describe
    assert get_arm("grid_hard").build(4, options, 0) is not None


def test_unknown_arm_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown arm 'hsmixx'"):
        get_arm("hsmixx")


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), name=st.sampled_from(["mixup", "cutmix", "hsmix_hard", "beta_soft"]))
def test_same_seed_same_mixing(seed, name):
    arm = get_arm(name)
    images, labels = _batch(4, seed)
    a = arm.build(4, OPTIONS, seed)(images, labels)
    b = arm.build(4, OPTIONS, seed)(images, labels)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

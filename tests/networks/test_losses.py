"""Soft-label Dice + CE / BCE: minimised at prediction = (soft) target, linear where it must be, clear errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.losses import DiceLoss

from monai_hsmix.networks.losses import SoftDiceBCELoss, SoftDiceCELoss

K = 4


def soft_target(seed: int, shape=(2, K, 8, 8), temperature: float = 1.0) -> torch.Tensor:
    """A class distribution per pixel with every probability > 0."""
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(shape, generator=g) / temperature, dim=1)


def hard_target(seed: int, shape=(2, 1, 8, 8), classes: int = K) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, shape, generator=g)


def one_hot(index: torch.Tensor, classes: int = K) -> torch.Tensor:
    return torch.nn.functional.one_hot(index[:, 0], classes).movedim(-1, 1).float()


def mix_of_two_one_hots(alpha: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a, b = one_hot(hard_target(seed)), one_hot(hard_target(seed + 1))
    return alpha * a + (1 - alpha) * b, a, b


def test_dice_part_vanishes_when_prediction_equals_hard_target():
    index = hard_target(0)
    logits = 40.0 * one_hot(index)  # softmax is one-hot to float precision
    dice_only = SoftDiceCELoss(lambda_ce=0.0)
    assert dice_only(logits, one_hot(index)) < 1e-4
    assert dice_only(logits, index) < 1e-4  # class indices are turned into the same one-hot


def test_dice_part_vanishes_when_prediction_equals_soft_target():
    target = soft_target(1)
    logits = target.log()
    assert SoftDiceCELoss(lambda_ce=0.0)(logits, target) < 1e-4
    # why soft_label matters: MONAI's hard-label Dice is far from 0 at the same point
    assert DiceLoss(softmax=True)(logits, target) > 0.1


def test_ce_gradient_vanishes_at_soft_target_and_not_elsewhere():
    target = soft_target(2)
    ce_only = SoftDiceCELoss(lambda_dice=0.0)
    at_target = target.log().requires_grad_(True)
    ce_only(at_target, target).backward()
    assert at_target.grad.abs().max() < 1e-6
    elsewhere = (target.log() + 0.5 * torch.randn_like(target)).requires_grad_(True)
    ce_only(elsewhere, target).backward()
    assert elsewhere.grad.abs().max() > 1e-4


def test_full_loss_is_minimal_at_soft_target():
    # soft Dice uses |p - t| (not differentiable at p = t), so test the minimum, not a zero gradient
    target = soft_target(3)
    loss = SoftDiceCELoss()
    at_target = loss(target.log(), target)
    g = torch.Generator().manual_seed(3)
    for _ in range(10):
        nudged = target.log() + 0.05 * torch.randn(target.shape, generator=g)
        assert loss(nudged, target) > at_target


@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_ce_is_linear_in_the_target(alpha, seed):
    # mixing labels mixes the CE losses; an argmax of the target would break this for 0 < alpha < 1
    mixed, a, b = mix_of_two_one_hots(alpha, seed)
    logits = torch.randn(mixed.shape, generator=torch.Generator().manual_seed(seed))
    ce = SoftDiceCELoss(lambda_dice=0.0)
    torch.testing.assert_close(ce(logits, mixed), alpha * ce(logits, a) + (1 - alpha) * ce(logits, b))


def test_soft_and_argmaxed_targets_give_different_losses():
    mixed, _, _ = mix_of_two_one_hots(0.6)
    argmaxed = mixed.argmax(dim=1, keepdim=True)
    logits = torch.randn(mixed.shape, generator=torch.Generator().manual_seed(5))
    loss = SoftDiceCELoss()
    assert abs(float(loss(logits, mixed)) - float(loss(logits, argmaxed))) > 1e-3


def test_matching_the_mix_beats_matching_either_source():
    mixed, a, b = mix_of_two_one_hots(0.6, seed=7)
    loss = SoftDiceCELoss()

    def logits_for(p: torch.Tensor) -> torch.Tensor:
        return p.clamp_min(1e-6).log()

    at_mix = loss(logits_for(mixed), mixed)
    assert at_mix < loss(logits_for(a), mixed)
    assert at_mix < loss(logits_for(b), mixed)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 50.0),
    temperature=st.floats(0.05, 5.0),
    batch=st.booleans(),
)
def test_losses_are_finite_and_non_negative(seed, scale, temperature, batch):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(2, 3, 5, 6, generator=g)
    ce_value = SoftDiceCELoss(batch=batch)(logits, soft_target(seed, (2, 3, 5, 6), temperature))
    multilabel = torch.rand(2, 3, 5, 6, generator=g)
    bce_value = SoftDiceBCELoss(batch=batch)(logits, multilabel)
    for value in (ce_value, bce_value):
        assert torch.isfinite(value) and value >= 0


def test_index_labels_equal_one_hot_labels():
    index = hard_target(8)
    logits = torch.randn(2, K, 8, 8, generator=torch.Generator().manual_seed(8))
    loss = SoftDiceCELoss()
    torch.testing.assert_close(loss(logits, index), loss(logits, one_hot(index)))
    torch.testing.assert_close(loss(logits, index.float()), loss(logits, one_hot(index)))


def test_ce_weight_scales_the_ce_term():
    target = soft_target(9)
    logits = torch.randn_like(target)
    plain = SoftDiceCELoss(lambda_dice=0.0)(logits, target)
    doubled = SoftDiceCELoss(lambda_dice=0.0, ce_weight=[2.0] * K)(logits, target)
    torch.testing.assert_close(doubled, 2 * plain)


@pytest.mark.parametrize(
    "logits_shape, target, match",
    [
        ((2, K, 8, 8), torch.zeros(2, K, 8, 9), "does not match"),
        ((2, K, 8, 8), torch.zeros(2, 3, 8, 8), "3 channels"),
        ((2, 1, 8, 8), torch.zeros(2, 1, 8, 8), "K >= 2"),
        ((2, K, 8, 8), torch.full((2, 1, 8, 8), 0.5), "non-integer"),
        ((2, K, 8, 8), torch.full((2, 1, 8, 8), float(K)), r"\[0, 4\)"),
        ((2, K, 8, 8), torch.full((2, K, 8, 8), 0.5), "sum to 1"),
        ((2, K, 8, 8), torch.full((2, K, 8, 8), 1.5), r"\[0, 1\]"),
        ((2, K, 8, 8), torch.full((2, K, 8, 8), float("nan")), "NaN"),
        ((K, 8), torch.zeros(K, 8), "logits"),
    ],
)
def test_ce_bad_targets_fail_clearly(logits_shape, target, match):
    with pytest.raises(ValueError, match=match):
        SoftDiceCELoss()(torch.zeros(logits_shape), target)


@pytest.mark.parametrize("kwargs", [dict(reduction="none"), dict(lambda_ce=-1.0)])
def test_ce_bad_options_fail_clearly(kwargs):
    with pytest.raises(ValueError, match="reduction|lambda"):
        SoftDiceCELoss(**kwargs)


def brats_like(seed: int) -> torch.Tensor:
    """Nested multi-label maps (WT contains TC contains ET), channels ordered TC, WT, ET as MONAI gives them."""
    g = torch.Generator().manual_seed(seed)
    grade = torch.randint(0, 4, (2, 1, 8, 8), generator=g)  # 0 none, 1 oedema, 2 core, 3 enhancing
    wt, tc, et = grade >= 1, grade >= 2, grade >= 3
    return torch.cat([tc, wt, et], dim=1).float()


def test_bce_version_vanishes_at_hard_multilabel_target():
    target = brats_like(10)
    assert (target.sum(dim=1) > 1).any()  # overlapping labels, which a softmax loss must reject
    logits = 40.0 * (2 * target - 1)
    assert SoftDiceBCELoss()(logits, target) < 1e-4
    with pytest.raises(ValueError, match="SoftDiceBCELoss"):
        SoftDiceCELoss()(logits, target)


def test_bce_version_is_stationary_at_soft_multilabel_target():
    mixed = 0.3 * brats_like(11) + 0.7 * brats_like(12)
    mixed = mixed.clamp(0.05, 0.95)  # keep the logits finite
    logits = torch.logit(mixed).requires_grad_(True)
    loss = SoftDiceBCELoss()
    value = loss(logits, mixed)
    value.backward()
    assert logits.grad.abs().max() < 1e-5
    assert SoftDiceBCELoss(lambda_bce=0.0)(logits.detach(), mixed) < 1e-4


@settings(max_examples=20, deadline=None)
@given(alpha=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_bce_is_linear_in_the_target(alpha, seed):
    a, b = brats_like(seed), brats_like(seed + 1)
    logits = torch.randn(a.shape, generator=torch.Generator().manual_seed(seed))
    bce = SoftDiceBCELoss(lambda_dice=0.0)
    mixed = alpha * a + (1 - alpha) * b
    torch.testing.assert_close(bce(logits, mixed), alpha * bce(logits, a) + (1 - alpha) * bce(logits, b))


def test_bce_pos_weight_weights_positives_per_label():
    target = brats_like(13)
    logits = torch.randn_like(target)
    plain = SoftDiceBCELoss(lambda_dice=0.0)(logits, target)
    ones = SoftDiceBCELoss(lambda_dice=0.0, pos_weight=[1.0, 1.0, 1.0])(logits, target)
    heavier = SoftDiceBCELoss(lambda_dice=0.0, pos_weight=[1.0, 5.0, 1.0])(logits, target)
    torch.testing.assert_close(ones, plain)
    assert heavier > plain
    with pytest.raises(ValueError, match="pos_weight"):
        SoftDiceBCELoss(pos_weight=[1.0, 2.0])(logits, target)


@pytest.mark.parametrize(
    "target, match",
    [
        (torch.zeros(2, 1, 8, 8), "channels"),
        (torch.full((2, 3, 8, 8), -0.5), r"\[0, 1\]"),
        (torch.zeros(2, 3, 4, 4), "does not match"),
    ],
)
def test_bce_bad_targets_fail_clearly(target, match):
    with pytest.raises(ValueError, match=match):
        SoftDiceBCELoss()(torch.zeros(2, 3, 8, 8), target)


@pytest.mark.parametrize(
    "value, reason",
    [(float("nan"), "NaN"), (0.5, "integer"), (4.0, r"\[0, 3\]"), (-1.0, r"\[0, 3\]")],
)
def test_index_targets_are_checked_like_the_transforms_labels(value, reason):
    # one check of index labels: the loss names the same reason as labels_to_channels, with its own name
    from monai_hsmix.core import labels_to_channels

    target = torch.zeros(2, 1, 8, 8)
    target[0, 0, 3, 3] = value
    with pytest.raises(ValueError, match=reason):
        labels_to_channels(target, num_classes=4)
    with pytest.raises(ValueError, match=f"^SoftDiceCELoss: .*{reason}"):
        SoftDiceCELoss()(torch.zeros(2, 4, 8, 8), target)


def test_soft_dice_ce_with_batch_dice_is_monai_dice_plus_probability_cross_entropy():
    # the ablation trains with SoftDiceCELoss(batch=True); it replaced a second hand-written copy of
    # exactly this sum, which must keep the ablation's published numbers reproducible
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 8, 8)
    target = torch.softmax(torch.randn(3, 4, 8, 8) * 3, dim=1)
    expected = DiceLoss(softmax=True, soft_label=True, batch=True)(logits, target) + torch.nn.functional.cross_entropy(
        logits, target
    )
    assert torch.allclose(SoftDiceCELoss(batch=True)(logits, target), expected, atol=1e-6)
    assert not torch.allclose(SoftDiceCELoss(batch=False)(logits, target), expected, atol=1e-4)

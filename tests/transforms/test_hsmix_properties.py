"""The paper's invariants, checked through the public transforms on random batches (hypothesis).

These run the training path itself (``RandHSMix`` / ``RandHSMixd`` -> ``core.hsmix_masks`` ->
``core.mix_with_masks``), so a change to any layer that breaks an equation fails here.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix import RandHSMix, RandHSMixd
from monai_hsmix.backends import resolve_backend
from monai_hsmix.core import relative_saliency


@st.composite
def batches(draw):
    b = draw(st.integers(2, 4))
    c = draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(6, 20), min_size=2, max_size=2)))
    classes = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.from_numpy(rng.normal(size=(b, c) + spatial)).float(), 3, 1, 1)
    labels = torch.from_numpy(rng.integers(0, classes, size=(b, 1) + spatial))
    return smooth, labels, classes, seed


def _per_region_constant(values: torch.Tensor, regions: torch.Tensor) -> bool:
    for r in torch.unique(regions):
        inside = values[regions == r]
        if not bool((inside == inside[0]).all()):
            return False
    return True


@settings(max_examples=25, deadline=None)
@given(batches(), st.floats(0.0, 1.0), st.sampled_from(["index", "one_hot"]))
def test_hsmix_invariants_through_the_transform(batch, p, label_format):
    images, labels, classes, seed = batch
    mix = RandHSMix(num_classes=classes, n_segments=(2, 12), compactness=0.1, p=p, backend="torch")
    mix.set_random_state(seed)
    if label_format == "one_hot":
        labels = torch.nn.functional.one_hot(labels[:, 0], classes).movedim(-1, 1).float()
    x, y, masks = mix(images, labels, return_masks=True)
    bsz = images.shape[0]
    x1, x2, mh, ms = images, images[masks.partner], masks.hard_mask, masks.soft_mask
    for b in range(bsz):
        # Eq. 1: Mh is binary and a union of whole superpixels of SP2
        assert set(torch.unique(mh[b]).tolist()) <= {0.0, 1.0}
        assert _per_region_constant(mh[b], masks.partner_segments[b])
        # Eq. 5-6: Ms is constant on every superpixel of SPm and equals the mean of SA21 there
        assert _per_region_constant(ms[b], masks.mixed_segments[b])
    saliency = resolve_backend("torch")[1](images)
    sa21 = relative_saliency(saliency, saliency[masks.partner])
    for b in range(bsz):
        for r in torch.unique(masks.mixed_segments[b]):
            inside = masks.mixed_segments[b] == r
            torch.testing.assert_close(ms[b][inside][0], sa21[b][inside].mean(), rtol=1e-5, atol=1e-6)
    # Eq. 2: each hard pixel is exactly X1 or X2; Eq. 7: the soft sample is the blend
    assert torch.equal(x[:bsz], torch.where(mh[:, None] > 0, x2, x1))
    torch.testing.assert_close(x[bsz:], x1 * (1 - ms[:, None]) + x2 * ms[:, None])
    # soft labels stay a probability distribution at every pixel, hard labels are one-hot
    torch.testing.assert_close(y.sum(1), torch.ones_like(y[:, 0]))
    assert set(torch.unique(y[:bsz]).tolist()) <= {0.0, 1.0}
    assert bool(torch.isfinite(x).all())


@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("fill", [0.0, 3.5, "float16", "bfloat16"])
def test_constant_zero_and_half_precision_images_give_finite_output(backend, fill):
    g = torch.Generator().manual_seed(0)
    if isinstance(fill, float):
        images = torch.full((3, 2, 24, 24), fill)
    else:
        images = torch.rand(3, 2, 24, 24, generator=g).to(getattr(torch, fill))
    labels = torch.randint(0, 3, (3, 1, 24, 24), generator=g)
    out = RandHSMixd(
        ["image", "label"],
        "label",
        num_classes=3,
        n_segments=(4, 9),
        compactness=0.1,
        backend=backend,
        return_masks=True,
    ).set_random_state(1)({"image": images, "label": labels})
    assert out["image"].dtype == images.dtype and out["image"].shape == (6, 2, 24, 24)
    assert bool(torch.isfinite(out["image"].float()).all()) and bool(torch.isfinite(out["label"]).all())
    assert bool(torch.isfinite(out["hsmix_soft_mask"].float()).all())
    torch.testing.assert_close(out["label"].sum(1), torch.ones(6, 24, 24))

"""Both engines (numba kernels and torch operations) on extreme finite inputs, under NUMBA_BOUNDSCHECK=1.

Run from tests/test_numba_boundscheck.py, in a child process whose kernels are compiled with bounds
checks (an out-of-bounds index raises IndexError instead of reading or writing past an array); in
a plain run these tests skip. Images come from :mod:`extreme_inputs`: values at float32's limits,
float64 beyond them, constant images, 1-voxel images and 1-slice volumes, non-contiguous and
channels-last layouts, float16, bfloat16, float64 and integer dtypes.

The engines are not bit-identical superpixel for superpixel (their candidate windows differ, and
on noise images of a few voxels that changes some labels at any scale), so what is asserted is
what must hold at every scale: both engines succeed, or both raise the same error; each engine's
labels are valid and equal to its labels for the same images min-max scaled to [0, 1] (what the
superpixels are defined on), whatever the layout and dtype. Saliency is bit-identical between
engines, so there it is compared directly.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from extreme_inputs import F32_DENORMAL, F32_MAX, image_batches, with_layout
from monai_hsmix.backends import slic_numba_engine
from monai_hsmix.backends.intensity import float32_maps
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency
from monai_hsmix.backends.torch_slic import torch_slic

pytestmark = pytest.mark.skipif(
    not numba.config.BOUNDSCHECK, reason="runs with NUMBA_BOUNDSCHECK=1, from tests/test_numba_boundscheck.py"
)

ENGINES = ("numba", "torch")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


# always tried, whatever hypothesis draws: a 1-voxel image, a 1-slice volume at float32's limits in
# channels-last layout, a constant subnormal image, an image of two extreme values
EDGE_CASES = [
    (torch.full((1, 1, 1, 1), 5.0), "constant", torch.float32, "contiguous"),
    (
        with_layout(torch.tensor([-F32_MAX, F32_MAX]).repeat(40)[:40].reshape(1, 2, 5, 4, 1), "channels_last"),
        "huge",
        torch.float32,
        "channels_last",
    ),
    (torch.full((2, 1, 3, 3), F32_DENORMAL), "constant", torch.float32, "contiguous"),
    (torch.tensor([[[[0.0, F32_DENORMAL], [F32_MAX, -F32_MAX]]]]), "mixed", torch.float32, "contiguous"),
]


def _outcome(fn):
    """``("ok", result)`` or ``("error", type, message)``."""
    try:
        return ("ok", fn())
    except (ValueError, TypeError) as err:
        return ("error", type(err), str(err))


def _unit_range(x: torch.Tensor) -> torch.Tensor:
    """Every image min-max scaled to [0, 1], from the float32 maps the engines start from."""
    maps, lo, hi = float32_maps(x)
    view = (x.shape[0],) + (1,) * (x.ndim - 1)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return (maps - lo.view(view)) / span.view(view)


def _check_labels(seg: torch.Tensor, shape) -> None:
    assert seg.shape == (shape[0],) + tuple(shape[2:]) and seg.dtype == torch.int64
    for labels in seg.numpy():
        ids = np.unique(labels)
        assert np.array_equal(ids, np.arange(len(ids))), "labels are not contiguous from 0"
        for v in ids:  # every superpixel is one connected piece
            assert ndimage.label(labels == v)[1] == 1


@FUZZ
@example(batch=EDGE_CASES[0], n=1, compactness=0.1, spacing=None, lab=False)
@example(batch=EDGE_CASES[1], n=4, compactness=1e-3, spacing=0.5, lab=False)
@example(batch=EDGE_CASES[2], n=3, compactness=10.0, spacing=None, lab=False)
@example(batch=EDGE_CASES[3], n=2, compactness=1e-11, spacing=None, lab=False)
@given(
    batch=image_batches(),
    n=st.integers(1, 20),
    compactness=st.sampled_from([1e-20, 1e-11, 1e-3, 0.1, 10.0, 1e6, 1e30]),
    spacing=st.sampled_from([None, 0.5, 1e9, 1e20]),
    lab=st.booleans(),
)
def test_slic_engines_on_extreme_images(batch, n, compactness, spacing, lab):
    x, kind, dtype, layout = batch
    nd = x.ndim - 2
    space = "lab" if lab and x.shape[1] == 3 else "intensity"
    counts = torch.full((x.shape[0],), n)
    args = dict(compactness=compactness, spacing=None if spacing is None else (spacing,) * nd, slic_space=space)
    outcomes = {e: _outcome(lambda: torch_slic(x, counts, engine=e, **args)) for e in ENGINES}
    assert outcomes["numba"][0] == outcomes["torch"][0], outcomes
    if outcomes["numba"][0] == "error":
        assert outcomes["numba"] == outcomes["torch"]
        assert "compactness" in outcomes["numba"][2] or "spacing" in outcomes["numba"][2]
        return
    unit = _unit_range(x)
    for engine in ENGINES:
        seg = outcomes[engine][1]
        _check_labels(seg, x.shape)
        # the superpixels of the images scaled to [0, 1], whatever their range, dtype or layout
        assert torch.equal(seg, torch_slic(unit, counts, engine=engine, **args)), f"{engine}: {kind} {dtype} {layout}"
        assert torch.equal(seg, torch_slic(x.contiguous(), counts, engine=engine, **args))


@FUZZ
@example(batch=EDGE_CASES[0])
@example(batch=EDGE_CASES[1])
@example(batch=EDGE_CASES[2])
@example(batch=EDGE_CASES[3])
@given(batch=image_batches(max_side=16))
def test_saliency_engines_on_extreme_images(batch):
    x, kind, dtype, layout = batch
    maps = {e: torch_fine_grained_saliency(x, engine=e) for e in ENGINES}
    assert torch.equal(maps["numba"], maps["torch"]), f"{kind} {dtype} {layout}"
    sal = maps["numba"]
    assert sal.shape == (x.shape[0],) + tuple(x.shape[2:]) and sal.dtype == torch.float32
    assert bool(((sal >= 0) & (sal <= 1)).all())
    assert torch.equal(sal, torch_fine_grained_saliency(x.contiguous(), engine="numba"))
    if dtype in (torch.float16, torch.bfloat16) or not dtype.is_floating_point:
        assert torch.equal(sal, torch_fine_grained_saliency(x.float(), engine="numba"))


@FUZZ
@given(batch=image_batches(max_side=10), n=st.integers(1, 12), data=st.data())
def test_transform_mixes_extreme_images_into_finite_ones(batch, n, data):
    from monai_hsmix import RandHSMixd

    x, kind, dtype, layout = batch
    if x.shape[0] < 2:  # a pair to mix
        x = torch.cat([x, x.flip(0)])
    if not dtype.is_floating_point:  # integer images are refused as likely label maps: cast them
        x = x.float()
    labels = torch.from_numpy(
        np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, 3, (x.shape[0], 1) + tuple(x.shape[2:]))
    )
    mix = RandHSMixd(
        ["image", "label"],
        "label",
        num_classes=3,
        n_segments=n,
        compactness=0.1,
        mode=data.draw(st.sampled_from(["both", "hard", "soft"])),
    ).set_random_state(0)
    out = mix({"image": x, "label": labels})
    assert out["image"].dtype == x.dtype
    assert bool(torch.isfinite(out["image"]).all()), f"{kind} {dtype} {layout}: the mix overflowed"
    top = x.double().abs().max()
    assert float(out["image"].double().abs().max()) <= float(top), "a blend left the range of its two images"
    torch.testing.assert_close(out["label"].sum(1), torch.ones_like(out["label"][:, 0]))


@FUZZ
@given(
    fill=st.sampled_from([np.nan, np.inf, -np.inf, 3.4e38, 0.0]),
    fraction=st.sampled_from([0.05, 1.0]),
    shape=st.sampled_from([(1, 1), (9, 7), (4, 6, 3)]),
    n=st.integers(1, 12),
    seed=st.integers(0, 99),
)
def test_slic_kernels_label_every_voxel_whatever_the_features(fill, fraction, shape, n, seed):
    # features the validation never lets through (NaN, infinities, squares that overflow): no
    # distance compares below another, yet every voxel must get a centre that exists
    rng = np.random.default_rng(seed)
    colour = rng.random((1, 2) + shape).astype(np.float32)
    colour[rng.random(colour.shape) < fraction] = fill
    factors = (1,) * len(shape)
    plan = slic_numba_engine.plan_for(shape, n, (1.0,) * len(shape), factors)
    labels = slic_numba_engine.slic_labels(colour, [plan], 10, factors, shape)[0]
    # component numbers in raster order of their first voxel: each superpixel's number is the
    # number of components before its first voxel, so the numbers rise with first appearance
    ids, first = np.unique(labels, return_index=True)
    assert (
        ids.min() >= 0
        and ids.max() < labels.size
        and np.array_equal(np.argsort(first, kind="stable"), np.arange(len(ids)))
    )

"""The mixing kernels (numba_mixing) on extreme inputs, against the torch operations, under NUMBA_BOUNDSCHECK=1.

Run from tests/test_numba_boundscheck.py in a child process whose kernels are compiled with bounds
checks; in a plain run these tests skip. Masks hold 0, 1, subnormals and values one ulp from 0
and 1; labels are sparse (large gaps, one label, the largest label on one voxel); layouts include
non-contiguous and channels-last tensors, 1-voxel images and 1-slice volumes.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extreme_inputs import with_layout
from monai_hsmix.core.hsmix_equations import mix_with_masks
from monai_hsmix.core.segment_ops import segment_mean

pytestmark = pytest.mark.skipif(
    not numba.config.BOUNDSCHECK, reason="runs with NUMBA_BOUNDSCHECK=1, from tests/test_numba_boundscheck.py"
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
_MASK_VALUES = np.array(
    [
        0.0,
        1.0,
        np.finfo(np.float32).smallest_subnormal,
        np.nextafter(np.float32(1), np.float32(0)),
        np.nextafter(np.float32(0), np.float32(1)),
        0.5,
        1e-30,
    ]
)


@st.composite
def _batches(draw):
    b = draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(1, 1), (1, 7), (6, 5), (4, 3, 1), (3, 4, 2)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    layout = draw(st.sampled_from(["contiguous", "strided", "channels_last"]))
    return b, spatial, rng, layout


@FUZZ
@given(
    batch=_batches(),
    num_classes=st.integers(1, 6),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    include_original=st.booleans(),
)
def test_blending_class_labels_with_and_without_the_kernel(batch, num_classes, dtype, include_original):
    b, spatial, rng, layout = batch
    labels = with_layout(torch.from_numpy(rng.integers(0, num_classes, (b, 1) + spatial)), layout)
    mask = with_layout(
        torch.from_numpy(_MASK_VALUES[rng.integers(0, len(_MASK_VALUES), (b,) + spatial)]).to(dtype), layout
    )
    partner = torch.from_numpy(rng.permutation(b))
    parts = [((mask > 0.5).to(dtype), True), (mask, False)]
    fast, _ = mix_with_masks(labels, partner, parts, include_original, num_classes)
    slow, _ = mix_with_masks(labels, partner, parts, include_original, num_classes, engine="torch")
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.sum(1), torch.ones_like(fast[:, 0]), rtol=0, atol=1e-6)


@settings(FUZZ, max_examples=60)  # its per-segment reference is a Python loop
@given(
    batch=_batches(),
    gap=st.sampled_from([1, 7, 10**6]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    scale=st.sampled_from([1.0, 1e-30, 1e30, float(np.finfo(np.float32).smallest_subnormal)]),
)
def test_segment_means_with_and_without_the_kernel(batch, gap, dtype, scale):
    b, spatial, rng, layout = batch
    segments = torch.from_numpy(rng.integers(0, 5, (b,) + spatial) * gap)
    segments.view(-1)[int(rng.integers(segments.numel()))] = 5 * gap  # the largest label, on one voxel
    values = with_layout(torch.from_numpy(rng.random((b,) + spatial) * scale).to(dtype), layout)
    segments = with_layout(segments, layout)
    fast = segment_mean(values, segments)
    for i in range(b):
        for s in segments[i].unique():
            inside = segments[i] == s
            expected = values[i][inside].double().mean().to(dtype)
            torch.testing.assert_close(fast[i][inside], expected.expand(int(inside.sum())), rtol=1e-6, atol=0)

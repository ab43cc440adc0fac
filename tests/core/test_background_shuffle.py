import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.core.background_shuffle import shuffle_background_patches


def _patches(x: torch.Tensor, p: int) -> torch.Tensor:
    c, h, w = x.shape
    nh, nw = h // p, w // p
    return x[:, : nh * p, : nw * p].reshape(c, nh, p, nw, p).permute(1, 3, 0, 2, 4).reshape(nh * nw, c * p * p)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    height=st.integers(8, 70),
    width=st.integers(8, 70),
    patch=st.integers(2, 12),
    fraction=st.floats(0.0, 1.0),
    channels=st.sampled_from([1, 3]),
)
def test_shuffle_moves_only_background_patches_and_keeps_their_contents(seed, height, width, patch, fraction, channels):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(channels, height, width, generator=gen)  # distinct patches
    foreground = torch.rand(height, width, generator=gen) > 0.97
    out = shuffle_background_patches(image, foreground, patch, fraction, np.random.RandomState(seed))
    # every foreground pixel, and every patch that holds one, is untouched
    assert torch.equal(out[:, foreground], image[:, foreground])
    before, after = _patches(image, patch), _patches(out, patch)
    has_fg = _patches(foreground[None].float(), patch).any(dim=1)
    assert torch.equal(after[has_fg], before[has_fg])
    # the remainder strip is untouched
    nh, nw = height // patch * patch, width // patch * patch
    assert torch.equal(out[:, nh:], image[:, nh:]) and torch.equal(out[:, :, nw:], image[:, :, nw:])
    # background patches are permuted, never invented: same multiset of patches
    assert torch.equal(torch.sort(after, dim=0).values, torch.sort(before, dim=0).values)
    n_bg = int((~has_fg).sum())
    k = int(round(fraction * n_bg))
    moved = int((after != before).any(dim=1).sum())
    assert moved == (k if k >= 2 else 0)


def test_same_rng_state_gives_same_shuffle():
    image = torch.rand(3, 40, 40)
    fg = torch.zeros(40, 40, dtype=torch.bool)
    a = shuffle_background_patches(image, fg, 10, 0.5, np.random.RandomState(3))
    b = shuffle_background_patches(image, fg, 10, 0.5, np.random.RandomState(3))
    c = shuffle_background_patches(image, fg, 10, 0.5, np.random.RandomState(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, image)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": 0}, "patch_size"),
        ({"patch_size": 2.5}, "patch_size"),
        ({"fraction": 1.5}, "fraction"),
        ({"foreground": torch.zeros(5, 5)}, "foreground"),
        ({"image": torch.zeros(8, 8)}, "image"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"image": torch.zeros(1, 8, 8), "foreground": torch.zeros(8, 8), "patch_size": 4, "fraction": 0.2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        shuffle_background_patches(**args)

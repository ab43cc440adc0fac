"""One check of an image batch for every public entry point, run once per transform call."""

import numpy as np
import pytest
import torch

from monai_hsmix.backends import reference, torch_saliency, torch_slic
from monai_hsmix.backends.validation import (
    ImageDtypeError,
    check_compactness,
    check_grid_size,
    check_image_batch,
    check_spacing,
)
from monai_hsmix.transforms import hsmix
from monai_hsmix.transforms.hsmix import RandHSMix

BAD_BATCHES = {
    "no batch axis": torch.rand(1, 8, 8),
    "too many axes": torch.rand(1, 1, 4, 8, 8, 3),
    "no channel": torch.rand(2, 0, 8, 8),
    "bool": torch.ones(2, 1, 8, 8, dtype=torch.bool),
    "complex": torch.ones(2, 1, 8, 8, dtype=torch.complex64),
    "nan": torch.full((2, 1, 8, 8), float("nan")),
    "inf": torch.full((2, 1, 8, 8), float("inf")),
}


def _entry_points():
    counts = torch.tensor([4, 4])
    return {
        "torch_slic": lambda x: torch_slic.torch_slic(x, counts[: x.shape[0]], 1.0),
        "torch_fine_grained_saliency": torch_saliency.torch_fine_grained_saliency,
        "skimage_slic": lambda x: reference.skimage_slic(x, counts[: x.shape[0]], 1.0),
        "opencv_saliency": reference.opencv_saliency,
        "RandHSMix": lambda x: RandHSMix(n_segments=4, backend="reference")(x),
    }


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_every_public_entry_point_gives_the_same_reason(case):
    bad = BAD_BATCHES[case]
    with pytest.raises((TypeError, ValueError)) as expected:
        check_image_batch(bad, "images")
    for name, call in _entry_points().items():
        with pytest.raises((TypeError, ValueError)) as got:
            call(bad)
        message = str(got.value).replace("img", "images", 1) if name == "RandHSMix" else str(got.value)
        assert type(got.value) is type(expected.value), name
        assert message == str(expected.value), name


def test_bad_dtype_is_both_a_type_and_a_value_error():
    # the backends raised TypeError and the transforms ValueError: callers catching either still do
    with pytest.raises(ImageDtypeError) as err:
        check_image_batch(torch.zeros(2, 1, 4, 4, dtype=torch.bool))
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_image_batch(np.zeros((2, 1, 4, 4)))


def test_empty_batch_only_where_allowed():
    check_image_batch(torch.zeros(0, 1, 4, 4), allow_empty_batch=True)
    with pytest.raises(ValueError, match="empty dimension"):
        check_image_batch(torch.zeros(0, 1, 4, 4))
    with pytest.raises(ValueError, match="empty dimension"):
        check_image_batch(torch.zeros(2, 1, 0, 4), allow_empty_batch=True)


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_a_transform_checks_its_batch_once(monkeypatch, backend):
    calls = []

    def counting(images, *args, **kwargs):
        calls.append(tuple(images.shape))
        return check_image_batch(images, *args, **kwargs)

    # raising=False: where a module had its own copy of the check, the counter stays at 0 and the test fails
    for module in (hsmix, torch_slic, torch_saliency, reference):
        monkeypatch.setattr(module, "check_image_batch", counting, raising=False)
    images = torch.rand(4, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    mix = RandHSMix(n_segments=6, mode="both", backend=backend).set_random_state(0)
    out = mix(images)
    assert out.shape == (8, 1, 24, 24)
    assert calls == [(4, 1, 24, 24)]


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_compactness_and_spacing_whose_squares_overflow_are_refused_naming_them(engine):
    x = torch.rand(2, 4, 24, 20)
    counts = torch.tensor([6, 6])
    with pytest.raises(ValueError, match=r"compactness=1e-20 is too small .* use compactness >= "):
        torch_slic.torch_slic(x, counts, 1e-20, engine=engine)
    with pytest.raises(ValueError, match=r"compactness=1e-12 .* in CIELAB"):
        torch_slic.torch_slic(x[:, :3], counts, 1e-12, slic_space="lab", engine=engine)
    with pytest.raises(ValueError, match=r"spacing=\(1e\+20, 1.0\) is too large for images of \(24, 20\) voxels"):
        torch_slic.torch_slic(x, counts, 0.1, spacing=(1e20, 1.0), engine=engine)
    # the bounds follow the sizes: just inside them, both run
    assert torch_slic.torch_slic(x, counts, 3e-12, engine=engine).shape == (2, 24, 20)
    assert torch_slic.torch_slic(x, counts, 0.1, spacing=(1e10, 1.0), engine=engine).shape == (2, 24, 20)
    # the transforms reach the same check
    with pytest.raises(ValueError, match="compactness=1e-20"):
        RandHSMix(n_segments=4, compactness=1e-20)(x)


def _message(call):
    with pytest.raises(ValueError) as err:
        call()
    return str(err.value)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_transform_refuses_compactness_with_the_shared_check(bad):
    assert _message(lambda: RandHSMix(compactness=bad)) == _message(lambda: check_compactness(bad))


@pytest.mark.parametrize("bad", [(1.0, -1.0), (1.0, float("nan")), (), (1.0, "2")])
def test_transform_refuses_spacing_with_the_shared_check(bad):
    assert _message(lambda: RandHSMix(spacing=bad)) == _message(lambda: check_spacing(bad))
    assert check_spacing(None) is None and check_spacing(np.array([1, 2])) == (1.0, 2.0)
    # a spacing for another number of spatial axes than the images have is refused at the call
    mix = RandHSMix(n_segments=4, spacing=(1.0, 1.0, 2.0))
    assert _message(lambda: mix(torch.rand(2, 1, 8, 8))) == _message(lambda: check_spacing((1.0, 1.0, 2.0), 2))


@pytest.mark.parametrize("bad", [0, 1.5, True, (7,), (2, 0), [], "7"])
def test_transform_and_grid_cells_refuse_grid_size_with_the_shared_check(bad):
    from monai_hsmix.core import grid_cells

    if not (isinstance(bad, tuple) and len(bad) == 1):  # one value per axis is fine when the axes are unknown
        assert _message(lambda: RandHSMix(grid_size=bad)) == _message(lambda: check_grid_size(bad))
    assert _message(lambda: grid_cells(1, (8, 8), bad)) == _message(lambda: check_grid_size(bad, 2))
    assert check_grid_size(3) == 3 and check_grid_size([2, 3], 2) == (2, 3)

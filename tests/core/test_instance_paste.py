import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from monai_hsmix.core.instance_bank import InstanceBank
from monai_hsmix.core.instance_paste import paste_instances
from monai_hsmix.data.nuclei_data import synthetic_nuclei
from monai_hsmix.core.ssd_constraints import SSDConstraints


def _independent_shape_factor(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Reference: shift b's pixel coordinates by the rounded centroid difference and compare pixel sets."""
    pa, pb = np.argwhere(mask_a), np.argwhere(mask_b)
    shift = np.round(pb.mean(axis=0) - pa.mean(axis=0)).astype(int)
    set_a = set(map(tuple, pa))
    set_b = set(map(tuple, pb - shift))
    return len(set_a ^ set_b) / max(len(set_a), len(set_b))


def check_paste(image, inst, result, bank, constraints):
    """Assert every InsMix invariant of one paste result."""
    out_inst = result.instances
    # originals keep their ids, pixels and image values
    fg = inst > 0
    np.testing.assert_array_equal(out_inst[fg], inst[fg])
    np.testing.assert_array_equal(result.image[:, fg], image[:, fg])
    # nothing outside the pasted mask changed
    np.testing.assert_array_equal(result.image[:, ~result.pasted], image[:, ~result.pasted])
    assert not np.any(result.pasted & fg)
    np.testing.assert_array_equal(result.pasted, (out_inst > 0) & ~fg)
    new_ids = [r[1] for r in result.records]
    assert len(set(new_ids)) == len(new_ids)
    assert set(np.unique(out_inst[result.pasted]).tolist()) == set(new_ids)
    assert min(new_ids, default=inst.max() + 1) > inst.max()
    grow = np.ones((3, 3), dtype=bool)
    for original, new, t_idx, (top, left) in result.records:
        template = bank[t_idx]
        mask_new = out_inst == new
        # landed whole inside the image, at the recorded corner, with the template's pixels
        assert mask_new.sum() == template.area
        h, w = template.mask.shape
        np.testing.assert_array_equal(mask_new[top : top + h, left : left + w], template.mask)
        np.testing.assert_allclose(result.image[:, mask_new], np.round(template.image[:, template.mask]), atol=0.5)
        mask_o = inst == original
        assert max(mask_o.sum(), mask_new.sum()) / min(mask_o.sum(), mask_new.sum()) <= constraints.epsilon
        assert _independent_shape_factor(mask_o, template.mask) <= constraints.rho + 1e-12
        dist = np.hypot(*(np.array(ndimage.center_of_mass(mask_new)) - ndimage.center_of_mass(mask_o)))
        assert constraints.delta - 1e-9 <= dist <= constraints.gamma + 1e-9
        others = (out_inst > 0) & ~mask_new
        if constraints.allow_touching:
            assert not np.any(mask_new & others)
        else:
            assert not np.any(ndimage.binary_dilation(mask_new, grow) & others)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    epsilon=st.floats(1.0, 3.0),
    rho=st.floats(0.2, 1.0),
    delta=st.floats(0.0, 12.0),
    span=st.floats(2.0, 30.0),
    allow_touching=st.booleans(),
    ratio=st.floats(0.1, 1.0),
)
def test_every_paste_satisfies_the_ssd_constraints(seed, epsilon, rho, delta, span, allow_touching, ratio):
    image, inst = synthetic_nuclei(72, 10, seed=seed % 50)
    bank = InstanceBank.from_pairs([synthetic_nuclei(72, 10, seed=seed % 50 + 1)])
    constraints = SSDConstraints(epsilon, rho, delta, delta + span, allow_touching)
    result = paste_instances(image, inst, bank, constraints, np.random.RandomState(seed), ratio)
    check_paste(image, inst, result, bank, constraints)
    assert len(result.records) <= max(1, int(ratio * inst.max()))


def test_pastes_happen_with_default_constraints_and_are_seeded():
    image, inst = synthetic_nuclei(128, 20, seed=0)
    bank = InstanceBank.from_pairs([(image, inst)])
    first = paste_instances(image, inst, bank, SSDConstraints(), np.random.RandomState(0), 1.0)
    again = paste_instances(image, inst, bank, SSDConstraints(), np.random.RandomState(0), 1.0)
    assert len(first.records) >= 5
    assert first.records == again.records
    np.testing.assert_array_equal(first.image, again.image)
    check_paste(image, inst, first, bank, SSDConstraints())


def test_float_images_keep_dtype_and_uint8_images_are_rounded():
    image, inst = synthetic_nuclei(64, 8, seed=2)
    bank = InstanceBank.from_pairs([(image, inst)])
    as_float = paste_instances(image.astype(np.float32) / 255, inst, bank, SSDConstraints(), np.random.RandomState(0))
    assert as_float.image.dtype == np.float32
    assert paste_instances(image, inst, bank, SSDConstraints(), np.random.RandomState(0)).image.dtype == np.uint8


def test_paste_errors_are_explicit():
    image, inst = synthetic_nuclei(48, 4, seed=0)
    bank = InstanceBank.from_pairs([(image, inst)])
    rng = np.random.RandomState(0)
    with pytest.raises(ValueError, match="no nucleus instances"):
        paste_instances(image, np.zeros_like(inst), bank, SSDConstraints(), rng)
    with pytest.raises(ValueError, match="bank is empty"):
        paste_instances(image, inst, InstanceBank(), SSDConstraints(), rng)
    with pytest.raises(ValueError, match="channels"):
        paste_instances(image[:1], inst, bank, SSDConstraints(), rng)
    with pytest.raises(ValueError, match="max_paste_ratio"):
        paste_instances(image, inst, bank, SSDConstraints(), rng, max_paste_ratio=0)

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor
from monai.transforms import Compose
from scipy import ndimage

from monai_hsmix.core.instance_bank import InstanceBank
from monai_hsmix.data.nuclei_data import list_monuseg_pairs, read_monuseg_pair, synthetic_nuclei
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.networks.smooth_gan import PatchDiscriminator, SmoothGANGenerator, save_checkpoint
from monai_hsmix.transforms.insmix import RandInsMix, RandInsMixd, RandInsMixD, RandInsMixDict

EIGHT = np.ones((3, 3), dtype=bool)


def _sample(size=96, n=14, seed=0, binary=True):
    image, inst = synthetic_nuclei(size, n, seed=seed)
    if not binary:
        return image, inst, inst
    # a binary mask's instances are its 8-connected components, numbered in raster order
    return image, ndimage.label(inst > 0, structure=EIGHT)[0], (inst > 0).astype(np.uint8)[None]


def _check_output(image_in, inst_in, image_out, inst_out, pasted):
    """Originals unchanged, pasted nuclei new/unique/separate, image changed only where allowed."""
    inst_out, pasted = np.asarray(inst_out).squeeze(), np.asarray(pasted).squeeze().astype(bool)
    fg = inst_in > 0
    np.testing.assert_array_equal(inst_out[fg], inst_in[fg])
    np.testing.assert_array_equal(np.asarray(image_out)[:, fg], image_in[:, fg])
    new_ids = np.unique(inst_out[pasted])
    assert new_ids.size == 0 or new_ids.min() > inst_in.max()
    np.testing.assert_array_equal(pasted, (inst_out > 0) & ~fg)
    # every id is one 8-connected component, and no two instances touch (default constraints)
    components, count = ndimage.label(inst_out > 0, structure=EIGHT)
    assert count == np.unique(inst_out[inst_out > 0]).size
    for idx in np.unique(inst_out[inst_out > 0]):
        assert np.unique(components[inst_out == idx]).size == 1


def test_dictionary_transform_outputs_image_instances_and_semantic_mask():
    image, inst, label = _sample()
    t = RandInsMixd(pasted_key="pasted")
    t.set_random_state(0)
    out = t({"image": image, "label": label, "other": 5})
    assert out["other"] == 5
    assert isinstance(out["image"], np.ndarray) and out["image"].dtype == np.uint8
    assert out["label"].dtype == np.int32 and out["label"].shape == label.shape
    assert out["semantic"].dtype == label.dtype
    np.testing.assert_array_equal(out["semantic"], (out["label"] > 0).astype(np.uint8))
    assert out["pasted"].sum() > 0
    _check_output(image, inst, out["image"], out["label"], out["pasted"])
    assert len(t.mixer.last_records) == len(np.unique(out["label"][out["pasted"] > 0]))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**20), binary=st.booleans(), size=st.integers(48, 96), fraction=st.floats(0.0, 1.0))
def test_invariants_hold_for_any_seed(seed, binary, size, fraction):
    image, inst, label = _sample(size=size, n=size // 8, seed=seed % 97, binary=binary)
    t = RandInsMix(patch_size=8, shuffle_fraction=fraction).set_random_state(seed)
    out_img, out_inst, pasted = t(image, label)
    assert out_img.shape == image.shape and out_inst.shape == label.shape
    _check_output(image, inst, out_img, out_inst, pasted)


def test_metatensor_in_metatensor_out_with_meta_and_separate_instance_key():
    image, inst, label = _sample(binary=False)
    meta = {"filename_or_obj": "tile.png"}
    data = {"img": MetaTensor(torch.from_numpy(image).float(), meta=meta), "seg": MetaTensor(torch.from_numpy(inst))}
    t = RandInsMixD(image_key="img", label_key="seg", instance_key="inst", semantic_key="seg")
    t.set_random_state(1)
    out = t(data)
    assert isinstance(out["img"], MetaTensor) and out["img"].meta["filename_or_obj"] == "tile.png"
    assert out["img"].dtype == torch.float32
    assert isinstance(out["inst"], MetaTensor) and out["inst"].dtype == torch.int32
    assert torch.equal(out["seg"], (out["inst"] > 0).to(out["seg"].dtype))
    _check_output(image, inst, out["img"].numpy(), out["inst"].numpy(), out["inst"].numpy() > inst.max())


def test_seeded_determinism_and_seed_sensitivity():
    image, _, label = _sample()
    runs = []
    for seed in (3, 3, 4):
        t = RandInsMixDict(pasted_key="pasted").set_random_state(seed)
        runs.append(t({"image": image, "label": label}))
    for key in ("image", "label", "pasted"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    assert not np.array_equal(runs[0]["label"], runs[2]["label"])


def test_background_shuffle_applies_and_leaves_nuclei_alone():
    image, inst, label = _sample(size=100, n=6, seed=2)
    t = RandInsMix(max_paste_ratio=0.2, shuffle_fraction=0.5, patch_size=10).set_random_state(0)
    out_img, out_inst, pasted = t(image, label)
    changed_outside_nuclei = np.any(out_img != image, axis=0) & ~(np.asarray(out_inst)[0] > 0)
    assert changed_outside_nuclei.sum() > 10 * 10  # whole background patches moved
    _check_output(image, inst, out_img, out_inst, pasted)
    no_shuffle = RandInsMix(max_paste_ratio=0.2, shuffle_prob=0.0).set_random_state(0)
    out_img, out_inst, pasted = no_shuffle(image, label)
    kept = ~np.asarray(pasted)[0].astype(bool)
    np.testing.assert_array_equal(out_img[:, kept], image[:, kept])


def test_prob_zero_passes_image_through_and_still_labels_instances():
    image, inst, label = _sample()
    out = RandInsMixd(prob=0.0, pasted_key="p")({"image": image, "label": label})
    np.testing.assert_array_equal(out["image"], image)
    np.testing.assert_array_equal(out["label"][0], inst)  # components of the binary mask, in raster order
    assert out["p"].sum() == 0


def test_external_bank_single_channel_and_constraints():
    image, inst, _ = _sample(size=80, n=10, seed=5)
    grey = image[:1]
    bank = InstanceBank.from_pairs([synthetic_nuclei(80, 10, channels=1, seed=s) for s in (6, 7)])
    constraints = SSDConstraints(epsilon=1.5, rho=0.6, delta=10, gamma=20)
    t = RandInsMix(bank=bank, constraints=constraints, shuffle_prob=0.0).set_random_state(2)
    out_img, out_inst, pasted = t(grey, inst)
    assert out_img.shape == grey.shape
    _check_output(grey, inst, out_img, out_inst, pasted)
    for original, new, _, _ in t.last_records:
        c_o = ndimage.center_of_mass(inst == original)
        c_n = ndimage.center_of_mass(out_inst == new)
        assert 10 <= np.hypot(c_o[0] - c_n[0], c_o[1] - c_n[1]) <= 20


def test_bad_inputs_raise_clear_errors():
    image, inst, label = _sample(size=48, n=4)
    t = RandInsMix()
    with pytest.raises(ValueError, match="no nucleus instances"):
        t(image, np.zeros_like(inst))
    with pytest.raises(TypeError, match="non-integer"):
        t(image, inst.astype(np.float32) + 0.5)
    with pytest.raises(TypeError, match="dtype"):
        t(image.astype(bool), inst)
    with pytest.raises(ValueError, match="does not match"):
        t(image[:, :40], inst)
    with pytest.raises(ValueError, match="channels"):
        RandInsMix(bank=InstanceBank.from_pairs([(image, inst)]))(image[:1], inst)
    with pytest.raises(ValueError, match="bank is empty"):
        RandInsMix(bank=InstanceBank())
    with pytest.raises(TypeError, match="InstanceBank"):
        RandInsMix(bank=[1, 2])
    with pytest.raises(KeyError, match="label"):
        RandInsMixd()({"image": image})
    with pytest.raises(ValueError, match="value_range"):
        RandInsMix(harmonizer=SmoothGANGenerator(3, 4))
    with pytest.raises(ValueError, match="local path"):
        RandInsMix(harmonizer="http://example.org/g.pt")


def test_allow_missing_keys_and_allow_empty():
    image, inst, label = _sample(size=60, n=3)
    assert RandInsMixd(allow_missing_keys=True)({"image": image}) == {"image": image}
    out = RandInsMixd(allow_empty=True, patch_size=10, shuffle_fraction=1.0).set_random_state(0)(
        {"image": image, "label": np.zeros_like(label)}
    )
    assert out["label"].max() == 0
    assert not np.array_equal(out["image"], image)  # the background shuffle still ran


def test_harmonizer_changes_pasted_pixels_only(tmp_path):
    torch.manual_seed(0)
    generator = SmoothGANGenerator(3, 4, residual=False)
    config = {"channels": 3, "base_features": 4, "residual": False, "value_range": [0.0, 255.0]}
    ckpt = save_checkpoint(tmp_path / "g.pt", generator, PatchDiscriminator(3, 4), config, step=1)
    image, inst, label = _sample()
    plain = RandInsMixd(pasted_key="p").set_random_state(9)({"image": image, "label": label})
    smooth = RandInsMixd(pasted_key="p", harmonizer=ckpt).set_random_state(9)({"image": image, "label": label})
    np.testing.assert_array_equal(plain["label"], smooth["label"])
    pasted = smooth["p"][0].astype(bool)
    assert pasted.any()
    np.testing.assert_array_equal(smooth["image"][:, ~pasted], plain["image"][:, ~pasted])
    assert not np.array_equal(smooth["image"][:, pasted], plain["image"][:, pasted])


def test_works_inside_compose():
    image, inst, label = _sample()
    pipeline = Compose([RandInsMixd(prob=1.0)])
    pipeline.set_random_state(0)
    out = pipeline({"image": image, "label": label})
    assert out["label"].max() > inst.max()


def test_real_monuseg_crop(monuseg_dir):
    image, inst = read_monuseg_pair(*list_monuseg_pairs(monuseg_dir)[0])
    crop_img, crop_mask = image[:, 300:428, 300:428], (inst[300:428, 300:428] > 0).astype(np.uint8)
    t = RandInsMixd(pasted_key="p").set_random_state(0)
    out = t({"image": crop_img, "label": crop_mask})
    crop_inst = ndimage.label(crop_mask, structure=EIGHT)[0]
    assert crop_inst.max() >= 5
    assert out["p"].sum() > 0
    _check_output(crop_img, crop_inst, out["image"], out["label"], out["p"])
    # pasted nuclei are real MoNuSeg nuclei: dark (haematoxylin) compared with the tissue around them
    pasted = out["p"].astype(bool)
    background = out["label"] == 0
    assert out["image"][:, pasted].mean() < out["image"][:, background].mean()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_raise(bad):
    image, inst, _ = _sample(size=48, n=4)
    broken = image.astype(np.float32)
    broken[0, :6, :6] = bad
    with pytest.raises(ValueError, match="image contains NaN or infinite values"):
        RandInsMix()(broken, inst)
    with pytest.raises(ValueError, match="image contains NaN or infinite values"):
        InstanceBank().add(broken, inst)
    bank = InstanceBank.from_pairs([(image, inst)])
    with pytest.raises(ValueError, match="image contains NaN or infinite values"):
        RandInsMix(bank=bank)(broken, inst)


def test_a_bank_on_another_intensity_scale_is_an_error():
    image, inst, _ = _sample(size=64, n=8)
    assert 100 < image.max() <= 255  # uint8-like tiles
    unit = image.astype(np.float32) / 255.0
    bank_255 = InstanceBank.from_pairs([(image, inst)])
    assert bank_255.value_range == (float(image.min()), float(image.max()))
    named = (
        f"of the bank's images lie in [{image.min():.4g}, {image.max():.4g}] "
        f"but those of the image in [{unit.min():.4g},"
    )
    with pytest.raises(ValueError, match=re.escape(named)):
        RandInsMix(bank=bank_255, shuffle_prob=0.0)(unit, inst)
    with pytest.raises(ValueError, match="different scales"):
        bank_255.add(unit, inst)
    # the same scale passes, whatever the exact range of each image
    same = InstanceBank.from_pairs([(unit, inst)])
    out, _, pasted = RandInsMix(bank=same, shuffle_prob=0.0).set_random_state(0)(unit * 0.8 + 0.1, inst)
    assert np.asarray(pasted).any() and float(np.asarray(out).max()) <= 1.0


def test_dictionary_signature_is_written_out_and_draws_like_the_array_transform():
    import inspect

    params = inspect.signature(RandInsMixd).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert set(inspect.signature(RandInsMix).parameters) <= set(params)
    image, _, label = _sample(seed=4)
    for prob in (0.0, 1.0):
        out = RandInsMixd(prob=prob, pasted_key="p").set_random_state(3)({"image": image, "label": label})
        img, inst, pasted = RandInsMix(prob=prob).set_random_state(3)(image, label)
        np.testing.assert_array_equal(out["image"], img)
        np.testing.assert_array_equal(out["label"], inst)
        np.testing.assert_array_equal(out["p"], pasted)

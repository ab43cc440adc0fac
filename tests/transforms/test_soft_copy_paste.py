import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor
from scipy import ndimage

from monai_hsmix.core.soft_mask import soft_mask
from monai_hsmix.transforms.soft_copy_paste import (
    SKIP_NO_DONOR_LESION,
    SKIP_NO_VALID_PLACE,
    RandSoftCopyPaste,
    object_augmentation,
    RandSoftCopyPasteD,
    RandSoftCopyPasted,
    RandSoftCopyPasteDict,
    soft_copy_paste,
)


def _case(seed, shape=(32, 32), channels=2, lesion=True, offset=0.0):
    rng = np.random.RandomState(seed)
    img = (rng.rand(channels, *shape) + offset).astype(np.float32)
    lbl = np.zeros((1, *shape), dtype=np.int64)
    if lesion:
        centre = [s // 2 + rng.randint(-3, 4) for s in shape]
        box = tuple(slice(c - 2, c + 3) for c in centre)
        lbl[(0,) + box] = 2
        lbl[(0,) + tuple(c for c in centre)] = 1
    return img, lbl


ALL_AUGMENTS = dict(flip_prob=0.5, rotate_prob=0.5, scale_prob=0.5, gamma_prob=0.5, noise_prob=0.5, blur_prob=0.5)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    dims=st.sampled_from([2, 3]),
    mode=st.sampled_from(["soft", "gaussian", "hard"]),
    with_reference=st.booleans(),
)
def test_paste_invariants(seed, dims, mode, with_reference):
    shape = (28, 26) if dims == 2 else (14, 13, 12)
    img, lbl = _case(seed, shape)
    lbl[(0,) + (slice(0, 3),) * dims] = 2  # an existing lesion in the main image
    donor, donor_lbl = _case(seed + 1, shape, offset=3.0)
    reference = np.zeros(shape, dtype=bool)
    reference[tuple(slice(2, s - 2) for s in shape)] = True
    t = RandSoftCopyPaste(
        (1, 2),
        mode=mode,
        num_rings=2,
        sigma=1.0,
        s1=0.9,
        s2=1e-9,
        object_transform=object_augmentation(dims, **ALL_AUGMENTS),
    )
    t.set_random_state(seed)
    out, out_lbl = t(img, lbl, donor, donor_lbl, reference if with_reference else None)
    info = t.last_info
    assert info["pasted"] + info["skipped"] == 1
    assert out.dtype == img.dtype and out_lbl.dtype == lbl.dtype and out.shape == img.shape
    assert np.all(np.isfinite(out))
    pasted = (out_lbl != lbl)[0]
    if info["skipped"]:
        np.testing.assert_array_equal(out, img)
        np.testing.assert_array_equal(out_lbl, lbl)
        return
    assert pasted.any()
    # existing lesions are untouched (s2 ~ 0) and new labels are lesion values only
    assert np.all(out_lbl[lbl != 0] == lbl[lbl != 0])
    assert set(np.unique(out_lbl[0][pasted])) <= {1, 2}
    if with_reference:
        assert (pasted & reference).sum() / pasted.sum() > 0.9
    # outside the weight's support the image is bit-for-bit untouched
    radius = {"soft": 2, "gaussian": 4, "hard": 0}[mode]
    support = ndimage.binary_dilation(pasted, np.ones((3,) * dims), iterations=radius) if radius else pasted
    changed = (out != img).any(0)
    assert not np.any(changed & ~support)
    if with_reference:  # the donor's context never spills outside the reference anatomy
        assert not np.any(changed & ~reference & ~pasted)


@pytest.mark.parametrize("confine", [True, False])
def test_context_is_confined_to_the_reference(confine):
    img, lbl = np.zeros((1, 32, 32), np.float32), np.zeros((1, 32, 32), np.int64)
    donor, donor_lbl = np.full((1, 32, 32), 5.0, np.float32), np.zeros((1, 32, 32), np.int64)
    donor_lbl[0, 14:19, 14:19] = 1
    reference = np.zeros((32, 32), bool)
    reference[10:17, 10:17] = True  # barely larger than the 5x5 lesion: the rim must cross its edge
    t = RandSoftCopyPaste((1,), num_rings=3, s1=0.99, max_tries=500, confine_context=confine).set_random_state(0)
    out, out_lbl = t(img, lbl, donor, donor_lbl, reference)
    assert t.last_info["pasted"] == 1
    spill = (out[0] != 0) & ~reference & (out_lbl[0] == 0)
    assert spill.any() != confine


def test_blend_formula_in_place_without_object_transforms():
    """With zero translation the lesion lands where it was: out = S * donor + (1 - S) * main exactly."""
    img, lbl = _case(0, (30, 30), lesion=False)
    donor, donor_lbl = _case(1, (30, 30), offset=5.0)
    out, out_lbl, info = soft_copy_paste(
        img, lbl, donor, donor_lbl, label_values=(1, 2), alpha=0.5, num_rings=3, max_shift=0, seed=0
    )
    assert info["pasted"] == 1
    s = soft_mask(donor_lbl[0] > 0, 0.5, 3)
    np.testing.assert_allclose(out, s * donor + (1 - s) * img, rtol=1e-6)
    np.testing.assert_array_equal(out_lbl, donor_lbl)


def test_hard_mode_pastes_donor_values_on_the_lesion_only():
    img, lbl = _case(2, (24, 24), lesion=False)
    donor, donor_lbl = _case(3, (24, 24), offset=5.0)
    out, out_lbl, _ = soft_copy_paste(img, lbl, donor, donor_lbl, label_values=(1, 2), mode="hard", max_shift=0)
    lesion = donor_lbl[0] > 0
    np.testing.assert_array_equal(out[:, lesion], donor[:, lesion])
    np.testing.assert_array_equal(out[:, ~lesion], img[:, ~lesion])


def test_flip_pastes_the_mirrored_lesion():
    img, lbl = _case(4, (24, 24), lesion=False)
    donor, _ = _case(5, (24, 24), lesion=False)
    donor_lbl = np.zeros((1, 24, 24), dtype=np.int64)
    donor_lbl[0, 10:13, 10] = 1
    donor_lbl[0, 10, 11:15] = 1  # an L shape: flips are visible
    t = RandSoftCopyPaste((1,), object_transform=object_augmentation(2, flip_prob=1.0), max_shift=0, mode="hard")
    _, out_lbl = t(img, lbl, donor, donor_lbl)
    got = np.argwhere(out_lbl[0] > 0)
    want = np.argwhere(donor_lbl[0, ::-1, ::-1] > 0)
    np.testing.assert_array_equal(got - got.min(0), want - want.min(0))


def test_seeded_determinism():
    img, lbl = _case(6, (16, 15, 14))
    donor, donor_lbl = _case(7, (16, 15, 14), offset=2.0)

    def run(seed):
        t = RandSoftCopyPaste((1, 2), s2=0.5, object_transform=object_augmentation(3, **ALL_AUGMENTS))
        t.set_random_state(seed)
        return [t(img, lbl, donor, donor_lbl) for _ in range(3)]

    a, b, c = run(11), run(11), run(12)
    for (ia, la), (ib, lb) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
    assert any(not np.array_equal(ia, ic) for (ia, _), (ic, _) in zip(a, c))


def test_no_donor_lesion_and_absent_values_are_counted_skips():
    img, lbl = _case(8)
    donor, donor_lbl = _case(9, lesion=False)
    t = RandSoftCopyPaste((1, 2), num_lesions=2)
    out, out_lbl = t(img, lbl, donor, donor_lbl)
    np.testing.assert_array_equal(out, img)
    assert t.num_skipped == 2 and t.skip_reasons[SKIP_NO_DONOR_LESION] == 2
    donor, donor_lbl = _case(9)
    t2 = RandSoftCopyPaste((7,))  # a value the donor does not have
    t2(img, lbl, donor, donor_lbl)
    assert t2.num_pasted == 0 and t2.last_info["skip_reasons"] == [SKIP_NO_DONOR_LESION]


def test_several_lesions_do_not_overlap_each_other():
    img, lbl = _case(20, (16, 16), lesion=False)
    donor, donor_lbl = _case(21, (16, 16))
    for seed in range(5):  # a crowded image: later pastes must see the earlier ones
        t = RandSoftCopyPaste((1, 2), num_lesions=5, s2=1e-9, mode="hard").set_random_state(seed)
        _, out_lbl = t(img, lbl, donor, donor_lbl)
        assert t.num_pasted + t.num_skipped == 5 and t.num_pasted >= 2
        # each paste keeps the donor lesion's 25 voxels: none overwrote an earlier one
        assert (out_lbl > 0).sum() == 25 * t.num_pasted


def test_non_integer_label_value_never_matches_an_integer_label():
    img, lbl = _case(22)
    donor, donor_lbl = _case(23)
    t = RandSoftCopyPaste((1.5,))
    out, _ = t(img, lbl, donor, donor_lbl)
    assert t.skip_reasons[SKIP_NO_DONOR_LESION] == 1


def test_no_valid_place_is_counted_and_leaves_the_image():
    img, lbl = _case(10)
    donor, donor_lbl = _case(11)
    reference = np.zeros((32, 32))
    reference[0, 0] = 1
    t = RandSoftCopyPaste((1, 2), s1=0.5, max_tries=10)
    out, out_lbl = t(img, lbl, donor, donor_lbl, reference)
    assert t.skip_reasons[SKIP_NO_VALID_PLACE] == 1 and t.num_pasted == 0
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(out_lbl, lbl)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda img, lbl, d, dl: (img, lbl[:, :-1], d, dl), "label"),
        (lambda img, lbl, d, dl: (img, lbl, d[:1], dl), "channels"),
        (lambda img, lbl, d, dl: (img, lbl, d, dl[:, 1:]), "donor_label"),
        (lambda img, lbl, d, dl: (img[0], lbl, d[0], dl), "C, H, W"),
    ],
)
def test_shape_mismatch_raises(call, match):
    img, lbl = _case(12)
    donor, donor_lbl = _case(13)
    with pytest.raises(ValueError, match=match):
        RandSoftCopyPaste((1,))(*call(img, lbl, donor, donor_lbl))
    with pytest.raises(ValueError, match="reference"):
        RandSoftCopyPaste((1,))(img, lbl, donor, donor_lbl, np.ones((5, 5)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"label_values": ()},
        {"mode": "mix"},
        {"alpha": 1.5},
        {"prob": 2.0},
        {"s1": -0.1},
        {"max_tries": 0},
        {"max_shift": -1},
    ],
)
def test_bad_configuration_raises(kwargs):
    with pytest.raises(ValueError):
        RandSoftCopyPaste(**kwargs)


# these were RandSoftCopyPaste arguments before its object augmentation became object_transform
@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale_range": (0.0, 1.0)},
        {"gamma_range": (2.0, 1.0)},
        {"noise_std": -1.0},
        {"rotate_range": (0.1, 0.2)},
    ],
)
def test_bad_object_augmentation_raises(kwargs):
    with pytest.raises(ValueError):
        object_augmentation(3, **kwargs)


def test_metatensor_and_torch_round_trip_and_prob_zero():
    img, lbl = _case(14)
    donor, donor_lbl = _case(15)
    affine = torch.diag(torch.tensor([2.0, 2.0, 1.0]))
    mimg = MetaTensor(torch.as_tensor(img), affine=affine, meta={"filename_or_obj": "main.nii.gz"})
    out, out_lbl = RandSoftCopyPaste((1, 2), s2=0.5)(mimg, torch.as_tensor(lbl), donor, donor_lbl)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "main.nii.gz"
    assert torch.equal(out.affine, affine.double()) or torch.equal(out.affine, affine)
    assert isinstance(out_lbl, torch.Tensor) and not torch.equal(out_lbl, torch.as_tensor(lbl))
    t = RandSoftCopyPaste((1, 2), prob=0.0)
    out, _ = t(img, lbl, donor, donor_lbl)
    assert out is img and t.last_info["applied"] is False


def _dict_case(seed, lesion=True):
    img, lbl = _case(seed, (20, 20), channels=3, lesion=lesion, offset=seed)
    return {"a": img[:2], "b": img[2:], "label": lbl, "brain": np.ones((1, 20, 20))}


def test_dictionary_transform_with_bank_key_and_batch():
    assert RandSoftCopyPasteD is RandSoftCopyPasted and RandSoftCopyPasteDict is RandSoftCopyPasted
    main, donor = _dict_case(0), _dict_case(1)
    t = RandSoftCopyPasted(["a", "b"], "label", reference_key="brain", donor_bank=[donor], s2=0.5, mode="hard")
    t.set_random_state(0)
    out = t(main)
    assert out["softcp"] == {"applied": True, "pasted": 1, "skipped": 0, "skip_reason": ""}
    pasted = (out["label"] != main["label"])[0]
    # both image keys take the donor's values with one shared (hard) weight
    assert np.all(out["a"][:, pasted] >= 1.0) and np.all(out["b"][:, pasted] >= 1.0)
    assert np.all(out["a"][:, ~pasted] == main["a"][:, ~pasted])
    assert t.num_pasted == 1 and main["a"] is not out["a"]

    with_key = dict(main, donor=donor)
    out = RandSoftCopyPasted(["a", "b"], "label", donor_key="donor", s2=0.5)(with_key)
    assert out["softcp"]["pasted"] == 1

    batch = [_dict_case(i) for i in range(3)]
    outs = RandSoftCopyPasted(["a", "b"], "label", s2=0.5).set_random_state(1)(batch)
    assert len(outs) == 3 and all(o["softcp"]["pasted"] == 1 for o in outs)
    for b, o in zip(batch, outs):
        assert not np.array_equal(b["label"], o["label"])


def test_dictionary_transform_errors_and_skips():
    main = _dict_case(0)
    with pytest.raises(ValueError, match="no donor"):
        RandSoftCopyPasted(["a"], "label")(main)
    with pytest.raises(ValueError, match="at least 2"):
        RandSoftCopyPasted(["a"], "label")([main])
    with pytest.raises(ValueError, match="empty"):
        RandSoftCopyPasted(["a"], "label", donor_bank=[])
    donor_without_b = {k: v for k, v in _dict_case(1).items() if k != "b"}
    with pytest.raises(KeyError, match="donor lacks"):
        RandSoftCopyPasted(["a", "b"], "label", donor_bank=[donor_without_b])(main)
    with pytest.raises(KeyError, match="reference_key"):
        RandSoftCopyPasted(["a"], "label", reference_key="kidney", donor_bank=[_dict_case(1)])(main)
    t = RandSoftCopyPasted(["a", "b"], "label", donor_bank=[_dict_case(1, lesion=False)])
    out = t(main)
    assert out["softcp"]["skip_reason"] == SKIP_NO_DONOR_LESION and t.num_skipped == 1
    np.testing.assert_array_equal(out["a"], main["a"])
    out = RandSoftCopyPasted(["a", "c"], "label", donor_bank=[_dict_case(1)], allow_missing_keys=True, s2=0.5)(main)
    assert out["softcp"]["pasted"] == 1


def test_dictionary_transform_is_seeded_and_works_as_a_collate_step():
    from monai.data import DataLoader, Dataset, list_data_collate
    from monai.transforms import Compose

    batch = [_dict_case(i) for i in range(4)]
    a = RandSoftCopyPasted(
        ["a", "b"], "label", s2=0.5, object_transform=object_augmentation(2, flip_prob=0.5)
    ).set_random_state(5)(batch)
    b = RandSoftCopyPasted(
        ["a", "b"], "label", s2=0.5, object_transform=object_augmentation(2, flip_prob=0.5)
    ).set_random_state(5)(batch)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["a"], y["a"])
        np.testing.assert_array_equal(x["label"], y["label"])

    mix = RandSoftCopyPasted(["a", "b"], "label", s2=0.5).set_random_state(0)
    loader = DataLoader(Dataset(batch), batch_size=4, collate_fn=Compose([mix, list_data_collate], map_items=False))
    collated = next(iter(loader))
    assert collated["a"].shape == (4, 2, 20, 20) and collated["softcp"]["pasted"].tolist() == [1, 1, 1, 1]
    assert mix.num_pasted == 4


@pytest.mark.parametrize("where", ["img", "donor_img", "label", "donor_label"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_raise_naming_the_input(where, bad):
    img, lbl = _case(12)
    donor, donor_lbl = _case(13)
    args = {
        "img": img,
        "label": lbl.astype(np.float32),
        "donor_img": donor.copy(),
        "donor_label": donor_lbl.astype(np.float32),
    }
    args[where][..., 14:18, 14:18] = bad  # a block over the donor's lesion, as in a corrupted scan
    paster = RandSoftCopyPaste((1, 2), s2=1.0).set_random_state(0)
    with pytest.raises(ValueError, match=f"^{where} contains NaN or infinite values"):
        paster(**args)


def test_dictionary_transform_rejects_a_nan_donor():
    img, lbl = _case(12)
    donor, donor_lbl = _case(13)
    donor[0, 15, 15] = np.nan
    t = RandSoftCopyPasted(["image"], "label", donor_bank=[{"image": donor, "label": donor_lbl}], s2=1.0)
    with pytest.raises(ValueError, match="donor_img contains NaN"):
        t({"image": img, "label": lbl})


# ---- object_transform: the per-object augmentation as a MONAI Compose --------------------------
def _object(shape=(15, 15)):
    mask = torch.zeros(1, *shape)
    mask[0, 3:12, 4] = 1
    mask[0, 11, 4:11] = 1  # an L: flips and rotations are visible
    image = torch.arange(float(np.prod(shape))).reshape(1, *shape) / 100.0
    return {"image": image, "label": 2 * mask, "mask": mask, "valid": torch.ones(1, *shape)}


def _run(transform, obj):
    return {k: torch.as_tensor(v) for k, v in transform(dict(obj)).items()}


def test_object_augmentation_flips_rotates_and_zooms_across_seeds():
    obj = _object()
    mask = obj["mask"][0]
    flipped = rotated = zoomed = False
    for seed in range(24):
        out = _run(object_augmentation(2, flip_prob=0.5, rotate_prob=0.5, scale_prob=0.5).set_random_state(seed), obj)
        m = out["mask"][0]
        # masks stay binary (nearest neighbour) and the label keeps its value on the mask only
        assert set(out["mask"].unique().tolist()) <= {0.0, 1.0} and set(out["valid"].unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(out["label"], 2 * out["mask"])
        # a rotation leaves corners the object did not cover (valid 0); a zoom alone resizes the patch
        rotated |= bool((out["valid"] == 0).any())
        zoomed |= m.shape != mask.shape and bool((out["valid"] == 1).all())
        flips = ((0,), (1,), (0, 1))
        flipped |= m.shape == mask.shape and any(torch.equal(m, torch.flip(mask, axes)) for axes in flips)
    assert flipped and rotated and zoomed


@pytest.mark.parametrize(
    "kwargs, check",
    [
        (dict(flip_prob=1.0), lambda m, o: torch.equal(m, torch.flip(o, (0, 1)))),
        (dict(scale_prob=1.0, scale_range=(2.0, 2.0)), lambda m, o: m.shape == (30, 30) and m.sum() == 4 * o.sum()),
        (dict(rotate_prob=1.0, rotate_range=(0.5,)), lambda m, o: m.shape[0] > 15 and not torch.equal(m[:15, :15], o)),
    ],
)
def test_each_geometric_part_moves_image_and_masks_together(kwargs, check):
    obj = _object()
    out = _run(object_augmentation(2, **kwargs).set_random_state(0), obj)
    assert check(out["mask"][0], obj["mask"][0])
    assert out["image"].shape == out["mask"].shape == out["valid"].shape


def test_object_augmentation_intensity_parts_touch_the_image_only():
    obj = _object()
    out = _run(object_augmentation(2, gamma_prob=1.0, noise_prob=1.0, blur_prob=1.0).set_random_state(0), obj)
    assert not torch.equal(out["image"], obj["image"])
    for key in ("label", "mask", "valid"):
        assert torch.equal(out[key], obj[key])


def test_set_random_state_seeds_the_object_transform():
    img, lbl = _case(30, (24, 24), lesion=False)
    donor, donor_lbl = _case(31, (24, 24), offset=5.0)

    def run(pre_seed):
        # the Compose was seeded differently before: the paster's seed must decide its draws
        augment = object_augmentation(2, flip_prob=0.5, rotate_prob=0.5, scale_prob=0.5, noise_prob=0.5)
        augment.set_random_state(pre_seed)
        t = RandSoftCopyPaste((1, 2), s2=0.5, object_transform=augment).set_random_state(7)
        return [t(img, lbl, donor, donor_lbl) for _ in range(4)]

    for (ia, la), (ib, lb) in zip(run(0), run(1)):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)


def test_a_user_object_transform_is_called_and_none_leaves_objects_unchanged():
    img, lbl = _case(32, (24, 24), lesion=False)
    donor, donor_lbl = _case(33, (24, 24), offset=5.0)
    lesion = donor_lbl[0] > 0
    seen = []

    def brighter(d):
        seen.append(sorted(d))
        return dict(d, image=d["image"] * 2)

    out, out_lbl, _ = soft_copy_paste(
        img, lbl, donor, donor_lbl, label_values=(1, 2), mode="hard", max_shift=0, object_transform=brighter
    )
    assert seen == [["image", "label", "mask", "valid"]]
    np.testing.assert_allclose(out[:, lesion], 2 * donor[:, lesion], rtol=1e-6)
    out, out_lbl, _ = soft_copy_paste(
        img, lbl, donor, donor_lbl, label_values=(1, 2), mode="hard", max_shift=0, object_transform=None
    )
    np.testing.assert_array_equal(out[:, lesion], donor[:, lesion])
    np.testing.assert_array_equal(out_lbl, donor_lbl)


def test_object_transform_results_are_checked():
    img, lbl = _case(34, (24, 24), lesion=False)
    donor, donor_lbl = _case(35, (24, 24), offset=5.0)
    with pytest.raises(KeyError, match="valid"):
        soft_copy_paste(img, lbl, donor, donor_lbl, object_transform=lambda d: {"image": d["image"]})
    with pytest.raises(ValueError, match="one 2D patch size"):
        soft_copy_paste(img, lbl, donor, donor_lbl, object_transform=lambda d: dict(d, image=d["image"][:, 1:]))
    with pytest.raises(TypeError, match="object_transform"):
        RandSoftCopyPaste(object_transform="flip")


def test_context_margin_follows_the_rotations_and_shrinking_of_the_compose():
    from monai_hsmix.transforms.soft_copy_paste import _context_growth

    assert _context_growth(None, 3) == 1.0
    assert _context_growth(object_augmentation(3, flip_prob=1.0, noise_prob=1.0), 3) == 1.0
    assert _context_growth(object_augmentation(3, rotate_prob=0.5), 3) == pytest.approx(3**0.5)
    assert _context_growth(object_augmentation(2, scale_prob=0.5, scale_range=(0.5, 1.5)), 2) == pytest.approx(2.0)
    assert _context_growth(lambda d: d, 2) == pytest.approx(2**0.5)  # unknown: as a rotation


def test_dictionary_signature_is_written_out_and_missing_keys_as_monai():
    import inspect

    params = inspect.signature(RandSoftCopyPasted).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert set(inspect.signature(RandSoftCopyPaste).parameters) <= set(params)
    # none of the keys present: nothing to paste into, so no donor is needed (it raised "no donor")
    data = {"other": np.zeros(3)}
    out = RandSoftCopyPasted(["a"], "label", allow_missing_keys=True)(data)
    assert out["other"] is data["other"] and out["softcp"]["applied"] is False

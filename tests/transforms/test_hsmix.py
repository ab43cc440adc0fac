import ast
import inspect
import logging
import pydoc
import textwrap

import numpy as np
import pytest
import torch
from monai.data import MetaTensor, decollate_batch, list_data_collate, set_track_meta

from monai_hsmix import HSMIX_PRESETS, RandHSMix, RandHSMixd, RandHSMixD, RandHSMixDict
from monai_hsmix.backends import available_backends
from monai_hsmix.data import cardiac_batch, cardiac_volume


@pytest.fixture(params=available_backends())
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def batch():
    images, labels = cardiac_batch(4, 48, seed=3)
    return torch.from_numpy(images), torch.from_numpy(labels)


def make(backend, **kw):
    opts = dict(num_classes=4, n_segments=(20, 40), compactness=0.1, p=0.3, backend=backend)
    opts.update(kw)
    return RandHSMix(**opts)


@pytest.mark.parametrize(
    "mode, include_original, factor",
    [
        ("both", False, 2),
        ("hard", False, 1),
        ("soft", False, 1),
        ("random", False, 1),
        ("both", True, 3),
        ("hard", True, 2),
    ],
)
def test_output_sizes_per_mode(batch, backend, mode, include_original, factor):
    images, labels = batch
    x, y = make(backend, mode=mode, include_original=include_original)(images, labels)
    assert x.shape == (4 * factor,) + images.shape[1:]
    assert y.shape == (4 * factor, 4) + images.shape[2:]
    assert torch.allclose(y.sum(1), torch.ones_like(y[:, 0]), atol=1e-5)
    if include_original:
        assert torch.equal(x[:4], images)


def test_hard_then_soft_order_and_pixel_sources(batch, backend):
    images, labels = batch
    mix = make(backend)
    mix.set_random_state(5)
    x, y, res = mix(images, labels, return_masks=True)
    partner = res.partner
    hard = x[:4]
    is_x1 = hard == images
    is_x2 = hard == images[partner]
    assert bool((is_x1 | is_x2).all())
    assert 0 < float(res.hard_mask.mean()) < 1
    assert torch.allclose(x[4:], images * (1 - res.soft_mask[:, None]) + images[partner] * res.soft_mask[:, None])


def test_same_seed_same_output_and_different_seed_differs(batch, backend):
    images, labels = batch
    a = make(backend).set_random_state(11)(images, labels)
    b = make(backend).set_random_state(11)(images, labels)
    c = make(backend).set_random_state(12)(images, labels)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_prob_zero_returns_images_unchanged_and_labels_as_channels(batch, backend):
    images, labels = batch
    x, y = make(backend, prob=0.0)(images, labels)
    assert x is images
    assert y.shape == (4, 4) + images.shape[2:] and torch.equal(y.argmax(1), labels[:, 0])


def test_batch_of_one_is_returned_unmixed_and_logged_once(batch, backend, caplog):
    images, labels = batch
    mix = make(backend)
    with caplog.at_level(logging.WARNING, logger="monai_hsmix"):
        x1, _ = mix(images[:1], labels[:1])
        mix(images[:1], labels[:1])
    assert x1 is not None and torch.equal(x1, images[:1])
    assert sum("at least 2 samples" in r.message for r in caplog.records) == 1


def test_any_batch_size_works(backend):
    images, labels = cardiac_batch(3, 32, seed=1)
    x, y = make(backend)(images, labels)
    assert isinstance(x, np.ndarray) and x.shape == (6, 1, 32, 32) and x.dtype == np.float32
    assert isinstance(y, np.ndarray) and y.shape == (6, 4, 32, 32)


def test_metatensor_batch_keeps_per_sample_meta(backend):
    images, labels = cardiac_batch(3, 32, seed=2)
    samples = [
        {
            "image": MetaTensor(torch.from_numpy(images[i]), meta={"filename_or_obj": f"case{i}.nii.gz"}),
            "label": MetaTensor(torch.from_numpy(labels[i]), meta={"filename_or_obj": f"label{i}.nii.gz"}),
        }
        for i in range(3)
    ]
    collated = list_data_collate(samples)
    mix = RandHSMixd(["image", "label"], "label", num_classes=4, n_segments=(10, 20), compactness=0.1, backend=backend)
    out = mix(collated)
    assert isinstance(out["image"], MetaTensor) and isinstance(out["label"], MetaTensor)
    names = [s.meta["filename_or_obj"] for s in decollate_batch(out["image"])]
    assert names == [f"case{i}.nii.gz" for i in range(3)] * 2
    assert out["image"].affine.shape == (6, 4, 4)


def test_dictionary_transform_mixes_every_key_with_the_same_masks(batch, backend):
    images, labels = batch
    mix = RandHSMixd(
        ["image", "image2", "label"],
        "label",
        num_classes=4,
        n_segments=(20, 30),
        compactness=0.1,
        backend=backend,
        return_masks=True,
    )
    out = mix({"image": images, "image2": images * 3 + 1, "label": labels, "other": "kept"})
    assert torch.allclose(out["image2"], out["image"] * 3 + 1, atol=1e-5)
    assert out["other"] == "kept"
    for key in ("hsmix_hard_mask", "hsmix_soft_mask", "hsmix_segments", "hsmix_mixed_segments"):
        assert out[key].shape == (4, 1) + images.shape[2:]
    assert out["hsmix_partner"].shape == (4,)
    assert RandHSMixD is RandHSMixd and RandHSMixDict is RandHSMixd


def test_dictionary_missing_keys(batch, backend):
    images, _ = batch
    mix = RandHSMixd(
        ["image", "label"], "label", num_classes=4, n_segments=10, backend=backend, allow_missing_keys=True
    )
    out = mix({"image": images})
    assert out["image"].shape[0] == 8
    with pytest.raises(KeyError):
        RandHSMixd(["image", "label"], "label", num_classes=4, backend=backend)({"image": images})


def test_hard_only_never_computes_saliency(batch, backend):
    images, labels = batch
    mix = make(backend, mode="hard")

    def forbidden(_):
        raise AssertionError("saliency computed for hard-only mixing")

    mix._saliency_fn = forbidden
    mix(images, labels)


def test_ablation_switches(batch, backend):
    images, labels = batch
    _, _, grid = make(backend, hard_region="grid", mode="hard").set_random_state(0)(images, labels, return_masks=True)
    seg = grid.partner_segments[0]
    cell = seg == seg[0, 0]
    rows, cols = cell.nonzero().T
    assert bool(cell[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all())  # square cells
    _, _, beta = make(backend, soft_ratio="beta", mode="soft").set_random_state(0)(images, labels, return_masks=True)
    per_image = beta.soft_mask.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))
    assert per_image[:, 0].unique().numel() > 1
    _, _, pix = make(backend, soft_ratio="pixel", mode="soft").set_random_state(0)(images, labels, return_masks=True)
    sup_mix = make(backend, soft_ratio="superpixel", mode="soft").set_random_state(0)
    _, _, sup = sup_mix(images, labels, return_masks=True)
    assert pix.soft_mask.unique().numel() > sup.soft_mask.unique().numel()


def test_multilabel_channels_are_mixed_as_given(batch, backend):
    images, labels = batch
    multi = torch.cat([(labels > 0), (labels > 1), (labels > 2)], 1).float()  # nested, overlapping channels
    _, y = make(backend, num_classes=None, multilabel=True)(images, multi)
    assert y.shape == (8, 3) + images.shape[2:]
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_three_dimensional_volumes(backend):
    vols = [cardiac_volume(24, 8, seed=s) for s in range(2)]
    images = torch.from_numpy(np.stack([v[0] for v in vols]))
    labels = torch.from_numpy(np.stack([v[1] for v in vols]))
    x, y, res = make(backend, n_segments=(10, 20), spacing=(1.0, 1.0, 2.0))(images, labels, return_masks=True)
    assert x.shape == (4, 1, 24, 24, 8) and y.shape == (4, 4, 24, 24, 8)
    assert torch.isfinite(x).all() and torch.isfinite(res.soft_mask).all()


def test_constant_and_integer_images(backend):
    const = torch.full((2, 1, 24, 24), 7, dtype=torch.uint8)
    labels = torch.zeros(2, 1, 24, 24, dtype=torch.long)
    x, y = make(backend, n_segments=8)(const, labels)
    assert x.dtype == torch.float32 and torch.all(x == 7)
    assert torch.isfinite(y).all()


def test_presets_match_the_paper():
    expected = {
        "glas": ((200, 400), 10, 0.3),
        "monuseg": ((300, 500), 10, 0.3),
        "isic2017": ((30, 80), 10, 0.3),
        "brats2018": ((50, 150), 0.003, 0.3),
        "synapse": ((200, 400), 0.1, 0.3),
    }
    assert {k: (v.n_segments, v.compactness, v.p) for k, v in HSMIX_PRESETS.items()} == expected
    mix = RandHSMixd.from_preset("synapse", ["image", "label"], "label", num_classes=9, p=0.5)
    assert mix.mixer.n_segments == (200, 400) and mix.mixer.compactness == 0.1 and mix.mixer.p == 0.5
    assert RandHSMix.from_preset("BraTS2018", multilabel=True).compactness == 0.003
    with pytest.raises(ValueError, match="unknown HSMix preset"):
        RandHSMix.from_preset("kits19")
    for missing in (None, 3):  # not a name: the same error, listing the presets
        with pytest.raises(ValueError, match="known presets: .*'brats2018'.*'synapse'"):
            RandHSMixd.from_preset(missing, keys=["image"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_segments": (50, 10)}, "lmin <= lmax"),
        ({"n_segments": 0}, "lmin <= lmax"),
        ({"n_segments": (1, 2, 3)}, "pair"),
        ({"p": 1.5}, "p must be"),
        ({"p": -0.1}, "p must be"),
        ({"prob": 2}, "prob"),
        ({"compactness": 0}, "compactness"),
        ({"mode": "mix"}, "mode"),
        ({"hard_region": "hex"}, "hard_region"),
        ({"soft_ratio": "x"}, "soft_ratio"),
        ({"backend": "cuda-magic"}, "unknown backend"),
        ({"beta_alpha": 0}, "beta_alpha"),
        ({"num_classes": 0}, "num_classes"),
        ({"spacing": (1.0, -1.0)}, "spacing"),
        ({"max_num_iter": 0}, "max_num_iter"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandHSMix(**kwargs)


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (torch.rand(2, 1, 16, 16), torch.zeros(2, 1, 16, 15), "does not match"),
        (torch.rand(2, 1, 16, 16), torch.zeros(3, 1, 16, 16), "does not match"),
        (torch.rand(2, 1, 16, 16), torch.full((2, 1, 16, 16), 4), r"\[0, 3\]"),
        (torch.rand(1, 16, 16), torch.zeros(1, 16, 16), "must be a batch"),
        (torch.rand(2, 1, 4, 16, 16, 3), torch.zeros(2, 1, 4, 16, 16, 3), "must be a batch"),
        (torch.full((2, 1, 16, 16), float("nan")), torch.zeros(2, 1, 16, 16), "NaN"),
        (torch.full((2, 1, 16, 16), float("inf")), torch.zeros(2, 1, 16, 16), "infinite"),
    ],
)
def test_bad_batches_raise(images, labels, message):
    with pytest.raises(ValueError, match=message):
        RandHSMix(num_classes=4, n_segments=4, backend="reference")(images, labels)


def test_index_labels_without_num_classes_raise(batch):
    images, labels = batch
    with pytest.raises(ValueError, match="num_classes is required"):
        RandHSMix(n_segments=4, backend="reference")(images, labels)
    with pytest.raises(ValueError, match="label_keys"):
        RandHSMixd(["image"], "label")
    with pytest.raises(TypeError, match="numpy array, torch tensor"):
        RandHSMix(num_classes=4)([[0.0]], None)


def test_pasted_area_follows_p():
    images, labels = cardiac_batch(8, 64, seed=7)
    areas = []
    for p in (0.1, 0.5):
        mix = RandHSMix(num_classes=4, n_segments=(60, 80), compactness=0.1, p=p, mode="hard", backend="reference")
        mix.set_random_state(0)
        areas.append(float(np.mean([mix(images, labels, return_masks=True)[2].hard_mask.mean() for _ in range(3)])))
    assert abs(areas[0] - 0.1) < 0.06 and abs(areas[1] - 0.5) < 0.1


@pytest.mark.parametrize("mode, include_original", [("both", False), ("both", True), ("soft", False)])
def test_index_labels_mix_like_their_one_hot_channels(batch, mode, include_original):
    # index labels are mixed by scatter, channel labels by blending: both must give the same soft labels
    images, labels = batch
    one_hot = torch.nn.functional.one_hot(labels[:, 0].long(), 4).movedim(-1, 1).float()
    x1, y1 = make("torch", mode=mode, include_original=include_original).set_random_state(2)(images, labels)
    x2, y2 = make("torch", mode=mode, include_original=include_original).set_random_state(2)(images, one_hot)
    assert torch.equal(x1, x2)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-6)
    d = RandHSMixd(
        keys=("img", "seg"),
        label_keys="seg",
        num_classes=4,
        n_segments=(20, 40),
        compactness=0.1,
        mode=mode,
        include_original=include_original,
    ).set_random_state(2)
    out = d({"img": images, "seg": labels})
    torch.testing.assert_close(out["seg"], y2, rtol=0, atol=1e-6)


def test_masks_are_returned_only_when_asked(batch):
    images, labels = batch
    *_, res = make("torch").set_random_state(1)(images, labels, return_masks=True)
    assert res.segments is not None and res.mixed_segments is not None
    d = RandHSMixd(keys=("img", "seg"), label_keys="seg", num_classes=4, n_segments=(20, 40), compactness=0.1)
    assert not any(k.startswith("hsmix_") for k in d({"img": images, "seg": labels}))


def test_output_types_and_keys_do_not_depend_on_the_draw(batch):
    images, labels = batch
    uint8_images = (images * 255).round().to(torch.uint8)
    mix = RandHSMix(num_classes=4, n_segments=(10, 20), compactness=0.1, prob=0.5).set_random_state(0)
    dtypes = {mix(uint8_images, labels)[0].dtype for _ in range(8)}
    assert dtypes == {torch.float32}  # skipped batches used to come back uint8
    mixd = RandHSMixd(
        ["image", "label"],
        "label",
        num_classes=4,
        n_segments=(10, 20),
        compactness=0.1,
        prob=0.5,
        mode="random",
        return_masks=True,
    ).set_random_state(0)
    outcomes = set()
    for _ in range(10):
        out = mixd({"image": images.half(), "label": labels, "other": "kept"})
        outcomes.add((tuple(sorted(out)), out["image"].dtype, out["image"].shape[0]))
        assert out["hsmix_hard_mask"].shape == out["hsmix_soft_mask"].shape == (4, 1) + images.shape[2:]
    assert len({o[:2] for o in outcomes}) == 1  # same keys and dtype whether mixed or not
    assert {o[2] for o in outcomes} == {4}  # mode="random": B samples, mixed or not


def test_unmixed_batch_reports_identity_masks(batch):
    images, labels = batch
    x, y, masks = RandHSMix(num_classes=4, prob=0.0)(images, labels, return_masks=True)
    assert torch.equal(masks.partner, torch.arange(4)) and float(masks.hard_mask.abs().sum()) == 0.0
    assert float(masks.soft_mask.abs().sum()) == 0.0 and torch.equal(x, images)


def test_integer_key_not_declared_a_label_is_an_error(batch):
    images, labels = batch
    with pytest.raises(ValueError, match="label_keys"):
        RandHSMixd(["image", "label"], num_classes=4)({"image": images, "label": labels})
    with pytest.raises(ValueError, match="cast it to float"):
        RandHSMixd(["image"], num_classes=4)({"image": (images * 255).to(torch.uint8)})


def test_presets_carry_the_feature_space_their_compactness_means():
    assert {name: p.slic_space for name, p in HSMIX_PRESETS.items()} == {
        "glas": "lab",
        "monuseg": "lab",
        "isic2017": "lab",
        "brats2018": "intensity",
        "synapse": "intensity",
    }
    assert RandHSMix.from_preset("monuseg").slic_space == "lab"
    assert RandHSMixd.from_preset("synapse", keys=["image"]).mixer.slic_space == "intensity"
    with pytest.raises(ValueError, match="3 channels"):
        RandHSMix.from_preset("glas")(torch.rand(2, 4, 32, 32))
    with pytest.raises(ValueError, match="slic_space"):
        RandHSMix(slic_space="rgb")


@pytest.mark.parametrize("size", [48, 96])
def test_grid_region_is_the_papers_7x7_grid_whatever_the_size(size):
    images = torch.rand(2, 1, size, size)
    grid = RandHSMix(n_segments=(300, 400), hard_region="grid", mode="hard").set_random_state(0)
    _, masks = grid(images, return_masks=True)
    assert torch.unique(masks.segments[0]).numel() == 49
    _, masks = RandHSMix(hard_region="grid", grid_size=3, mode="hard").set_random_state(0)(images, return_masks=True)
    assert torch.unique(masks.segments[0]).numel() == 9
    with pytest.raises(ValueError, match="grid_size"):
        RandHSMix(hard_region="grid", grid_size=0)


def test_float16_volume_with_supervoxels_larger_than_float16_counts():
    # segments of about 100,000 voxels: a float16 count overflowed and Ms became NaN
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 1, 64, 64, 64, generator=g).half()
    out = RandHSMix(n_segments=(2, 4), mode="soft").set_random_state(0)(images)
    assert out.dtype == torch.float16 and bool(torch.isfinite(out).all())


def test_images_that_require_grad_are_mixed_like_monai_cutmix_mixes_them():
    # MONAI's CutMix blends with differentiable operations: the output keeps the graph and gradients
    # reach the input. HSMix does the same (the masks come from the detached images)
    from monai.transforms import CutMix

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 2, 24, 24, generator=g)
    assert CutMix(batch_size=4)(x.clone().requires_grad_(True)).requires_grad
    for mode in ("hard", "soft", "both"):
        leaf = x.clone().requires_grad_(True)
        mix = RandHSMixd(["image"], n_segments=8, compactness=0.1, mode=mode, return_masks=True).set_random_state(1)
        out = mix({"image": leaf})
        assert out["image"].requires_grad
        out["image"].sum().backward()
        # every output pixel is (1 - m) X1 + m X2: each image's gradient sums its weights in both roles
        expected = torch.zeros(4, 24, 24)
        partner = out["hsmix_partner"]
        masks = [out["hsmix_hard_mask"][:, 0]] if mode != "soft" else []
        masks += [out["hsmix_soft_mask"][:, 0]] if mode != "hard" else []
        for m in masks:
            expected += 1 - m
            expected.index_add_(0, partner, m)
        torch.testing.assert_close(leaf.grad, expected[:, None].expand(-1, 2, -1, -1))
        # without autograd (or detached) the values are the same as before
        torch.testing.assert_close(out["image"].detach(), mix.set_random_state(1)({"image": x})["image"])


def test_dictionary_signature_is_written_out():
    # help() and IDE completion show every argument (it took **kwargs, which shows none of them)
    params = inspect.signature(RandHSMixd).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    array_args = set(inspect.signature(RandHSMix).parameters)
    assert array_args <= set(params)
    for name in array_args:
        assert params[name].default == inspect.signature(RandHSMix).parameters[name].default, name
    assert "n_segments" in pydoc.render_doc(RandHSMixd)


def test_array_transform_exposes_only_randomize_and_apply():
    public = {n for n in vars(RandHSMix) if not n.startswith("_")}
    assert public == {"backend", "from_preset", "randomize", "masks", "apply", "apply_on_labels"}


def test_dictionary_wrapper_uses_no_private_member_of_the_array_transform():
    tree = ast.parse(textwrap.dedent(inspect.getsource(RandHSMixd)))
    private = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and "mixer" in ast.unparse(node.value)
    ]
    assert private == []


def test_dictionary_is_randomize_once_then_apply_per_key(batch):
    # what RandHSMixd returns is the array transform's public randomize / apply / apply_on_labels
    images, labels = batch
    second = images.flip(-1)
    opts = dict(num_classes=4, n_segments=(20, 40), compactness=0.1, backend="torch")
    out = RandHSMixd(["image", "image2", "label"], "label", **opts).set_random_state(4)(
        {"image": images, "image2": second, "label": labels}
    )
    mix = RandHSMix(**opts).set_random_state(4)
    mix.randomize(images)
    assert torch.equal(out["image"], mix.apply(images)) and torch.equal(out["image2"], mix.apply(second))
    assert torch.equal(out["label"], mix.apply_on_labels(labels))
    # the masks are drawn once: repeating apply, or __call__ with randomize=False, mixes with the same ones
    assert torch.equal(mix(second, randomize=False), out["image2"])


def test_apply_before_randomize_and_on_another_batch_size_raise(batch):
    images, labels = batch
    mix = RandHSMix(num_classes=4, n_segments=8, compactness=0.1)
    with pytest.raises(RuntimeError, match="randomize"):
        mix.apply(images)
    mix.randomize(images)
    with pytest.raises(ValueError, match="does not match the image batch"):
        mix.apply(images[:3])
    with pytest.raises(ValueError, match="does not match the image batch"):
        mix.apply_on_labels(labels[:, :, :5])


def test_allow_missing_keys_with_no_key_present_is_monais(batch):
    # MONAI's CutMixd returns a batch without any of its keys as it is; RandHSMixd raised ValueError
    from monai.transforms import CutMixd

    images, _ = batch
    data = {"other": images}
    assert torch.equal(CutMixd(["image", "label"], 4, "label", allow_missing_keys=True)(data)["other"], images)
    out = RandHSMixd(["image", "label"], "label", num_classes=4, allow_missing_keys=True, return_masks=True)(data)
    assert set(out) == {"other"} and out["other"] is images
    with pytest.raises(KeyError):
        RandHSMixd(["image", "label"], "label", num_classes=4)(data)


def test_metatensor_output_follows_get_track_meta(batch):
    images, labels = batch
    meta_images = MetaTensor(images, meta={"filename_or_obj": "x"})
    try:
        set_track_meta(False)
        x, y = make("torch")(meta_images, labels)
        assert type(x) is torch.Tensor and type(y) is torch.Tensor
    finally:
        set_track_meta(True)
    x, _ = make("torch")(meta_images, labels)
    assert isinstance(x, MetaTensor) and x.meta["filename_or_obj"] == "x"


def test_dictionary_errors_name_the_key(batch):
    images, labels = batch
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    mix = RandHSMixd(["scan", "seg"], "seg", num_classes=4, n_segments=8, compactness=0.1)
    with pytest.raises(ValueError, match="scan contains NaN"):
        mix({"scan": bad, "seg": labels})
    with pytest.raises(ValueError, match="seg shape"):
        mix({"scan": images, "seg": labels[:2]})

import math

import pytest
import torch

from monai_hsmix.networks.smooth_gan import (
    ForegroundSimilarityEncoder,
    GatedConv2d,
    PatchDiscriminator,
    SmoothGANGenerator,
    compose,
    from_unit_range,
    generator_loss,
    harmonize,
    load_checkpoint,
    load_generator,
    save_checkpoint,
    to_unit_range,
    triplet_discriminator_loss,
    triplet_generator_loss,
)


def _masks(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    ori = (torch.rand(b, 1, h, w, generator=g) > 0.6).float()
    add = ((torch.rand(b, 1, h, w, generator=g) > 0.85).float()) * (1 - ori)
    return ori, add


def test_gated_conv_output_is_gated_elu():
    conv = GatedConv2d(2, 3, 3, dilation=2)
    x = torch.randn(1, 2, 9, 9)
    features, gate = conv.conv(x).chunk(2, dim=1)
    torch.testing.assert_close(conv(x), torch.nn.functional.elu(features) * torch.sigmoid(gate))
    assert conv(x).shape == (1, 3, 9, 9)


def test_fse_copies_the_most_similar_original_feature_when_sharp():
    fse = ForegroundSimilarityEncoder(softmax_scale=1000.0)
    feats = torch.zeros(1, 2, 1, 4)
    feats[0, :, 0, 0] = torch.tensor([1.0, 0.0])  # original nucleus A
    feats[0, :, 0, 1] = torch.tensor([0.0, 5.0])  # original nucleus B
    feats[0, :, 0, 2] = torch.tensor([0.1, 1.0])  # pasted: points towards B
    feats[0, :, 0, 3] = torch.tensor([3.0, 3.0])  # background
    ori = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 1, 4)
    add = torch.tensor([0.0, 0.0, 1.0, 0.0]).view(1, 1, 1, 4)
    out = fse(feats, ori, add)
    torch.testing.assert_close(out[0, :, 0, 2], torch.tensor([0.0, 5.0]), atol=1e-4, rtol=0)
    # non-query positions are untouched
    torch.testing.assert_close(out[..., [0, 1, 3]], feats[..., [0, 1, 3]])


def test_fse_is_identity_without_keys_or_queries_and_chunking_does_not_change_it():
    feats = torch.randn(2, 4, 6, 6)
    ori, add = _masks(2, 6, 6)
    assert torch.equal(ForegroundSimilarityEncoder()(feats, torch.zeros_like(ori), add), feats)
    assert torch.equal(ForegroundSimilarityEncoder()(feats, ori, torch.zeros_like(add)), feats)
    torch.testing.assert_close(
        ForegroundSimilarityEncoder(query_chunk=1)(feats, ori, add), ForegroundSimilarityEncoder()(feats, ori, add)
    )


@pytest.mark.parametrize("channels, size", [(3, (32, 40)), (1, (35, 33))])
def test_generator_shapes_range_and_identity_at_init(channels, size):
    torch.manual_seed(0)
    gen = SmoothGANGenerator(channels, base_features=4)
    x = torch.rand(2, channels, *size) * 2 - 1
    ori, add = _masks(2, *size)
    y = gen(x, ori, add)
    assert y.shape == x.shape
    assert torch.equal(y, x)  # zero-initialised residual
    plain = SmoothGANGenerator(channels, base_features=4, residual=False)(x, ori, add)
    assert plain.abs().max() <= 1 and not torch.equal(plain, x)
    with pytest.raises(ValueError, match="expected"):
        gen(x[:, :1] if channels == 3 else x.repeat(1, 3, 1, 1), ori, add)


def test_discriminator_is_spectrally_normalised_patch_map():
    disc = PatchDiscriminator(3, base_features=4)
    out = disc(torch.rand(2, 3, 32, 32))
    assert out.ndim == 4 and out.shape[:2] == (2, 1) and out.shape[-1] > 1
    assert sum("weight_orig" in n for n, _ in disc.named_parameters()) == 5
    with pytest.raises(ValueError, match="at least 24"):
        disc(torch.rand(1, 3, 16, 16))


def test_triplet_losses_follow_equations_3_and_4():
    a = torch.zeros(2, 1, 2, 2)
    p = torch.full((2, 1, 2, 2), 1.0)  # d(a, p) = ||(1, 1, 1, 1)|| = 2
    f = torch.full((2, 1, 2, 2), 2.0)  # d(a, f) = 4
    assert triplet_discriminator_loss(a, p, f, margin=1.0).item() == 0.0  # 2 - 4 + 1 < 0
    assert triplet_discriminator_loss(a, p, a, margin=1.0).item() == pytest.approx(3.0)  # 2 - 0 + 1
    assert triplet_generator_loss(a, p, f).item() == pytest.approx(2.0)
    assert triplet_generator_loss(a, p, p).item() == pytest.approx(0.0, abs=1e-5)


def test_one_training_step_gives_finite_losses_and_gradients():
    torch.manual_seed(0)
    gen, disc = SmoothGANGenerator(3, 4), PatchDiscriminator(3, 4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ori, add = _masks(2, 32, 32)
    generated = gen(x, ori, add)
    comp = compose(generated, x, add)
    loss_d = triplet_discriminator_loss(disc(x), disc(x.flip(-1)), disc(comp.detach()))
    loss_d.backward()
    total, parts = generator_loss(disc(x).detach(), disc(x.flip(-1)).detach(), disc(comp), generated, x)
    total.backward()
    assert math.isfinite(loss_d.item()) and math.isfinite(total.item())
    assert all(math.isfinite(v) for v in parts.values())
    assert gen.decoder[-1].weight.grad is not None and gen.decoder[-1].weight.grad.abs().sum() > 0


def test_compose_keeps_outside_pixels_exactly():
    x = torch.rand(1, 3, 16, 16)
    g = torch.rand(1, 3, 16, 16)
    _, add = _masks(1, 16, 16)
    out = compose(g, x, add)
    inside = add.bool().expand_as(x)
    assert torch.equal(out[~inside], x[~inside]) and torch.equal(out[inside], g[inside])


def test_unit_range_round_trip_and_validation():
    x = torch.tensor([0.0, 127.5, 255.0])
    torch.testing.assert_close(to_unit_range(x, (0, 255)), torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(
        from_unit_range(torch.tensor([-2.0, 0.0, 1.0]), (0, 255)), torch.tensor([0.0, 127.5, 255.0])
    )
    with pytest.raises(ValueError, match="value_range"):
        to_unit_range(x, (1, 1))


def test_checkpoint_round_trip_and_harmonize_only_changes_pasted_pixels(tmp_path):
    torch.manual_seed(0)
    gen = SmoothGANGenerator(3, 4, residual=False)  # non-identity, so the inside must change
    path = save_checkpoint(
        tmp_path / "g.pt",
        gen,
        PatchDiscriminator(3, 4),
        {"channels": 3, "base_features": 4, "residual": False, "value_range": [0, 255]},
        7,
    )
    loaded, config = load_generator(path)
    assert config["value_range"] == [0, 255] and load_checkpoint(path)["step"] == 7
    x = torch.rand(1, 3, 33, 37) * 2 - 1
    ori, add = _masks(1, 33, 37)
    torch.testing.assert_close(loaded(x, ori, add), gen.eval()(x, ori, add))
    image = torch.randint(0, 256, (3, 33, 37), dtype=torch.uint8)
    out = harmonize(loaded, image, ori[0, 0], add[0, 0], (0, 255))
    assert out.dtype == torch.uint8
    inside = add[0].bool().expand_as(image)
    assert torch.equal(out[~inside], image[~inside])
    assert not torch.equal(out[inside], image[inside])


def test_checkpoints_load_from_local_paths_only(tmp_path):
    with pytest.raises(ValueError, match="local path"):
        load_generator("https://example.org/smooth_gan.pt")
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Smooth-GAN checkpoint"):
        load_generator(tmp_path / "other.pt")

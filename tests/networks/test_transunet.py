"""TransUNet: shapes, gradient flow, local pretrained loading (own, timm and Google npz layouts), export."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch

from monai_hsmix.networks.transunet import TransUNet

TINY = dict(hidden_size=64, num_layers=2, num_heads=2, mlp_dim=128, resnet_layers=(1, 1, 1))


def tiny(in_channels: int = 1, out_channels: int = 3, img_size=32, **kwargs) -> TransUNet:
    torch.manual_seed(0)
    return TransUNet(in_channels, out_channels, img_size=img_size, **{**TINY, **kwargs}).eval()


@pytest.mark.parametrize(
    "in_channels, out_channels, img_size",
    [(1, 9, 32), (3, 2, 48), (4, 3, (32, 64)), (2, 1, 16)],
)
def test_output_shape(in_channels, out_channels, img_size):
    net = tiny(in_channels, out_channels, img_size)
    sides = (img_size, img_size) if isinstance(img_size, int) else img_size
    with torch.no_grad():
        out = net(torch.randn(2, in_channels, *sides))
    assert out.shape == (2, out_channels, *sides)
    assert torch.isfinite(out).all()


def test_full_size_model_matches_published_parameter_count():
    # The TransUNet paper reports 105.28M parameters for R50-ViT-B/16 with 9 classes.
    net = TransUNet(1, 9)
    count = sum(p.numel() for p in net.parameters())
    assert abs(count / 1e6 - 105.28) < 0.05, count


@pytest.mark.parametrize("n_skip", [0, 1, 3])
def test_n_skip_changes_decoder_inputs(n_skip):
    net = tiny(n_skip=n_skip)
    first_convs = [block.conv1.conv.in_channels for block in net.decoder.blocks]
    skips = [512, 256, 64, 0]
    assert first_convs == [c + (s if i < n_skip else 0) for i, (c, s) in enumerate(zip([512, 256, 128, 64], skips))]
    assert net(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_gradient_reaches_encoder_stem_and_transformer():
    net = tiny().train()
    out = net(torch.randn(2, 1, 32, 32))
    out.square().mean().backward()
    for param in (net.resnet.root.conv.weight, net.blocks[0].attn.qkv.weight, net.embeddings.position_embeddings):
        assert param.grad is not None and param.grad.abs().sum() > 0


@pytest.mark.parametrize("img_size", [30, 8, (32, 40), (32, 32, 32), 0])
def test_bad_img_size_fails_clearly(img_size):
    with pytest.raises(ValueError, match="img_size"):
        TransUNet(1, 2, img_size=img_size, **TINY)


def test_input_of_another_size_or_channels_fails_clearly():
    net = tiny(in_channels=1, img_size=32)
    with pytest.raises(ValueError, match="img_size"):
        net(torch.randn(1, 1, 48, 48))
    with pytest.raises(ValueError, match="input channels"):
        net(torch.randn(1, 2, 32, 32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden_size=60, num_heads=8), "divisible"),
        (dict(resnet_layers=(1, 1)), "resnet_layers"),
        (dict(decoder_channels=(8, 8, 8)), "decoder_channels"),
        (dict(n_skip=4), "n_skip"),
        (dict(dropout_rate=1.5), "dropout_rate"),
    ],
)
def test_bad_configuration_fails_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransUNet(1, 2, img_size=32, **{**TINY, **kwargs})


def test_own_checkpoint_round_trips(tmp_path, caplog):
    source = tiny(in_channels=2, out_channels=4)
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        expected = source(x)
    path = tmp_path / "model.pt"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)

    torch.manual_seed(1)  # a different initialisation, so equality can only come from the file
    with caplog.at_level(logging.INFO, logger="monai_hsmix.networks.transunet"):
        loaded = TransUNet(2, 4, img_size=32, pretrained_path=path, **TINY).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    assert "loaded" in caplog.text


def test_plain_and_ddp_state_dicts_load(tmp_path):
    source = tiny()
    path = tmp_path / "ddp.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    report = tiny().load_pretrained(path)
    assert not report.missing and not report.unexpected and not report.mismatched


def test_other_head_is_reported_not_loaded(tmp_path, caplog):
    source = tiny(out_channels=5)
    path = tmp_path / "five.pt"
    torch.save(source.state_dict(), path)
    target = tiny(out_channels=3)
    with caplog.at_level(logging.WARNING, logger="monai_hsmix.networks.transunet"):
        report = target.load_pretrained(path)
    assert any(m.startswith("head.weight") for m in report.mismatched)
    assert "head.weight" in report.missing
    assert torch.equal(target.blocks[1].mlp.linear2.weight, source.blocks[1].mlp.linear2.weight)
    assert "mismatched" in caplog.text


def test_checkpoint_that_matches_nothing_raises(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="nothing"):
        tiny().load_pretrained(path)


@pytest.mark.parametrize("bad", ["https://example.org/w.npz", "does/not/exist.pt"])
def test_only_existing_local_files_are_read(bad):
    with pytest.raises((ValueError, FileNotFoundError), match="local"):
        tiny().load_pretrained(bad)


def test_non_state_dict_file_is_rejected(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="state dict"):
        tiny().load_pretrained(path)


def test_position_embeddings_resize_and_stem_adapts(tmp_path):
    source = tiny(in_channels=3, img_size=32)  # 2x2 grid, RGB stem
    path = tmp_path / "rgb32.pt"
    torch.save(source.state_dict(), path)
    target = tiny(in_channels=1, img_size=64)  # 4x4 grid, grey stem
    report = target.load_pretrained(path)
    assert len(report.adapted) == 2 and not report.mismatched
    assert target.embeddings.position_embeddings.shape == (1, 16, 64)
    # a grey image through the adapted stem conv == the image repeated over RGB through the source stem
    # conv, up to one positive factor per filter (weight standardisation divides by each kernel's std)
    grey = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        adapted = target.resnet.root.conv(grey)[0].flatten(1)
        original = source.resnet.root.conv(grey.repeat(1, 3, 1, 1))[0].flatten(1)
    ratio = adapted / original
    factor = ratio.median(dim=1, keepdim=True).values
    assert (factor > 0).all()
    torch.testing.assert_close(adapted, original * factor, rtol=1e-3, atol=1e-4)


def _timm_name(key: str) -> str | None:
    """timm's ``vit_base_r50_s16_224`` name of one of our encoder keys (written out independently)."""
    rules = [
        (r"resnet\.root\.conv\.(.+)", r"patch_embed.backbone.stem.conv.\1"),
        (r"resnet\.root\.norm\.(.+)", r"patch_embed.backbone.stem.norm.\1"),
        (r"resnet\.stages\.(\d+)\.(\d+)\.shortcut\.(.+)", r"patch_embed.backbone.stages.\1.blocks.\2.downsample.\3"),
        (r"resnet\.stages\.(\d+)\.(\d+)\.(.+)", r"patch_embed.backbone.stages.\1.blocks.\2.\3"),
        (r"embeddings\.patch_embeddings\.(.+)", r"patch_embed.proj.\1"),
        (r"blocks\.(\d+)\.attn\.out_proj\.(.+)", r"blocks.\1.attn.proj.\2"),
        (r"blocks\.(\d+)\.mlp\.linear(\d)\.(.+)", r"blocks.\1.mlp.fc\2.\3"),
        (r"(blocks\.\d+\.(norm1|norm2|attn\.qkv)\..+|norm\..+)", r"\1"),
    ]
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def test_timm_layout_loads_encoder_exactly(tmp_path):
    source = tiny()
    state = {}
    for key, value in source.state_dict().items():
        name = _timm_name(key)
        if name is not None:
            state[name] = value
    pos = source.embeddings.position_embeddings.detach()
    state["pos_embed"] = torch.cat([torch.randn(1, 1, pos.shape[2]), pos], dim=1)  # timm keeps a class token
    state["cls_token"] = torch.randn(1, 1, pos.shape[2])
    state["head.weight"] = torch.randn(1000, pos.shape[2])
    path = tmp_path / "timm.pth"
    torch.save(state, path)

    target = tiny()
    decoder = {k: v for k, v in source.state_dict().items() if k.startswith(("decoder.", "head."))}
    target.load_state_dict(decoder, strict=False)  # the timm file only holds the encoder
    report = target.load_pretrained(path)
    assert report.source_format == "timm"
    assert sorted(report.unexpected) == ["timm:cls_token", "timm:head.weight"]
    assert report.missing and all(k.startswith(("decoder.", "head.")) for k in report.missing)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


def _google_npz(rng: np.random.Generator, hidden=64, heads=2, mlp=128, grid=2, layers=2, units=(1, 1, 1)):
    """Random arrays in the layout of Google's R50+ViT-B_16.npz (HWIO kernels, per-head attention)."""
    a = {
        "conv_root/kernel": rng.normal(size=(7, 7, 3, 64)),
        "gn_root/scale": rng.normal(size=(64,)),
        "gn_root/bias": rng.normal(size=(64,)),
        "embedding/kernel": rng.normal(size=(1, 1, 1024, hidden)),
        "embedding/bias": rng.normal(size=(hidden,)),
        "cls": rng.normal(size=(1, 1, hidden)),
        "Transformer/posembed_input/pos_embedding": rng.normal(size=(1, grid * grid + 1, hidden)),
        "Transformer/encoder_norm/scale": rng.normal(size=(hidden,)),
        "Transformer/encoder_norm/bias": rng.normal(size=(hidden,)),
        "head/kernel": rng.normal(size=(hidden, 10)),
    }
    in_ch = 64
    for b, n in enumerate(units, start=1):
        out_ch, mid = 256 * 2 ** (b - 1), 64 * 2 ** (b - 1)
        for u in range(1, n + 1):
            p = f"block{b}/unit{u}/"
            a[p + "conv1/kernel"] = rng.normal(size=(1, 1, in_ch if u == 1 else out_ch, mid))
            a[p + "conv2/kernel"] = rng.normal(size=(3, 3, mid, mid))
            a[p + "conv3/kernel"] = rng.normal(size=(1, 1, mid, out_ch))
            for g, c in (("gn1", mid), ("gn2", mid), ("gn3", out_ch)):
                a[p + g + "/scale"], a[p + g + "/bias"] = rng.normal(size=(c,)), rng.normal(size=(c,))
            if u == 1:
                a[p + "conv_proj/kernel"] = rng.normal(size=(1, 1, in_ch, out_ch))
                a[p + "gn_proj/scale"], a[p + "gn_proj/bias"] = rng.normal(size=(out_ch,)), rng.normal(size=(out_ch,))
        in_ch = out_ch
    for i in range(layers):
        p = f"Transformer/encoderblock_{i}/"
        for n in ("LayerNorm_0", "LayerNorm_2"):
            a[p + n + "/scale"], a[p + n + "/bias"] = rng.normal(size=(hidden,)), rng.normal(size=(hidden,))
        for n in ("query", "key", "value"):
            a[p + f"MultiHeadDotProductAttention_1/{n}/kernel"] = rng.normal(size=(hidden, heads, hidden // heads))
            a[p + f"MultiHeadDotProductAttention_1/{n}/bias"] = rng.normal(size=(heads, hidden // heads))
        a[p + "MultiHeadDotProductAttention_1/out/kernel"] = rng.normal(size=(heads, hidden // heads, hidden))
        a[p + "MultiHeadDotProductAttention_1/out/bias"] = rng.normal(size=(hidden,))
        a[p + "MlpBlock_3/Dense_0/kernel"] = rng.normal(size=(hidden, mlp))
        a[p + "MlpBlock_3/Dense_0/bias"] = rng.normal(size=(mlp,))
        a[p + "MlpBlock_3/Dense_1/kernel"] = rng.normal(size=(mlp, hidden))
        a[p + "MlpBlock_3/Dense_1/bias"] = rng.normal(size=(hidden,))
    return {k: v.astype(np.float32) for k, v in a.items()}


def test_google_npz_layout_means_what_it_computes(tmp_path):
    arrays = _google_npz(np.random.default_rng(0))
    path = tmp_path / "R50+ViT-B_16.npz"
    np.savez(path, **arrays)
    net = tiny(in_channels=3)
    report = net.load_pretrained(path)
    assert report.source_format == "google-npz"
    assert sorted(report.unexpected) == ["npz:cls", "npz:head/kernel"]
    assert report.missing and all(k.startswith(("decoder.", "head.")) for k in report.missing)

    x = np.random.default_rng(1).normal(size=(5, 64)).astype(np.float32)
    block = "Transformer/encoderblock_1/"
    attn = block + "MultiHeadDotProductAttention_1/"
    with torch.no_grad():
        qkv = net.blocks[1].attn.qkv(torch.from_numpy(x)).numpy()
        # JAX dense: x @ kernel[in, heads, head_dim] + bias; MONAI splits the qkv output as (qkv, heads, head_dim)
        for i, n in enumerate(("query", "key", "value")):
            want = np.einsum("ni,ihd->nhd", x, arrays[attn + f"{n}/kernel"]) + arrays[attn + f"{n}/bias"]
            np.testing.assert_allclose(qkv[:, i * 64 : (i + 1) * 64], want.reshape(5, 64), rtol=1e-4, atol=1e-4)
        heads = np.random.default_rng(2).normal(size=(5, 2, 32)).astype(np.float32)
        out = net.blocks[1].attn.out_proj(torch.from_numpy(heads.reshape(5, 64))).numpy()
        want = np.einsum("nhd,hdo->no", heads, arrays[attn + "out/kernel"]) + arrays[attn + "out/bias"]
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
        fc1 = net.blocks[1].mlp.linear1(torch.from_numpy(x)).numpy()
        want = x @ arrays[block + "MlpBlock_3/Dense_0/kernel"] + arrays[block + "MlpBlock_3/Dense_0/bias"]
        np.testing.assert_allclose(fc1, want, rtol=1e-4, atol=1e-4)
        # HWIO: output channel o at the centre of a 7x7 patch is sum_{h,w,i} kernel[h, w, i, o] * patch[i, h, w]
        patch = np.random.default_rng(3).normal(size=(1, 3, 7, 7)).astype(np.float32)
        conv = torch.nn.functional.conv2d(torch.from_numpy(patch), net.resnet.root.conv.weight).numpy()[0, :, 0, 0]
        want = np.einsum("hwio,ihw->o", arrays["conv_root/kernel"], patch[0])
        np.testing.assert_allclose(conv, want, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(
        net.embeddings.position_embeddings.detach().numpy()[0],
        arrays["Transformer/posembed_input/pos_embedding"][0, 1:],
    )


def test_trace_matches_eager():
    net = tiny(in_channels=2, out_channels=3)
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        traced = torch.jit.trace(net, x, check_trace=False)  # compared below instead
        torch.testing.assert_close(traced(x), net(x))
        torch.testing.assert_close(traced(-x), net(-x))


def test_monai_bundle_ckpt_export(tmp_path):
    import json

    from monai.bundle import ckpt_export

    config = {
        "network_def": {
            "_target_": "monai_hsmix.networks.transunet.TransUNet",
            "in_channels": 1,
            "out_channels": 2,
            "img_size": 32,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()},
        }
    }
    (tmp_path / "inference.json").write_text(json.dumps(config))
    (tmp_path / "metadata.json").write_text(json.dumps({"version": "0.1.0"}))
    net = tiny(in_channels=1, out_channels=2)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    ckpt_export(
        net_id="network_def",
        filepath=str(tmp_path / "model.ts"),
        ckpt_file=str(tmp_path / "model.pt"),
        meta_file=str(tmp_path / "metadata.json"),
        config_file=str(tmp_path / "inference.json"),
    )
    exported = torch.jit.load(str(tmp_path / "model.ts"))  # ckpt_export scripts unless use_trace=True
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), net(x))
        with pytest.raises(Exception, match="img_size"):  # the input check survives scripting
            exported(torch.randn(1, 1, 48, 48))

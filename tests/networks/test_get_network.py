"""get_network: each name builds a 2D network that runs, and bad sizes or names fail when it is built."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import SwinUNETR, UNet

from monai_hsmix.networks import TransUNet, get_network

TINY = {
    "unet": dict(channels=(4, 8, 16, 32, 64), num_res_units=1),
    "swinunetr": dict(feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)),
    "transunet": dict(hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64, resnet_layers=(1, 1, 1)),
}


@pytest.mark.parametrize(
    "name, cls, in_channels, out_channels",
    [
        ("unet", UNet, 1, 9),
        ("swinunetr", SwinUNETR, 4, 3),
        ("transunet", TransUNet, 3, 2),
        ("TransUNet", TransUNet, 1, 2),
    ],
)
def test_builds_and_runs(name, cls, in_channels, out_channels):
    torch.manual_seed(0)
    size = 64 if name == "swinunetr" else 32
    net = get_network(name, in_channels, out_channels, img_size=size, **TINY[name.lower()]).eval()
    assert isinstance(net, cls)
    with torch.no_grad():
        out = net(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, out_channels, size, size)


def test_unet_defaults_are_the_documented_ones():
    net = get_network("unet", 1, 2)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(c.out_channels for c in convs) == 512
    strided = [c for c in convs if c.stride == (2, 2)]
    assert len(strided) == 4 * 2  # four down-steps: the main conv and the residual conv of each unit


@pytest.mark.parametrize(
    "name, img_size, match",
    [
        ("swinunetr", 240, "divisible by 32"),
        ("swinunetr", 32, "at least 64"),
        ("unet", 40, "divisible by 16"),
        ("transunet", 40, "multiples of 16"),
        ("unet", (32, 32, 32), "2D"),
        ("unet", 0, "positive"),
    ],
)
def test_bad_img_size_fails_when_built(name, img_size, match):
    with pytest.raises(ValueError, match=match):
        get_network(name, 1, 2, img_size=img_size, **TINY[name])


def test_unet_divisibility_follows_custom_strides():
    net = get_network("unet", 1, 2, img_size=24, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
    assert net(torch.randn(1, 1, 24, 24)).shape == (1, 2, 24, 24)


def test_swinunetr_rejects_spatial_dims_and_unknown_names_fail():
    with pytest.raises(ValueError, match="spatial_dims"):
        get_network("swinunetr", 1, 2, img_size=64, spatial_dims=3)
    with pytest.raises(ValueError, match="unknown network 'vnet'"):
        get_network("vnet", 1, 2)

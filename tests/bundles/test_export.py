"""verify_net_in_out and ckpt_export (TorchScript by tracing) for every network of both bundles."""

from __future__ import annotations

import json

import pytest
import torch
from monai.bundle import ConfigParser, ckpt_export, verify_net_in_out

from monai_hsmix.bundle.utils import BUNDLES, bundle_dir

from .conftest import IMG, IMG_FOR, TINY_NETWORKS, configs

NETWORKS = ("unet", "swinunetr", "transunet")


def _overrides(network):
    size = IMG_FOR.get(network, IMG)
    return {
        "network_name": network,
        "network_kwargs": TINY_NETWORKS[network],
        "img_size": size,
        "_meta_#network_data_format#inputs#image#spatial_shape": [size, size],
        "_meta_#network_data_format#outputs#pred#spatial_shape": [size, size],
    }


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("bundle", BUNDLES)
def test_verify_net_in_out(bundle, network):
    meta = str(bundle_dir(bundle) / "configs" / "metadata.json")
    verify_net_in_out(
        net_id="network_def",
        meta_file=meta,
        config_file=configs(bundle, "inference"),
        device="cpu",
        **_overrides(network),
    )
    if network != "unet":
        return
    # and it does check: a metadata claiming another channel count fails
    wrong = _overrides(network)
    wrong["_meta_#network_data_format#outputs#pred#num_channels"] = 2
    with pytest.raises(ValueError, match="output channel number"):
        verify_net_in_out(
            net_id="network_def", meta_file=meta, config_file=configs(bundle, "inference"), device="cpu", **wrong
        )


@pytest.mark.slow
# each network once (tracing SwinUNETR/TransUNet takes a while on CPU); both bundles are covered
@pytest.mark.parametrize(
    "bundle,network", [("synapse_hsmix", "unet"), ("brats2018_hsmix", "swinunetr"), ("synapse_hsmix", "transunet")]
)
def test_ckpt_export_gives_an_equivalent_torchscript(bundle, network, tmp_path):
    meta_path = bundle_dir(bundle) / "configs" / "metadata.json"
    opts = _overrides(network)
    parser = ConfigParser()
    parser.read_config(configs(bundle, "inference"))
    for k, v in opts.items():
        if not k.startswith("_meta_"):
            parser[k] = v
    net = parser.get_parsed_content("network_def").eval()
    ckpt = tmp_path / "model.pt"
    torch.save(net.state_dict(), ckpt)
    channels = json.loads(meta_path.read_text())["network_data_format"]["inputs"]["image"]["num_channels"]
    size = opts["img_size"]
    ckpt_export(
        net_id="network_def",
        filepath=str(tmp_path / "model.ts"),
        ckpt_file=str(ckpt),
        meta_file=str(meta_path),
        config_file=configs(bundle, "inference"),
        use_trace=True,
        input_shape=[1, channels, size, size],
        **opts,
    )
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), rtol=1e-4, atol=1e-4)


FLAIR_T1CE = bundle_dir("brats2018_hsmix") / "configs" / "flair_t1ce.json"


def test_two_modality_brats_model_verifies_with_its_args_file():
    """The BraTS 2015 subset has FLAIR and T1c only: the metadata describes that model
    (``flair_t1ce_data_format``) and ``configs/flair_t1ce.json`` applies it for MONAI's checks."""
    bundle = "brats2018_hsmix"
    meta_path = bundle_dir(bundle) / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    args = json.loads(FLAIR_T1CE.read_text())
    described = meta["flair_t1ce_data_format"]["inputs"]["image"]
    assert (
        args["_meta_#network_data_format#inputs#image#num_channels"]
        == described["num_channels"]
        == len(args["modalities"])
    )
    assert args["_meta_#network_data_format#inputs#image#channel_def"] == described["channel_def"]
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(meta_path),
        config_file=configs(bundle, "inference"),
        device="cpu",
        args_file=str(FLAIR_T1CE),
        **_overrides("unet"),
    )
    # without it the four-channel description does not fit the two-modality network
    with pytest.raises(Exception):
        verify_net_in_out(
            net_id="network_def",
            meta_file=str(meta_path),
            config_file=configs(bundle, "inference"),
            device="cpu",
            modalities=["flair", "t1ce"],
            **_overrides("unet"),
        )


def test_two_modality_export_embeds_two_channels(tmp_path):
    bundle = "brats2018_hsmix"
    meta_path = bundle_dir(bundle) / "configs" / "metadata.json"
    opts = _overrides("unet")
    parser = ConfigParser()
    parser.read_config(configs(bundle, "inference"))
    for k, v in {**opts, "modalities": ["flair", "t1ce"]}.items():
        if not k.startswith("_meta_"):
            parser[k] = v
    net = parser.get_parsed_content("network_def").eval()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    size = opts["img_size"]
    ckpt_export(
        net_id="network_def",
        filepath=str(tmp_path / "model.ts"),
        ckpt_file=str(tmp_path / "model.pt"),
        meta_file=str(meta_path),
        config_file=configs(bundle, "inference"),
        use_trace=True,
        input_shape=[1, 2, size, size],
        args_file=str(FLAIR_T1CE),
        **opts,
    )
    extra = {"metadata.json": ""}
    torch.jit.load(str(tmp_path / "model.ts"), _extra_files=extra)
    embedded = json.loads(extra["metadata.json"])
    assert embedded["network_data_format"]["inputs"]["image"]["num_channels"] == 2

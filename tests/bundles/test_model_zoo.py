"""The places a model-zoo user expects (issue 25, item 4): ``monai.bundle.load`` of a local copy gives the
network with its weights, and training writes the best model to ``models/model.pt`` inside the bundle."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch
from monai.bundle import ConfigParser

from monai_hsmix.bundle.utils import BUNDLES, JSON_CONFIGS, bundle_dir, json_config_text

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("bundle", BUNDLES)
def test_json_configs_match_the_yaml_ones(bundle):
    folder = bundle_dir(bundle) / "configs"
    for name in JSON_CONFIGS:
        assert (folder / f"{name}.json").read_text() == json_config_text(folder / f"{name}.yaml"), (
            f"{bundle}/configs/{name}.json is stale: run python -m monai_hsmix.apps.bundle json bundles/{bundle}"
        )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_default_outputs_are_where_the_model_zoo_puts_them(bundle, tmp_path):
    copy = tmp_path / bundle
    shutil.copytree(bundle_dir(bundle), copy)
    parser = ConfigParser()
    parser.read_config([str(copy / "configs" / "train.yaml"), str(copy / "configs" / "evaluate.yaml")])
    parser["bundle_root"] = str(copy)
    assert parser.get_parsed_content("ckpt_dir") == f"{copy}/models"
    assert parser.get_parsed_content("eval_ckpt") == f"{copy}/models/model.pt"
    assert parser.get_parsed_content("eval_dir") == f"{copy}/eval"
    parser = ConfigParser()
    parser.read_config(str(copy / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(copy)
    assert parser.get_parsed_content("ckpt_path") == f"{copy}/models/model.pt"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_monai_bundle_load_gives_the_network(bundle, tmp_path):
    from monai.bundle import load

    copy = tmp_path / bundle
    shutil.copytree(bundle_dir(bundle), copy, ignore=shutil.ignore_patterns("models"))
    parser = ConfigParser()
    parser.read_config(str(copy / "configs" / "train.yaml"))
    network = parser.get_parsed_content("network_def")
    torch.manual_seed(1)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in network.state_dict().items()}
    (copy / "models").mkdir()
    torch.save(state, copy / "models" / "model.pt")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Cannot find the config file")
        loaded = load(name=bundle, bundle_dir=str(tmp_path), source="github", device="cpu", progress=False)
    assert isinstance(loaded, torch.nn.Module), f"got {type(loaded).__name__}, not the network"
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())

"""Every bundle config parses, metadata validates offline, and the ids MONAI's tooling expects exist."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from monai.bundle import ConfigParser, verify_metadata
from monai.bundle.utils import DEFAULT_HANDLERS_ID
from packaging.utils import canonicalize_name

from monai_hsmix.bundle.utils import BUNDLES, bundle_dir

from .conftest import configs

REPO_ROOT = bundle_dir(BUNDLES[0]).parents[1]
SCHEMA_DIR = REPO_ROOT / "monai_hsmix" / "bundle_schema"
SCHEMA = SCHEMA_DIR / "meta_schema_20240725.json"  # MONAI's published schema, see its README
CONFIG_SETS = [("train",), ("train", "evaluate"), ("train", "multi_gpu_train"), ("inference",)]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_layout_is_complete(bundle):
    root = bundle_dir(bundle)
    for rel in (
        "configs/metadata.json",
        "configs/train.yaml",
        "configs/evaluate.yaml",
        "configs/inference.yaml",
        "configs/multi_gpu_train.yaml",
        "configs/logging.conf",
        "docs/README.md",
        "LICENSE",
        "large_files.yml",
        "docs/data_license.txt",
    ):
        assert (root / rel).is_file(), rel


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("names", CONFIG_SETS, ids="+".join)
def test_configs_parse_and_reference_only_defined_ids(bundle, names):
    parser = ConfigParser()
    parser.read_config(configs(bundle, *names))
    parser.read_meta(str(bundle_dir(bundle) / "configs" / "metadata.json"))
    parser.parse()  # raises on a malformed config
    # every '@ref' resolves to an id of the merged config
    for item_id in parser.ref_resolver.items:
        cfg = parser.ref_resolver.items[item_id].get_config()
        if isinstance(cfg, str):
            for ref in parser.ref_resolver.find_refs_in_config(cfg, item_id):
                assert ref in parser.ref_resolver.items, f"{names}: {item_id} refers to undefined {ref}"
    for key in ("bundle_root", "device", "dataset_dir", "output_dir", "network_def", "network"):
        assert key in parser, key


@pytest.mark.parametrize("bundle", BUNDLES)
def test_tracking_handlers_attach_to_the_standard_ids(bundle):
    parser = ConfigParser()
    parser.read_config(configs(bundle, "train"))
    for role in ("trainer", "validator"):
        ids = DEFAULT_HANDLERS_ID[role]
        assert isinstance(parser[ids["id"]], dict) and isinstance(parser[ids["handlers"]], list)
    infer = ConfigParser()
    infer.read_config(configs(bundle, "inference"))
    assert isinstance(infer[DEFAULT_HANDLERS_ID["evaluator"]["handlers"]], list)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_logging_handlers_are_last_for_multi_gpu_slicing(bundle):
    parser = ConfigParser()
    parser.read_config(configs(bundle, "train"))
    targets = [h["_target_"] for h in parser["train#handlers"]]
    assert targets[-2:] == ["StatsHandler", "TensorBoardStatsHandler"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_use_hsmix_switch_builds_the_trainer_with_or_without_mixing(bundle):
    for flag in (True, False):
        parser = ConfigParser()
        parser.read_config(configs(bundle, "train"))
        parser["use_hsmix"] = flag
        prepare = parser.get_parsed_content("train#prepare_batch")
        assert (prepare.transform is not None) is flag


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_verifies_offline_and_bad_metadata_fails(bundle, tmp_path):
    meta = bundle_dir(bundle) / "configs" / "metadata.json"
    verify_metadata(meta_file=str(meta), filepath=str(SCHEMA))
    broken = json.loads(meta.read_text())
    bad = copy.deepcopy(broken)
    del bad["network_data_format"]["inputs"]["image"]["num_channels"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="num_channels"):
        verify_metadata(meta_file=str(tmp_path / "bad.json"), filepath=str(SCHEMA))
    bad = dict(broken, version=1)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="1 is not of type 'string'"):
        verify_metadata(meta_file=str(tmp_path / "bad.json"), filepath=str(SCHEMA))


def test_shipped_schema_is_monais_published_file_unchanged():
    import hashlib

    readme = (SCHEMA_DIR / "README.md").read_text()
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
    assert digest in readme, "the schema differs from the published file its README names"
    for bundle in BUNDLES:  # and it is the schema the metadata names
        meta = json.loads((bundle_dir(bundle) / "configs" / "metadata.json").read_text())
        assert meta["schema"].endswith("/" + SCHEMA.name)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_channels_match_the_config(bundle):
    meta = json.loads((bundle_dir(bundle) / "configs" / "metadata.json").read_text())
    parser = ConfigParser()
    parser.read_config(configs(bundle, "train"))
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["num_channels"] == parser.get_parsed_content("in_channels")
    out_key = "num_classes" if "num_classes" in parser else "out_channels"
    assert fmt["outputs"]["pred"]["num_channels"] == parser.get_parsed_content(out_key)
    assert isinstance(parser.get_parsed_content("device"), torch.device)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_large_files_name_the_weights_where_monai_looks(bundle):
    import yaml

    entries = yaml.safe_load((bundle_dir(bundle) / "large_files.yml").read_text())["large_files"]
    assert [e["path"] for e in entries] == ["models/model.pt"]


def _setup_cfg_requirements():
    """``{distribution: SpecifierSet}`` of setup.cfg's core requirements and its extras."""
    import configparser

    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO_ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in cfg["options.extras_require"].values():
        lines += extra.splitlines()
    reqs = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("%("):
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req.specifier
    return reqs


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_records_versions_the_package_allows(bundle):
    """The metadata records the environment its eval_metrics came from (as the model zoo's bundles do), not
    today's install: a test comparing it with the installed versions fails at every release on the index.
    What must hold whatever the index serves: each entry is a version, and a version setup.cfg admits."""
    from packaging.version import Version

    meta = json.loads((bundle_dir(bundle) / "configs" / "metadata.json").read_text())
    allowed = _setup_cfg_requirements()
    framework = {"monai": meta["monai_version"], "torch": meta["pytorch_version"], "numpy": meta["numpy_version"]}
    recorded = {**framework, **meta["required_packages_version"]}
    assert {"monai_hsmix", "scikit-image", "opencv-contrib-python-headless", "pytorch-ignite"} <= set(recorded)
    for package, value in recorded.items():
        version = Version(value)  # raises InvalidVersion on anything else
        assert not version.local, f"{package}: {value} carries a local tag (+cpu, +cu121): record the public version"
        if package == "monai_hsmix":
            continue
        name = canonicalize_name(package)
        assert name in allowed, f"{package} is recorded but setup.cfg does not require it"
        assert allowed[name].contains(version, prereleases=True), (
            f"{package} {value} is outside setup.cfg's {allowed[name]}"
        )

"""Tiny demo datasets and overrides shared by the bundle tests (64 px-ish volumes, tiny networks)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Optional

import pytest
from monai.bundle import ConfigWorkflow

from monai_hsmix.bundle.utils import bundle_dir
from monai_hsmix.data.demo_data import make_demo_dataset

IMG = 32
# SwinUNETR with instance norm needs >= 64 px (a 1x1 bottleneck cannot be instance-normalised)
IMG_FOR = {"swinunetr": 64}
TINY_NETWORKS = {
    "unet": {"channels": [4, 8, 16, 32, 64], "num_res_units": 0},
    "swinunetr": {"feature_size": 12, "depths": [1, 1, 1, 1]},
    "transunet": {
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "mlp_dim": 64,
        "resnet_layers": [1, 1, 1],
        "decoder_channels": [32, 16, 8, 8],
    },
}
DATASET = {"synapse_hsmix": "synapse", "brats2018_hsmix": "brats2018"}


@pytest.fixture(scope="session")
def demo_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle_demo")
    return {
        "synapse_hsmix": make_demo_dataset("synapse", root / "synapse", seed=0, size=32, depth=4),
        "brats2018_hsmix": make_demo_dataset("brats2018", root / "brats", seed=0, size=40, depth=6),
    }


def configs(bundle: str, *names: str):
    folder = bundle_dir(bundle) / "configs"
    return [str(folder / f"{n}.yaml") for n in names]


def tiny_overrides(bundle: str, dataset_dir, output_dir, network: str = "unet", **extra) -> dict:
    """Overrides for a run of a few seconds: 32 px, tiny network, 2 iterations of batch 2, one epoch."""
    out = dict(
        bundle_root=str(bundle_dir(bundle)),
        dataset_dir=str(dataset_dir),
        output_dir=str(output_dir),
        img_size=IMG_FOR.get(network, IMG),
        network_name=network,
        network_kwargs=TINY_NETWORKS[network],
        max_epochs=1,
        batch_size=2,
        val_batch_size=4,
        num_workers=0,
        log_every=1,
        sw_batch_size=8,
        val_interval=1,
    )
    out["train#trainer#epoch_length"] = 2
    if bundle == "brats2018_hsmix":
        out["val_fraction"] = 0.25
    out.update(extra)
    return out


@contextmanager
def log_records(name: Optional[str], level: int = logging.INFO):
    """The records logged to logger ``name`` while the block runs (nothing is listened to for None).

    Each bundle workflow applies the bundle's logging.conf, which replaces the root's handlers (pytest's
    caplog among them) and disables the loggers that exist: enter this after the workflow is created.
    """
    records: list = []
    if name is None:
        yield records
        return
    log = logging.getLogger(name)
    log.disabled = False
    handler = logging.Handler(level)
    handler.emit = records.append
    old_level = log.level
    log.setLevel(level)
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def run_bundle(bundle: str, names, listen: Optional[str] = None, **overrides):
    """Run the bundle's configs ``names`` (e.g. ``["train", "evaluate"]``); return the workflow and the
    records logged to logger ``listen`` while it ran."""
    wf = ConfigWorkflow(config_file=configs(bundle, *names), workflow_type=None, **overrides)
    wf.initialize()
    with log_records(listen) as records:
        wf.run()
        wf.finalize()
    return wf, records

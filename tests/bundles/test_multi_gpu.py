"""multi_gpu_train.yaml under torchrun: two CPU processes on the gloo backend, tiny run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from monai_hsmix.bundle.utils import bundle_dir

from .conftest import configs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("bundle", ["brats2018_hsmix"])
def test_torchrun_two_processes_gloo(bundle, demo_roots, tmp_path, subprocess_env):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(configs(bundle, "train", "multi_gpu_train")),
        "--logging_file",
        str(bundle_dir(bundle) / "configs" / "logging.conf"),
        "--bundle_root",
        str(bundle_dir(bundle)),
        "--dataset_dir",
        str(demo_roots[bundle]),
        "--output_dir",
        str(tmp_path),
        "--img_size",
        "32",
        "--network_kwargs",
        "{'channels': [4, 8, 16, 32, 64], 'num_res_units': 0}",
        "--max_epochs",
        "2",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--log_every",
        "1",
        "--val_fraction",
        "0.25",
        "--train#trainer#epoch_length",
        "2",
    ]
    # CPU processes whatever the machine has: on a 1-GPU machine a second rank would ask for cuda:1
    env = dict(subprocess_env, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    saved = torch.load(tmp_path / "models" / "last_checkpoint_epoch=2.pt", map_location="cpu", weights_only=False)
    assert saved["trainer"]["iteration"] == 4
    assert not any(k.startswith("module.") for k in saved["model"]), "DDP wrapper saved instead of the network"
    assert (tmp_path / "models" / "model.pt").is_file()
    # only rank 0 keeps the logging handlers
    assert log.count("Epoch: 2/2, Iter: 2/2") == 1
    # and only rank 0 logs at all: engine messages, per-class tables appear once
    assert log.count("SupervisedTrainer - INFO - Engine run resuming from iteration 0, epoch 0 until 2 epochs") == 1
    assert log.count("per-class results over") == 2  # one table per validation

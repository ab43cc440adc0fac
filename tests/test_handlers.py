"""Training-state checkpoints: newest-file lookup and the handler's argument checks."""

from __future__ import annotations

import pytest
import torch

from monai_hsmix.handlers import TrainingCheckpoint, latest_checkpoint


def test_latest_checkpoint_compares_epochs_numerically(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path) is None
    for name in ("last_checkpoint_epoch=9.pt", "last_checkpoint_epoch=10.pt", "model.pt", "last_checkpoint_epoch=x.pt"):
        (tmp_path / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "last_checkpoint_epoch=10.pt"


def test_training_checkpoint_rejects_bad_arguments(tmp_path):
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="at least one"):
        TrainingCheckpoint(str(tmp_path), {})
    with pytest.raises(ValueError, match="added by TrainingCheckpoint"):
        TrainingCheckpoint(str(tmp_path), {"model": net, "trainer": net})
    with pytest.raises(ValueError, match="save_interval"):
        TrainingCheckpoint(str(tmp_path), {"model": net}, save_interval=0)
    wrapped = TrainingCheckpoint(str(tmp_path), {"model": torch.nn.DataParallel(net)})
    assert wrapped.save_dict["model"] is net  # checkpoints hold the bare network

"""A short training always leaves a model: the last epoch is validated, the final weights are saved, and the
end of the log says which file is the best model and which the last (issue 25, item 2)."""

from __future__ import annotations

import logging

import pytest
import torch
from monai.bundle import ConfigWorkflow

from .conftest import configs, run_bundle, tiny_overrides

pytestmark = pytest.mark.slow


def _train(bundle, **overrides):
    return run_bundle(bundle, ["train"], listen="monai_hsmix.bundle.handlers", **overrides)


def test_training_shorter_than_val_interval_leaves_best_and_last_model(demo_roots, tmp_path):
    bundle = "synapse_hsmix"  # its default val_interval (5) is longer than this run
    opts = tiny_overrides(bundle, demo_roots[bundle], tmp_path, max_epochs=2, val_interval=5)
    wf, records = _train(bundle, **opts)
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    assert evaluator.state.epoch == 2, "the last epoch was not validated"
    best, last = tmp_path / "models" / "model.pt", tmp_path / "models" / "model_final.pt"
    assert best.is_file() and last.is_file()
    network = wf.parser.get_parsed_content("network")
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert all(torch.equal(saved[k], v.cpu()) for k, v in network.state_dict().items())
    messages = [r.getMessage() for r in records if "best model" in r.getMessage()]
    assert messages, "the end of training does not name the best and the last model"
    assert str(best) in messages[-1] and str(last) in messages[-1] and "epoch 2" in messages[-1]

    # the evaluation that failed with FileNotFoundError after such a run now finds its checkpoint
    wf = ConfigWorkflow(config_file=configs(bundle, "train", "evaluate"), workflow_type=None, **opts)
    wf.initialize()
    wf.run()
    assert "val_mean_dice" in wf.parser.get_parsed_content("validate#evaluator").state.metrics


def test_no_validation_at_all_still_writes_model_pt(demo_roots, tmp_path):
    """Without a validation (val_interval 0 is not allowed by MONAI; a run with no validator handler is what a
    user gets by deleting it) the last model is also model.pt, with a warning saying it is not the best."""
    bundle = "brats2018_hsmix"
    opts = tiny_overrides(bundle, demo_roots[bundle], tmp_path, max_epochs=1, val_interval=5)
    opts["train#handlers#2#validator"] = None
    _, records = _train(bundle, **opts)
    assert (tmp_path / "models" / "model.pt").is_file() and (tmp_path / "models" / "model_final.pt").is_file()
    assert any("not validated" in r.getMessage() for r in records if r.levelno >= logging.WARNING)

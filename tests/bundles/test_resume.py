"""A rerun in a bundle's output folder resumes only the same run, keeps the best model, and two identical
runs give identical numbers."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_hsmix.bundle.errors import find_in_chain
from monai_hsmix.engines.checkpoint import RunSettingsMismatchError

from .conftest import configs, tiny_overrides

pytestmark = pytest.mark.slow
BUNDLE = "brats2018_hsmix"


def _workflow(**overrides) -> ConfigWorkflow:
    wf = ConfigWorkflow(config_file=configs(BUNDLE, "train"), workflow_type=None, **overrides)
    wf.initialize()
    return wf


@pytest.mark.parametrize(
    "change",
    [
        {"use_hsmix": False},
        {"network_name": "transunet"},
        {"hsmix_options": {"mode": "hard"}},
        {"modalities": ["t1", "flair"]},
    ],
)
def test_a_rerun_with_other_settings_stops_naming_the_setting(demo_roots, tmp_path, change):
    opts = tiny_overrides(BUNDLE, demo_roots[BUNDLE], tmp_path)
    _workflow(**opts).run()
    assert (tmp_path / "models" / "last_checkpoint_epoch=1.pt").is_file()
    changed = dict(opts, max_epochs=2, **change)
    if "network_name" in change:
        from .conftest import TINY_NETWORKS

        changed["network_kwargs"] = TINY_NETWORKS["transunet"]
    with pytest.raises(Exception) as excinfo:
        _workflow(**changed).run()
    mismatch = find_in_chain(excinfo.value, RunSettingsMismatchError)
    assert mismatch is not None, f"no settings error in {excinfo.value!r}"
    message = str(mismatch)
    for name in change:
        assert f"{name}: " in message
    assert "--output_dir" in message and "--resume False" in message
    # the checkpoint of the first run is untouched, and --resume False starts over in the same folder
    seen = []
    wf = _workflow(**dict(changed, resume=False))
    wf.parser.get_parsed_content("train#trainer").add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.iteration)
    )
    wf.run()
    assert seen == [1, 2, 3, 4]


def _predicting_nothing(opts, **extra) -> dict:
    """Overrides whose validation sees an empty prediction (Dice 0, never a better model)."""
    worse = dict(opts, **extra)
    worse["validate#postprocessing#transforms"] = [
        {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
        {"_target_": "Lambdad", "keys": "pred", "func": "$lambda x: x * 0"},
    ]
    return worse


def test_a_resumed_run_keeps_the_better_best_model(demo_roots, tmp_path):
    opts = tiny_overrides(BUNDLE, demo_roots[BUNDLE], tmp_path, max_epochs=1)
    wf = _workflow(**opts)
    wf.run()
    best = wf.parser.get_parsed_content("validate#evaluator").state.best_metric
    assert best >= 0.0
    best_model = torch.load(tmp_path / "models" / "model.pt", weights_only=True)

    # the resumed run validates a model that predicts nothing: Dice 0, no better than the first run's
    wf2 = _workflow(**_predicting_nothing(opts, max_epochs=2))
    wf2.run()
    evaluator = wf2.parser.get_parsed_content("validate#evaluator")
    assert evaluator.state.metrics["val_mean_dice"] <= best
    assert evaluator.state.best_metric == best and evaluator.state.best_metric_epoch == 1
    kept = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert all(torch.equal(kept[k], v) for k, v in best_model.items()), "model.pt replaced by a worse model"


def _first_loss(opts) -> float:
    wf = _workflow(**opts)
    trainer = wf.parser.get_parsed_content("train#trainer")
    losses = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED(once=1), lambda e: losses.append(float(e.state.output[0]["loss"]))
    )
    wf.run()
    return losses[0]


def test_the_same_bundle_command_twice_gives_the_same_first_loss(demo_roots, tmp_path):
    opts = tiny_overrides(BUNDLE, demo_roots[BUNDLE], tmp_path / "a", max_epochs=1, val_interval=5)
    first = _first_loss(opts)
    again = _first_loss(dict(opts, output_dir=str(tmp_path / "b")))
    assert first == again
    # the seed reaches the mixing: another seed mixes (and so starts) differently
    assert _first_loss(dict(opts, output_dir=str(tmp_path / "c"), seed=1)) != first


def test_a_deleted_best_model_is_saved_again_after_a_resume(demo_roots, tmp_path):
    opts = tiny_overrides(BUNDLE, demo_roots[BUNDLE], tmp_path, max_epochs=1)
    _workflow(**opts).run()
    (tmp_path / "models" / "model.pt").unlink()
    _workflow(**_predicting_nothing(opts, max_epochs=2)).run()
    # the restored ranking names a file that is gone: it must not stop the next model from being saved
    assert (tmp_path / "models" / "model.pt").is_file()


class _Killed(BaseException):
    """Stands for a kill between two epochs (not an Exception: no handler swallows it)."""


def _losses_and_batches(opts, kill_at_epoch=None):
    """Per epoch: the losses of every iteration and a fingerprint of every batch (which flipped and
    rotated slices, in which order)."""
    wf = _workflow(**opts)
    trainer = wf.parser.get_parsed_content("train#trainer")
    losses, batches = {}, {}
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: losses.setdefault(e.state.epoch, []).append(float(e.state.output[0]["loss"])),
    )
    trainer.add_event_handler(
        Events.ITERATION_STARTED,
        lambda e: batches.setdefault(e.state.epoch, []).append(e.state.batch["image"][:, 0, 0].sum(-1).tolist()),
    )
    if kill_at_epoch is not None:

        def kill(engine):  # the checkpoint of the epoch before is saved: killed before the next one starts
            if engine.state.epoch == kill_at_epoch:
                raise _Killed

        trainer.add_event_handler(Events.EPOCH_STARTED, kill)
    try:
        wf.run()
    except BaseException as err:  # the workflow may wrap it
        if not (isinstance(err, _Killed) or find_in_chain(err, _Killed)):
            raise
    return losses, batches


def test_a_resumed_run_continues_the_uninterrupted_runs_random_streams(demo_roots, tmp_path):
    # whole epochs (the loader's length), HSMix in the trainer, random flips and rotations in the
    # dataset: every stream a resume must continue
    opts = tiny_overrides(BUNDLE, demo_roots[BUNDLE], tmp_path / "whole", max_epochs=4)
    opts["train#trainer#epoch_length"] = None
    whole_losses, whole_batches = _losses_and_batches(opts)
    assert sorted(whole_losses) == [1, 2, 3, 4]

    cut = dict(opts, output_dir=str(tmp_path / "cut"))
    first_losses, _ = _losses_and_batches(cut, kill_at_epoch=3)
    assert sorted(first_losses) == [1, 2] and (tmp_path / "cut" / "models" / "last_checkpoint_epoch=2.pt").is_file()
    resumed_losses, resumed_batches = _losses_and_batches(cut)
    # bit-identical epochs 3 and 4, on the same batches; epoch 1's draws are not replayed
    assert sorted(resumed_losses) == [3, 4]
    assert resumed_batches[3] == whole_batches[3] and resumed_batches[4] == whole_batches[4]
    assert resumed_losses[3] == whole_losses[3] and resumed_losses[4] == whole_losses[4]
    assert resumed_batches[3] != whole_batches[1]

"""Short end-to-end runs of both bundles on demo data: every network trains, evaluates and infers;
an interrupted run resumes from its checkpoint; bad data fails naming the file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_hsmix.bundle.utils import REGION_NAMES, read_metric_summary
from monai_hsmix.data.brats import find_brats_cases
from monai_hsmix.data.io import DatasetError

from .conftest import configs, tiny_overrides

pytestmark = pytest.mark.slow


def make_workflow(bundle, names, **overrides) -> ConfigWorkflow:
    wf = ConfigWorkflow(config_file=configs(bundle, *names), workflow_type=None, **overrides)
    wf.initialize()
    return wf


def run_workflow(bundle, names, **overrides) -> ConfigWorkflow:
    wf = make_workflow(bundle, names, **overrides)
    wf.run()
    wf.finalize()
    return wf


@pytest.mark.parametrize("network", ["unet", "swinunetr", "transunet"])
@pytest.mark.parametrize("bundle", ["synapse_hsmix", "brats2018_hsmix"])
def test_train_then_evaluate(bundle, network, demo_roots, tmp_path):
    opts = tiny_overrides(bundle, demo_roots[bundle], tmp_path, network)
    wf = run_workflow(bundle, ["train"], **opts)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration == 2 and trainer.state.epoch == 1
    # HSMix (mode "both") doubles each batch of 2: hard-mixed then soft-mixed samples
    assert len(trainer.state.output) == 4
    assert np.isfinite(float(trainer.state.output[0]["loss"]))
    assert (tmp_path / "models" / "model.pt").is_file()
    assert (tmp_path / "models" / "last_checkpoint_epoch=1.pt").is_file()
    assert any((tmp_path / "logs").iterdir()), "no TensorBoard events"

    run_workflow(bundle, ["train", "evaluate"], **opts)
    names = REGION_NAMES[bundle]
    dice = read_metric_summary(tmp_path / "eval" / "val_mean_dice_summary.csv", names)
    assert set(dice) == set(names) | {"mean"}
    finite = [v for v in dice.values() if np.isfinite(v)]
    assert finite and all(0.0 <= v <= 1.0 for v in finite)
    raw = (tmp_path / "eval" / "val_hd95_raw.csv").read_text().splitlines()
    assert raw[0].split(",")[1:-1] == [f"class{i}" for i in range(len(names))]
    # one row per case volume, as the challenges report (BraTS used to average 2D slices)
    if bundle == "synapse_hsmix":
        cases = ["case0001", "case0002"]
    else:
        cases = [c.name for c in find_brats_cases(demo_roots[bundle], split="val", val_fraction=opts["val_fraction"])]
    assert [r.split(",")[0] for r in raw[1:]] == cases
    if network != "unet":
        return
    # the per-class report: class names, a CSV row per case and metric, a box plot, TensorBoard curves
    rows = (tmp_path / "eval" / "per_case.csv").read_text().splitlines()
    assert rows[0].split(",") == ["case", "metric", *names]
    assert [r.split(",")[0] for r in rows[1:] if r.split(",")[1] == "Dice"] == cases
    assert (tmp_path / "eval" / "val_mean_dice_boxplot.png").read_bytes()[:4] == b"\x89PNG"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "logs"), size_guidance={"images": 0})
    acc.Reload()
    assert {f"Dice/{n}" for n in names} <= set(acc.Tags()["scalars"])
    assert acc.Tags()["images"], "no validation overlays"


@pytest.mark.parametrize("bundle", ["synapse_hsmix", "brats2018_hsmix"])
def test_inference_writes_label_volumes(bundle, demo_roots, tmp_path):
    import nibabel as nib

    opts = tiny_overrides(bundle, demo_roots[bundle], tmp_path)
    run_workflow(bundle, ["train"], **opts)
    infer_opts = {
        k: v
        for k, v in opts.items()
        if "#" not in k and k not in ("max_epochs", "batch_size", "val_batch_size", "num_workers", "log_every")
    }
    run_workflow(bundle, ["inference"], **infer_opts)
    preds = sorted((tmp_path / "predictions").glob("*.nii.gz"))
    assert len(preds) == 2
    arr = np.asarray(nib.load(str(preds[0])).dataobj)
    if bundle == "synapse_hsmix":
        assert arr.shape == (32, 32, 4) and set(np.unique(arr).tolist()) <= set(range(9))
    else:
        assert arr.shape == (40, 40, 6) and set(np.unique(arr).tolist()) <= {0, 1, 2, 4}


def test_interrupted_run_resumes_from_its_checkpoint(demo_roots, tmp_path):
    bundle = "brats2018_hsmix"
    opts = tiny_overrides(bundle, demo_roots[bundle], tmp_path, max_epochs=3, val_interval=10)

    wf = make_workflow(bundle, ["train"], **opts)
    trainer = wf.parser.get_parsed_content("train#trainer")

    @trainer.on(Events.EPOCH_STARTED(once=2))
    def _interrupt(engine):  # epoch 1 is saved (at its end), epoch 2 is lost
        raise RuntimeError("simulated interruption")

    with pytest.raises(RuntimeError) as excinfo:
        wf.run()
    assert "simulated interruption" in str(excinfo.value.__cause__)
    ckpt = tmp_path / "models" / "last_checkpoint_epoch=1.pt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert saved["trainer"]["iteration"] == 2 and saved["trainer"]["epoch_length"] == 2  # ignite keeps no epoch

    wf2 = make_workflow(bundle, ["train"], **opts)
    trainer2 = wf2.parser.get_parsed_content("train#trainer")
    network2 = wf2.parser.get_parsed_content("network")
    seen = {"iterations": [], "weights_match": None}

    @trainer2.on(Events.STARTED)
    def _check_loaded(engine):  # after the config's CheckpointLoader, which also runs on STARTED
        state = network2.state_dict()
        seen["weights_match"] = all(torch.equal(state[k].cpu(), v) for k, v in saved["model"].items())

    @trainer2.on(Events.ITERATION_COMPLETED)
    def _count(engine):
        seen["iterations"].append(engine.state.iteration)

    wf2.run()
    assert seen["weights_match"] is True
    assert seen["iterations"] == [3, 4, 5, 6], "training restarted instead of continuing"
    assert trainer2.state.epoch == 3
    assert (tmp_path / "models" / "last_checkpoint_epoch=3.pt").is_file()
    assert not ckpt.exists(), "old training checkpoints are not pruned"

    # re-running the finished run restores it and trains nothing more
    wf3 = make_workflow(bundle, ["train"], **opts)
    trainer3 = wf3.parser.get_parsed_content("train#trainer")
    ran = []
    trainer3.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: ran.append(engine.state.iteration))
    wf3.run()
    assert ran == [] and trainer3.state.epoch == 3


def test_bundle_run_with_a_missing_modality_names_the_file(demo_roots, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_roots["brats2018_hsmix"], data)
    case = find_brats_cases(data)[-1]
    (case / f"{case.name}_t1ce.nii.gz").unlink()
    opts = tiny_overrides("brats2018_hsmix", data, tmp_path / "out", val_fraction=0.5)
    with pytest.raises(Exception) as excinfo:
        run_workflow("brats2018_hsmix", ["train"], **opts)
    chain, err = [], excinfo.value
    while err is not None:
        chain.append(err)
        err = err.__cause__ or err.__context__
    dataset_errors = [e for e in chain if isinstance(e, DatasetError)]
    assert dataset_errors and f"{case.name}_t1ce.nii.gz" in str(dataset_errors[0])


def test_tracking_settings_patch_the_trainer_and_validator(demo_roots, tmp_path):
    """``--tracking mlflow`` adds handlers at the standard ids with MLflow's loss transform; mlflow itself is
    not installed here, so a StatsHandler stands in for MLFlowHandler with the same settings."""
    import copy

    from monai.bundle.utils import DEFAULT_MLFLOW_SETTINGS

    settings = copy.deepcopy(DEFAULT_MLFLOW_SETTINGS)
    probe = {"_target_": "StatsHandler", "name": "tracking_probe", "iteration_log": True, "epoch_log": False}
    settings["configs"] = {
        "trainer": dict(
            probe, tag_name="probe_loss", output_transform=settings["configs"]["trainer"]["output_transform"]
        ),
        "validator": dict(probe, iteration_log=False, epoch_log=True),
        "save_execute_config": False,
    }
    bundle = "brats2018_hsmix"
    wf = ConfigWorkflow(
        config_file=configs(bundle, "train"),
        workflow_type=None,
        tracking=settings,
        **tiny_overrides(bundle, demo_roots[bundle], tmp_path),
    )
    wf.initialize()
    probes = {}
    for role, ids in (("trainer", "train#handlers"), ("validator", "validate#handlers")):
        found = [h for h in wf.parser.get_parsed_content(ids) if getattr(h, "name", None) == "tracking_probe"]
        assert len(found) == 1, f"no tracking handler in {ids}"
        probes[role] = found[0]
    wf.run()
    trainer = wf.parser.get_parsed_content("train#trainer")
    # MLflow's default loss transform yields a scalar from the bundle's (decollated) trainer output
    loss = probes["trainer"].output_transform(trainer.state.output)
    assert isinstance(float(loss), float) and np.isfinite(float(loss))
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    assert "val_mean_dice" in evaluator.state.metrics

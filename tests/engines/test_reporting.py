"""Iteration-log filter, HD95 in millimetres and the per-class report of monai_hsmix.engines.reporting."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.handlers import HausdorffDistance, MeanDice, StatsHandler

from monai_hsmix.bundle.utils import BUNDLES, bundle_dir
from monai_hsmix.engines.reporting import HausdorffDistanceMM, SegmentationReport, every_n_iterations


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _count_iteration_logs(iteration_log, n_iter=7) -> int:
    engine = Engine(lambda e, b: torch.tensor(1.0))
    collect = _Collect()  # StatsHandler's logger does not propagate to pytest's capture
    logger = logging.getLogger("probe_stats")
    logger.addHandler(collect)
    try:
        StatsHandler(
            name="probe_stats",
            iteration_log=iteration_log,
            epoch_log=False,
            tag_name="loss",
            output_transform=lambda out: out,
        ).attach(engine)
        engine.run(range(n_iter), max_epochs=1)
    finally:
        logger.removeHandler(collect)
    return sum("Iter:" in m for m in collect.messages)


def test_every_n_iterations_logs_every_nth_iteration():
    assert _count_iteration_logs(every_n_iterations(3)) == 2  # iterations 3 and 6
    assert _count_iteration_logs(every_n_iterations(0)) == 0
    # what the configs passed before: an int is a truthy flag, so every iteration was logged
    assert _count_iteration_logs(3) == 7
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="log_every"):
            every_n_iterations(bad)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_log_every_is_an_event_filter(bundle):
    parser = ConfigParser()
    parser.read_config(str(bundle_dir(bundle) / "configs" / "train.yaml"))
    parser["log_every"] = 4
    index = [h["_target_"] for h in parser["train#handlers"]].index("StatsHandler")
    iteration_log = parser.get_parsed_content(f"train#handlers#{index}#iteration_log")
    assert [i for i in range(1, 13) if iteration_log(None, i)] == [4, 8, 12]


def _masks(shape, x0, spacing):
    truth = np.zeros(shape, np.float32)
    truth[x0 : x0 + 4, 3:7, 2:5] = 1
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    return MetaTensor(torch.from_numpy(truth)[None], affine=affine)


def _hd95(handler_cls, spacing):
    engine = Engine(lambda e, b: b)
    handler = handler_cls(include_background=True, percentile=95, output_transform=lambda out: out)
    handler.attach(engine, "hd95")
    label, pred = _masks((16, 10, 8), 3, spacing), _masks((16, 10, 8), 5, spacing)  # pred shifted 2 voxels in x
    engine.run([([pred], [label])], max_epochs=1)
    return engine.state.metrics["hd95"]


def test_hd95_is_in_millimetres_from_the_label_affine():
    assert _hd95(HausdorffDistance, (1.5, 0.8, 3.0)) == pytest.approx(2.0)  # MONAI's handler: voxels
    assert _hd95(HausdorffDistanceMM, (1.5, 0.8, 3.0)) == pytest.approx(3.0)  # 2 voxels x 1.5 mm
    assert _hd95(HausdorffDistanceMM, (0.5, 0.8, 3.0)) == pytest.approx(1.0)


def test_segmentation_report_names_classes_and_writes_csv_plot_and_tensorboard(tmp_path, caplog):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def step(engine, batch):
        engine.state.batch = [{"name": n} for n in batch["names"]]
        return [
            {"image": torch.rand(1, 8, 8), "label": lab, "pred": p} for lab, p in zip(batch["label"], batch["pred"])
        ]

    engine = Engine(step)
    dice = MeanDice(
        include_background=True, output_transform=lambda out: ([o["pred"] for o in out], [o["label"] for o in out])
    )
    dice.attach(engine, "val_mean_dice")
    report = SegmentationReport(
        ["WT", "TC"],
        {"val_mean_dice": "Dice"},
        output_dir=str(tmp_path / "eval"),
        log_dir=str(tmp_path / "tb"),
        overlays=1,
        multilabel=True,
    )
    report.attach(engine)
    full, half = torch.ones(1, 8, 8), torch.zeros(1, 8, 8)
    half[:, :4] = 1
    # case a: WT exact, TC half; case b: WT exact, TC exact
    batch = {
        "names": ["a", "b"],
        "label": [torch.cat([full, full]), torch.cat([full, half])],
        "pred": [torch.cat([full, half]), torch.cat([full, half])],
    }
    with caplog.at_level(logging.INFO, logger="monai_hsmix.engines.reporting"):
        engine.run([batch], max_epochs=1)
    assert report.last["val_mean_dice"]["WT"] == pytest.approx(1.0)
    assert report.last["val_mean_dice"]["TC"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert "TC" in caplog.text and "0.8333" in caplog.text
    rows = list(csv.reader((tmp_path / "eval" / "per_case.csv").read_text().splitlines()))
    assert rows[0] == ["case", "metric", "WT", "TC"]
    assert [r[0] for r in rows[1:]] == ["a", "b"] and float(rows[1][3]) == pytest.approx(2 / 3, abs=1e-4)
    assert (tmp_path / "eval" / "val_mean_dice_boxplot.png").read_bytes()[:4] == b"\x89PNG"
    assert "TC" in (tmp_path / "eval" / "summary.csv").read_text()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    acc.Reload()
    assert {"Dice/WT", "Dice/TC"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("Dice/TC")[0].value == pytest.approx(0.8333, abs=1e-3)
    assert len(acc.Tags()["images"]) == 1
    with pytest.raises(ValueError, match="2 classes but 3 class names"):
        SegmentationReport(["a", "b", "c"], {"val_mean_dice": "Dice"})._details(engine)

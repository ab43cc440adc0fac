"""Aggregation of run JSON files: NaN classes left out, mean ± std over seeds, paired deltas."""

from __future__ import annotations

import json
import math

import numpy as np

from monai_hsmix.experiments.report import markdown_tables, run_means, summarise, write_report


def _run(arm, seed, dice):
    vols = [{"dice": d, "jaccard": d, "hd95": [1.0] * len(d)} for d in dice]
    return {"arm": arm, "seed": seed, "description": arm, "train_seconds": 1.0, "eval_seconds": 1.0, "volumes": vols}


def test_run_means_leave_out_absent_classes():
    means = run_means(_run("none", 0, [[0.5, float("nan")], [0.7, float("nan")]]), "dice")
    assert math.isclose(means[0], 0.6) and math.isnan(means[1])


def test_mean_std_over_seeds_and_paired_delta():
    runs = [_run("none", 0, [[0.5, 0.5]]), _run("none", 1, [[0.7, 0.7]]),
            _run("mix", 0, [[0.6, 0.6]]), _run("mix", 1, [[0.6, 0.6]])]
    table = summarise(runs, ["none", "mix"])
    np.testing.assert_allclose(table["mix"]["mean_dice"], [0.6, 0.6])
    text = markdown_tables(table, ["a", "b"])
    assert "| none | 2 | 60.00 ± 14.14 | 60.00 ± 14.14 | 60.00 ± 14.14 | — |" in text
    # paired: +10 on seed 0, -10 on seed 1
    assert "| mix | 2 | 60.00 ± 0.00 | 60.00 ± 0.00 | 60.00 ± 0.00 | +0.00 (1/2 seeds up) |" in text


def test_write_report_counts_finished_runs(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "none_seed0.json").write_text(json.dumps(_run("none", 0, [[0.5, 0.25]])))
    path = write_report(tmp_path, ["none", "mix"], ["a", "b"], expected_runs=4, header={"command": "`x`"})
    text = path.read_text()
    assert "Finished runs: 1 of 4." in text and "| none | 1 | 50.00 ± 0.00 | 25.00 ± 0.00 | 37.50 ± 0.00 | — |" in text
    assert "| mix |" not in text
    assert (tmp_path / "mean_fg_dsc.png").exists()

"""Reading runs: the pairing key and the score every paired comparison uses."""

from __future__ import annotations

import json
import math

from monai_hsmix.apps.ablation.runs import load_runs, mean_fg_dice, run_key


def test_run_key_is_the_seed_or_the_seed_and_fold():
    assert run_key({"seed": 3}) == 3 and run_key({"seed": 3, "fold": None}) == 3
    assert run_key({"seed": 3, "fold": 1}) == (3, 1)


def test_mean_fg_dice_averages_classes_after_volumes_and_leaves_out_absent_classes():
    run = {"volumes": [{"dice": [0.5, float("nan"), 0.9]}, {"dice": [0.7, float("nan"), 0.7]}]}
    assert math.isclose(mean_fg_dice(run), (0.6 + 0.8) / 2)


def test_load_runs_sorts_by_arm_seed_fold_and_skips_files_being_written(tmp_path):
    for name, run in {
        "b_seed0.json": {"arm": "b", "seed": 0},
        "a_seed1.json": {"arm": "a", "seed": 1},
        "a_seed0_fold1.json": {"arm": "a", "seed": 0, "fold": 1},
        "a_seed0_fold0.json": {"arm": "a", "seed": 0, "fold": 0},
    }.items():
        (tmp_path / name).write_text(json.dumps(run))
    (tmp_path / ".partial-7.abcd-a_seed2.json").write_text("{")
    assert [(r["arm"], r["seed"], r.get("fold")) for r in load_runs(tmp_path)] == [
        ("a", 0, 0),
        ("a", 0, 1),
        ("a", 1, None),
        ("b", 0, None),
    ]

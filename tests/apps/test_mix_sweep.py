"""Shared bookkeeping of the sweep apps: settings named field by field, the refusal, the pairwise table."""

from __future__ import annotations

import json

import pytest

from monai_hsmix.apps.ablation.train2d import TrainConfig
from monai_hsmix.apps.mix_sweep import (
    SettingsMismatchError,
    check_same_settings,
    pairwise_table,
    plan_sweep,
    train_settings,
)


def test_train_settings_are_the_runner_fields():
    config = TrainConfig(image_size=32, steps=5, batch_size=4, channels=(4, 8))
    assert train_settings(config) == {
        "image_size": 32,
        "steps": 5,
        "batch_size": 4,
        "lr": 5e-3,
        "weight_decay": 1e-4,
        "channels": [4, 8],
        "mix_prob": 0.5,
        "max_rotation": 20.0,
    }


def test_plan_skips_finished_runs_and_names_a_changed_setting(tmp_path):
    (tmp_path / "none_seed0.json").write_text(json.dumps({"settings": {"a": 1, "b": {"c": 2}}}))
    todo, planned = plan_sweep(tmp_path, ["none", "x"], [0, 1], [None], lambda arm, fold: {"a": 1, "b": {"c": 2}})
    assert planned == [("none", 0, None), ("x", 0, None), ("none", 1, None), ("x", 1, None)]
    assert [(j.arm, j.seed) for j in todo] == [("x", 0), ("none", 1), ("x", 1)]
    with pytest.raises(SettingsMismatchError, match=r"b\.c: stored 2, now 3"):
        check_same_settings(tmp_path / "none_seed0.json", {"a": 1, "b": {"c": 3}})


def test_pairwise_table_by_hand():
    # differences b - a over seeds 0, 1, 2: 0.01, 0.03, 0.02 -> mean 2.00 points, all three up
    table = pairwise_table({"a": {0: 0.5, 1: 0.6, 2: 0.7}, "b": {0: 0.51, 1: 0.63, 2: 0.72}})
    rows = table.splitlines()
    assert rows[0] == "| row − column | a | b |"
    assert rows[3].startswith("| b | +2.00 [") and rows[3].endswith("(3/3 up) | — |")
    assert rows[2].startswith("| a | — | -2.00 [")

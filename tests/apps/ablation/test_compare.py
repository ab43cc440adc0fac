"""Pairing one sweep with another: same arm and seed, same test volumes, the settings that differ named."""

from __future__ import annotations

import json

import pytest

from monai_hsmix.apps.ablation.compare import (
    check_same_test_set,
    compare_table,
    comparison_section,
    setting_differences,
    sweep_runs,
)


def _run(arm, seed, dice, steps=100, volumes=("v1", "v2"), fold=None):
    vols = [{"volume": v, "dice": [d, d], "jaccard": [d, d], "hd95": [1.0, 1.0]} for v, d in zip(volumes, dice)]
    settings = {"data_dir": f"/data/{steps}", "train": {"steps": steps, "lr": 0.005}, "split_seed": 0}
    return {"arm": arm, "seed": seed, "fold": fold, "volumes": vols, "settings": settings}


def test_setting_differences_walk_nested_settings_and_name_both_sides():
    a = {"train": {"steps": 6000, "lr": 0.005}, "arm": {"p": 0.3}, "only_a": 1, "fold": None}
    b = {"train": {"steps": 1500, "lr": 0.005}, "arm": {"p": 0.3}, "fold": 0}
    assert setting_differences(a, b, labels=("here", "there")) == [
        "fold: here None, there 0",
        "only_a: here 1, there not recorded",
        "train.steps: here 6000, there 1500",
    ]
    assert setting_differences(a, a) == []


def test_compare_table_pairs_by_arm_and_seed_and_leaves_out_unpaired_arms():
    here = [_run("none", 0, [0.8, 0.8]), _run("none", 1, [0.7, 0.7]), _run("hsmix", 0, [0.9, 0.9])]
    there = [
        _run("none", 0, [0.6, 0.6], 50),
        _run("none", 1, [0.6, 0.6], 50),
        _run("none", 2, [0.1, 0.1], 50),  # no partner here: must not enter the mean "there"
        _run("cutmix", 0, [0.5, 0.5], 50),
    ]
    text = compare_table(here, there, ["none", "hsmix", "cutmix"])
    rows = [line for line in text.splitlines()[2:]]
    assert len(rows) == 1  # hsmix and cutmix ran in one sweep only
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    assert cells[:4] == ["none", "2", "75.00", "60.00"]
    assert cells[4].startswith("+15.00 [") and cells[4].endswith("(2/2 up)")


def test_folds_pair_only_with_the_same_fold():
    here = [_run("none", 0, [0.8, 0.8], fold=0), _run("none", 0, [0.4, 0.4], fold=1)]
    there = [_run("none", 0, [0.7, 0.7], 50, fold=1)]
    text = compare_table(here, there, ["none"])
    assert "| none | 1 | 40.00 | 70.00 | -30.00 (n = 1, no interval; 0/1 up) |" in text


def test_section_names_what_differs_and_not_the_data_path():
    here = [_run("none", s, [0.8, 0.7]) for s in (0, 1)]
    there = [_run("none", s, [0.6, 0.7], 50) for s in (0, 1)]
    text = comparison_section(here, there, ["none"], "sweeps/short")
    assert "### Against `sweeps/short`" in text
    assert "Settings that differ: train.steps: here 100, there 50. 2 runs pair" in text
    assert "data_dir" not in text


def test_other_test_volumes_or_no_shared_run_are_refused():
    here = [_run("none", 0, [0.8, 0.7])]
    with pytest.raises(ValueError, match="tested on other volumes.*only here \\['v2'\\], only there \\['v3'\\]"):
        check_same_test_set(here, [_run("none", 0, [0.8, 0.7], volumes=("v1", "v3"))], "other")
    with pytest.raises(ValueError, match="shares no arm and seed"):
        comparison_section(here, [_run("none", 5, [0.8, 0.7])], ["none"], "other")


def test_sweep_runs_needs_a_folder_with_finished_runs(tmp_path):
    with pytest.raises(ValueError, match="no runs/ folder"):
        sweep_runs(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / ".partial-1.abc-none_seed0.json").write_text("{")  # a run still being written
    with pytest.raises(ValueError, match="holds no finished runs"):
        sweep_runs(tmp_path)
    (tmp_path / "runs" / "none_seed0.json").write_text(json.dumps(_run("none", 0, [0.5, 0.5])))
    assert [r["seed"] for r in sweep_runs(tmp_path)] == [0]

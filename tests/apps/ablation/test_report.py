"""Aggregation of run JSON files: NaN classes left out, mean ± std over seeds, paired deltas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from monai_hsmix.apps.ablation.report import (
    controls_table,
    curve_styles,
    markdown_tables,
    plot_curves,
    run_means,
    summarise,
    write_report,
)
from monai_hsmix.optional import require


def _run(arm, seed, dice):
    vols = [{"dice": d, "jaccard": d, "hd95": [1.0] * len(d)} for d in dice]
    return {"arm": arm, "seed": seed, "description": arm, "train_seconds": 1.0, "eval_seconds": 1.0, "volumes": vols}


def test_run_means_leave_out_absent_classes():
    means = run_means(_run("none", 0, [[0.5, float("nan")], [0.7, float("nan")]]), "dice")
    assert math.isclose(means[0], 0.6) and math.isnan(means[1])


def test_mean_std_over_seeds_and_paired_delta():
    runs = [
        _run("none", 0, [[0.5, 0.5]]),
        _run("none", 1, [[0.7, 0.7]]),
        _run("mix", 0, [[0.6, 0.6]]),
        _run("mix", 1, [[0.6, 0.6]]),
    ]
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
    assert (tmp_path / "mean_fg_dsc.png").exists() and not (tmp_path / "paired_dsc.png").exists()  # nothing to pair yet


def _fold_run(arm, seed, fold, dice):
    return {**_run(arm, seed, [[dice]]), "fold": fold}


def test_paired_table_against_none_and_the_better_monai_mixer():
    from monai_hsmix.apps.ablation.report import best_monai_mixer, paired_table

    runs = []
    for fold, base in enumerate([0.70, 0.60, 0.80]):
        runs += [
            _fold_run("none", 0, fold, base),
            _fold_run("mixup", 0, fold, base - 0.01),
            _fold_run("cutmix", 0, fold, base + 0.01),
            _fold_run("hsmix", 0, fold, base + [0.02, 0.0, 0.01][fold]),
        ]
    table = summarise(runs, ["none", "mixup", "cutmix", "hsmix"])
    assert best_monai_mixer(table) == "cutmix"
    text = paired_table(table)
    assert "vs cutmix" in text
    row = [line for line in text.splitlines() if line.startswith("| hsmix |")][0].split(" | ")
    # vs none: +2, +0, +1 points -> mean +1.00, 2 of 3 up; vs cutmix: +1, -1, 0 -> mean 0, 1 of 3 up
    assert row[1].startswith("+1.00 [") and row[1].endswith("(2/3 up)")
    assert row[2].startswith("+0.00 [") and row[2].endswith("(1/3 up)")
    # half-width t(2) * 1 / sqrt(3) = 2.48 points > 1: the table says how many pairs +-1 would need
    assert row[3].startswith("2.48 (about ")


def test_controls_table_pairs_only_the_arms_present_and_says_what_each_row_isolates():
    runs = []
    for seed, base in enumerate([0.60, 0.70, 0.65]):
        runs += [
            _run("none", seed, [[base, base]]),
            _run("mixup", seed, [[base + 0.01, base + 0.01]]),
            _run("mixup_paper", seed, [[base + 0.03, base + 0.03]]),
        ]
    assert controls_table(summarise(runs, ["none", "mixup", "mixup_paper"])) == "\n".join(
        [
            "| comparison | Δ mean fg DSC [95% CI] (up) | isolates |",
            "|---|---|---|",
            "| mixup_paper − mixup | +2.00 [+2.00, +2.00] (3/3 up) | the paper's protocol against B samples mixed at "
            "half the steps, MixUp's mixing |",
        ]
    )
    assert controls_table(summarise(runs[:1], ["none"])) is None  # nothing to pair
    table = summarise(
        [{**r, "arm": {"mixup": "grid_hard", "mixup_paper": "hsmix_hard"}.get(r["arm"], "none")} for r in runs],
        ["none", "grid_hard", "hsmix_hard"],
    )
    assert (
        "| hsmix_hard − grid_hard | +2.00 [+2.00, +2.00] (3/3 up) | superpixels against the cells of a 7 x 7 grid"
        in (controls_table(table) or "")
    )


@pytest.mark.parametrize("n", [1, 10, 13, 40])
def test_every_curve_has_its_own_style(n):
    """matplotlib's colour cycle has 10 colours: the 11th arm of a sweep drew in the 1st arm's colour."""
    styles = curve_styles(n)
    assert len(styles) == n
    assert len({(s["color"], s["linestyle"], s["marker"]) for s in styles}) == n


def test_learning_curves_draw_each_arm_in_its_style(tmp_path, monkeypatch):
    drawn = []
    matplotlib_axes = require("matplotlib.axes")
    original = matplotlib_axes.Axes.plot

    def spy(self, *args, **kwargs):
        drawn.append((kwargs["label"], kwargs["color"], kwargs["linestyle"], kwargs["marker"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib_axes.Axes, "plot", spy)
    step = np.array([1, 2])
    curves = {
        f"arm{i}": {"step": step, "runs": np.array(1), "mean_fg_dsc": np.array([0.5, 0.6]), "train_loss": np.ones(2)}
        for i in range(12)
    }
    assert plot_curves(curves, tmp_path / "curves.png").stat().st_size > 1000
    assert len(drawn) == 24 and len({d[1:] for d in drawn}) == 12  # two panels, one style per arm

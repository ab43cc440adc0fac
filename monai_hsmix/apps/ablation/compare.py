"""Pair one sweep with another: the same arm and seed (and fold) under another schedule or training set.

A sweep's own report compares arms trained under one set of options. Whether a longer schedule, or more
training patients, changes what an arm scores is a difference *between* sweeps: run ``r`` of arm ``a`` with
seed ``s`` here against run ``a``/``s`` there. Such a pair shares the initialisation and the seed of every
random draw, so its difference holds only what the two commands set differently; the comparison names
those settings, and refuses sweeps scored on different test volumes (their differences would mix the
change of options with a change of test set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from monai_hsmix.apps.ablation.runs import load_runs, mean_fg_dice, run_key
from monai_hsmix.apps.ablation.stats import pair

__all__ = ["comparison_section", "compare_table", "check_same_test_set", "setting_differences", "sweep_runs"]

# recorded per run, but not a setting of the command: the data they were read from is checked by the volumes
_NOT_SETTINGS = ("data_dir",)


class _Missing:
    def __repr__(self) -> str:
        return "not recorded"


_MISSING = _Missing()  # a key one side lacks (a run made before the setting existed), not a None value


def setting_differences(
    first: Any, second: Any, labels: Tuple[str, str] = ("stored", "now"), prefix: str = ""
) -> List[str]:
    """Every leaf of two nested settings dicts that differs, as ``"key.sub: LABEL0 a, LABEL1 b"``."""
    if isinstance(first, dict) and isinstance(second, dict):
        return [
            d
            for k in sorted(set(first) | set(second))
            for d in setting_differences(first.get(k, _MISSING), second.get(k, _MISSING), labels, f"{prefix}{k}.")
        ]
    return [] if first == second else [f"{prefix[:-1]}: {labels[0]} {first!r}, {labels[1]} {second!r}"]


def sweep_runs(folder: Path) -> List[Dict[str, Any]]:
    """The finished runs of the sweep in ``folder`` (its ``runs/*.json``); ``ValueError`` when there are none."""
    runs_dir = Path(folder) / "runs"
    if not runs_dir.is_dir():
        raise ValueError(f"{folder} is not an ablation output folder: it has no runs/ folder")
    runs = load_runs(runs_dir)
    if not runs:
        raise ValueError(f"{folder} holds no finished runs ({runs_dir}/*.json)")
    return runs


def _pairs(
    runs: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]]
) -> List[Tuple[Mapping[str, Any], Mapping[str, Any]]]:
    there = {(r["arm"], run_key(r)): r for r in other}
    return [(r, there[(r["arm"], run_key(r))]) for r in runs if (r["arm"], run_key(r)) in there]


def check_same_test_set(runs: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]], name: str) -> None:
    """Raise ``ValueError`` unless every paired run was scored on the same volumes as its partner."""
    for here, there in _pairs(runs, other):
        mine = [v["volume"] for v in here["volumes"]]
        theirs = [v["volume"] for v in there["volumes"]]
        if mine != theirs:
            only_here = sorted(set(mine) - set(theirs))
            only_there = sorted(set(theirs) - set(mine))
            raise ValueError(
                f"{name}: arm {here['arm']} seed {here['seed']} was tested on other volumes "
                f"({len(mine)} here, {len(theirs)} there; only here {only_here[:3]}, only there {only_there[:3]}): "
                "paired differences need the same test set"
            )


def compare_table(
    runs: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]], arm_order: Sequence[str]
) -> str:
    """Per arm run in both sweeps: mean foreground DSC of each over the paired runs (points), and the paired
    difference here − there with its 95% interval."""
    pairs = _pairs(runs, other)
    lines = ["| arm | runs | here | there | here − there: Δ [95% CI] (up) |", "|---|---|---|---|---|"]
    for arm in arm_order:
        mine = {run_key(h): mean_fg_dice(h) for h, _ in pairs if h["arm"] == arm}
        theirs = {run_key(t): mean_fg_dice(t) for _, t in pairs if t["arm"] == arm}
        diff = pair(mine, theirs)
        if diff is None:
            continue
        cells = [arm, str(diff.n), f"{100 * np.mean(list(mine.values())):.2f}"]
        cells += [f"{100 * np.mean(list(theirs.values())):.2f}", diff.format()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_section(
    runs: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]], arm_order: Sequence[str], name: str
) -> str:
    """The report section against the sweep ``name``: what differs, then :func:`compare_table`.

    The settings named are those that differ in any pair; raises ``ValueError`` when the sweeps share no arm
    and seed, or their shared runs were tested on other volumes.
    """
    pairs = _pairs(runs, other)
    if not pairs:
        raise ValueError(f"{name} shares no arm and seed (and fold) with this sweep: nothing to pair")
    check_same_test_set(runs, other, name)
    differs: Dict[str, None] = {}  # ordered set: the union over the pairs, each difference named once
    for here, there in pairs:
        settings = [{k: v for k, v in r.get("settings", {}).items() if k not in _NOT_SETTINGS} for r in (here, there)]
        differs.update(dict.fromkeys(setting_differences(*settings, labels=("here", "there"))))
    lines = [
        f"### Against `{name}`",
        "",
        f"Settings that differ: {'; '.join(differs) if differs else 'none recorded'}. "
        f"{len(pairs)} runs pair by arm and seed (and fold), tested on the same volumes.",
        "",
        compare_table(runs, other, arm_order),
    ]
    return "\n".join(lines)

"""Reading a sweep's finished runs: one JSON file per arm x seed (x fold) in ``OUT/runs``.

Shared by the report of one sweep and the comparison of two (:mod:`monai_hsmix.apps.ablation.compare`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping

import numpy as np

from monai_hsmix.data.io import PARTIAL_PREFIX

__all__ = ["load_runs", "mean_fg_dice", "run_key", "run_means"]


def load_runs(runs_dir: Path) -> List[Dict[str, Any]]:
    """Every finished run's JSON in ``runs_dir`` (sorted by arm, then seed)."""
    runs = [
        json.loads(p.read_text())
        for p in sorted(Path(runs_dir).glob("*.json"))
        if not p.name.startswith(PARTIAL_PREFIX)
    ]
    return sorted(runs, key=lambda r: (r["arm"], r["seed"], r.get("fold", -1)))


def run_key(run: Mapping[str, Any]) -> Any:
    """What pairs runs of different arms: the seed, and the fold when there are folds."""
    return run["seed"] if run.get("fold") is None else (run["seed"], run["fold"])


def run_means(run: Mapping[str, Any], metric: str) -> np.ndarray:
    """Per-class mean of ``metric`` over a run's volumes (NaN where no volume has the class)."""
    values = np.array([v[metric] for v in run["volumes"]], dtype=float)
    with np.errstate(all="ignore"):
        counts = np.sum(~np.isnan(values), axis=0)
        sums = np.nansum(values, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def mean_fg_dice(run: Mapping[str, Any]) -> float:
    """A run's score in every paired comparison: the mean over foreground classes of its per-class mean DSC."""
    return float(np.nanmean(run_means(run, "dice")))

"""Markdown report of an InsMix sweep: AJI, object Dice and pixel DSC per arm, with paired 95% intervals.

Per run, each score is averaged over the held-out tiles; the tables give mean ± std of these run means,
and paired differences (same seed and fold: same initialisation, crops before mixing, training and test
tiles) against ``none`` and against MONAI CutMix, with Student-t 95% intervals
(:mod:`monai_hsmix.apps.ablation.stats`; folds share training tiles, so the intervals are if anything
too narrow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from monai_hsmix.apps.ablation.runs import load_runs, run_key
from monai_hsmix.apps.ablation.stats import pair
from monai_hsmix.apps.mix_sweep import pairwise_table
from monai_hsmix.data.io import write_bytes_atomic

__all__ = ["cost_table", "run_score", "SCORES", "tables", "write_instance_report"]

SCORES = (("aji", "AJI"), ("object_dice", "object Dice"), ("pixel_dice", "pixel DSC"))


def run_score(run: Mapping[str, Any], score: str) -> float:
    """Mean of ``score`` over a run's held-out tiles."""
    return float(np.mean([row[score] for row in run["volumes"]]))


def _by_key(runs: Sequence[Mapping[str, Any]], score: str) -> Dict[Any, float]:
    return {run_key(r): run_score(r, score) for r in runs}


def _fmt(values: Sequence[float]) -> str:
    arr = 100 * np.asarray(values, dtype=float)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return f"{arr.mean():.2f} ± {std:.2f}"


def tables(
    runs: Sequence[Mapping[str, Any]], arms: Sequence[str], references: Sequence[str] = ("none", "cutmix")
) -> str:
    by_arm = {a: [r for r in runs if r["arm"] == a] for a in arms}
    by_arm = {a: rs for a, rs in by_arm.items() if rs}
    if not by_arm:
        return "No finished runs yet."
    header = ["arm", "runs"] + [title + " (%)" for _, title in SCORES] + ["objects predicted / reference"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, rs in by_arm.items():
        cells = [arm, str(len(rs))] + [_fmt([run_score(r, s) for r in rs]) for s, _ in SCORES]
        pred = np.mean([row["pred_objects"] for r in rs for row in r["volumes"]])
        true = np.mean([row["true_objects"] for r in rs for row in r["volumes"]])
        cells.append(f"{pred:.0f} / {true:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    out = ["## Scores (mean ± std over runs of the per-run mean over held-out tiles)", "", "\n".join(lines)]
    for score, title in SCORES:
        head = ["arm"] + [f"vs {ref}: Δ [95% CI] (up)" for ref in references]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for arm, rs in by_arm.items():
            cells = [arm]
            for ref in references:
                diff = pair(_by_key(rs, score), _by_key(by_arm[ref], score)) if ref in by_arm and ref != arm else None
                cells.append("—" if diff is None else diff.format())
            rows.append("| " + " | ".join(cells) + " |")
        out += ["", f"## Paired differences in {title} (points)", "", "\n".join(rows)]
    # the paper's Table 3 adds one component at a time: each step is a pair of arms
    scores = {arm: _by_key(rs, "aji") for arm, rs in by_arm.items()}
    out += [
        "",
        "## Every pair of arms: paired Δ AJI (points), row − column, 95% CI over seed x fold pairs",
        "",
        pairwise_table(scores),
    ]
    return "\n".join(out)


def cost_table(runs: Sequence[Mapping[str, Any]], arms: Sequence[str]) -> str:
    header = [
        "arm",
        "crops pasted into / drawn",
        "train s/run",
        "of which pasting s",
        "of which runner mixing s",
        "eval s/run",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm in arms:
        rs = [r for r in runs if r["arm"] == arm]
        if not rs:
            continue
        drawn = np.mean([r["mean_sources_per_step"] * r.get("steps", 0) for r in rs])
        pastes = np.mean([r.get("sampler_pastes", 0) for r in rs])
        cells = [arm, f"{pastes:.0f} / {drawn:.0f}"] + [
            f"{np.mean([r[k] for r in rs]):.0f}"
            for k in ("train_seconds", "sampler_mix_seconds", "mix_seconds", "eval_seconds")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_instance_report(
    out_dir: Path,
    arms: Sequence[str],
    header: Mapping[str, Any],
    notes: str,
    planned: Optional[Sequence[Any]] = None,
    title: str = "InsMix ablation report",
) -> Path:
    """Write ``out_dir/report.md`` from the finished runs in ``out_dir/runs`` (only the ``planned`` ones when given)."""
    out_dir = Path(out_dir)
    runs: List[Dict[str, Any]] = load_runs(out_dir / "runs")
    if planned is not None:
        wanted = set(planned)
        runs = [r for r in runs if (r["arm"], r["seed"], r.get("fold")) in wanted]
    lines = [
        f"# {title}",
        "",
        f"Finished runs: {len(runs)} of {len(planned) if planned is not None else len(runs)}.",
        "",
    ]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    commits = sorted({str(r.get("git_commit", "not recorded")) for r in runs})
    lines += [f"- **runs trained at git**: {', '.join(commits) if commits else 'n/a'}", "", notes, "", "## Arms", ""]
    for arm in arms:
        rs = [r for r in runs if r["arm"] == arm]
        if rs:
            keys = sorted({(r["seed"], r.get("fold")) for r in rs}, key=str)
            lines.append(f"- `{arm}` ({len(rs)} runs, seed/fold {keys}): {rs[0].get('description', '')}")
    lines += ["", tables(runs, arms)]
    if runs:
        lines += ["", "## Cost per arm (means over runs)", "", cost_table(runs, arms)]
    path = out_dir / "report.md"
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    return path

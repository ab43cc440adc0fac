"""Aggregate the per-run JSON files of a sweep into a Markdown report and a PNG plot.

Per run, each metric is averaged over the validation volumes (NaN, i.e. class absent, left out);
the report gives mean +- std of these run means over runs (seeds, or seeds x folds), per arm and class.
``Δ vs none`` is the mean of the paired differences of mean foreground Dice to the ``none`` run with the
same seed (and fold); the paired table adds 95% intervals (:mod:`monai_hsmix.apps.ablation.stats`)
against ``none`` and against the better MONAI mixer, and the cost table what each arm's steps hold and
how long they took.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from monai_hsmix.apps.ablation.compare import comparison_section
from monai_hsmix.apps.ablation.runs import load_runs, run_key, run_means
from monai_hsmix.apps.ablation.stats import pair, runs_needed
from monai_hsmix.data.io import write_bytes_atomic
from monai_hsmix.optional import require

__all__ = [
    "best_monai_mixer",
    "CONTROLS",
    "controls_table",
    "cost_table",
    "curve_styles",
    "load_runs",
    "markdown_tables",
    "mean_curves",
    "METRICS",
    "MONAI_MIXERS",
    "paired_table",
    "plot",
    "plot_curves",
    "plot_paired",
    "run_key",
    "run_means",
    "summarise",
    "write_report",
]

MONAI_MIXERS = ("cutmix", "mixup")
METRICS = (("dice", "DSC (%)", 100.0), ("jaccard", "Jaccard (%)", 100.0), ("hd95", "HD95", 1.0))


def _fmt(values: Sequence[float], scale: float) -> str:
    arr = np.asarray(values, dtype=float) * scale
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return "n/a"
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return f"{arr.mean():.2f} ± {std:.2f}"


def summarise(runs: Sequence[Mapping[str, Any]], arm_order: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Per arm: seeds, per-metric ``(seeds, classes)`` arrays and mean foreground Dice per seed."""
    table: Dict[str, Dict[str, Any]] = {}
    for arm in arm_order:
        arm_runs = [r for r in runs if r["arm"] == arm]
        if not arm_runs:
            continue
        entry: Dict[str, Any] = {
            "seeds": [r["seed"] for r in arm_runs],
            "description": arm_runs[0].get("description", ""),
        }
        entry["keys"] = [run_key(r) for r in arm_runs]
        entry["folds"] = sorted({r["fold"] for r in arm_runs if r.get("fold") is not None})
        for metric, _, _ in METRICS:
            entry[metric] = np.stack([run_means(r, metric) for r in arm_runs])
        entry["mean_dice"] = np.nanmean(entry["dice"], axis=1)
        entry["seconds"] = float(np.mean([r["train_seconds"] + r["eval_seconds"] for r in arm_runs]))
        entry["cost"] = {
            field: float(np.mean([r.get(field, math.nan) for r in arm_runs]))
            for field in (
                "samples_per_step",
                "sources_per_step",
                "mean_samples_per_step",
                "mean_sources_per_step",
                "mix_prob",
                "train_seconds",
                "mix_seconds",
                "eval_seconds",
            )
        }
        table[arm] = entry
    return table


def _by_key(entry: Mapping[str, Any]) -> Dict[Any, float]:
    return dict(zip(entry["keys"], entry["mean_dice"]))


def _unit(table: Mapping[str, Mapping[str, Any]]) -> str:
    return "runs" if any(e["folds"] for e in table.values()) else "seeds"


def _delta_vs_none(table: Mapping[str, Mapping[str, Any]], arm: str) -> str:
    if arm == "none" or "none" not in table:
        return "—"
    diff = pair(_by_key(table[arm]), _by_key(table["none"]))
    if diff is None:
        return "n/a"
    return f"{100 * diff.mean:+.2f} ({diff.positive}/{diff.n} {_unit(table)} up)"


def best_monai_mixer(table: Mapping[str, Mapping[str, Any]]) -> Optional[str]:
    """The MONAI mixer (CutMix or MixUp) with the higher mean foreground DSC, if either ran."""
    present = [a for a in MONAI_MIXERS if a in table]
    return max(present, key=lambda a: float(np.mean(table[a]["mean_dice"]))) if present else None


def paired_table(table: Mapping[str, Mapping[str, Any]], reach: float = 1.0) -> str:
    """Paired differences of mean foreground DSC (points) with 95% intervals vs ``none`` and the best MONAI mixer.

    The last column says whether the interval against ``none`` is within ``± reach`` points and, if not,
    about how many pairs the observed spread would need.
    """
    best = best_monai_mixer(table)
    header = [
        "arm",
        "vs none: Δ [95% CI] (up)",
        f"vs {best or 'MONAI mixer'}: Δ [95% CI] (up)",
        f"CI half-width vs none (pairs for ±{reach:g})",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, entry in table.items():
        cells = [arm]
        versus_none = pair(_by_key(entry), _by_key(table["none"])) if "none" in table and arm != "none" else None
        for ref in ("none", best):
            diff = pair(_by_key(entry), _by_key(table[ref])) if ref in table and ref != arm else None
            cells.append("—" if diff is None else diff.format())
        if versus_none is None or versus_none.n < 2:
            cells.append("—")
        else:
            half, sd = 100 * versus_none.half_width, 100 * versus_none.sd
            need = "" if half <= reach or not sd > 0 else f" (about {runs_needed(sd, reach)} pairs)"
            cells.append(f"{half:.2f}{need}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(table: Mapping[str, Mapping[str, Any]]) -> str:
    """Per arm: samples and sources of a mixed step, their means over all steps, wall-clock and mixing time."""
    header = [
        "arm",
        "mixed-step samples",
        "mixed-step sources",
        "mix prob",
        "mean samples/step",
        "mean sources/step",
        "train s/run",
        "of which mixing s",
        "eval s/run",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, entry in table.items():
        c = entry["cost"]
        cells = [arm] + [f"{c[k]:.0f}" for k in ("samples_per_step", "sources_per_step")] + [f"{c['mix_prob']:.2f}"]
        cells += [f"{c[k]:.1f}" for k in ("mean_samples_per_step", "mean_sources_per_step")]
        cells += [f"{c[k]:.0f}" for k in ("train_seconds", "mix_seconds", "eval_seconds")]
        lines.append("| " + " | ".join(cells).replace("nan", "n/a") + " |")
    return "\n".join(lines)


def markdown_tables(table: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]) -> str:
    """One Markdown table per metric (rows: arms; columns: foreground classes and their mean)."""
    out = []
    for metric, title, scale in METRICS:
        header = ["arm", "runs", *class_names, "mean fg"]
        if metric == "dice":
            header.append("Δ mean fg DSC vs none (paired)")
        lines = [f"#### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for arm, entry in table.items():
            values = entry[metric]
            cells = [arm, str(len(entry["seeds"]))]
            cells += [_fmt(values[:, c], scale) for c in range(values.shape[1])]
            cells.append(_fmt(np.nanmean(values, axis=1), scale))
            if metric == "dice":
                cells.append(_delta_vs_none(table, arm))
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def plot(table: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    """Bar chart of mean foreground DSC per arm (mean ± std over seeds, each seed as a dot)."""
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    arms = list(table)
    fig, ax = plt.subplots(figsize=(1.1 * len(arms) + 2, 4), dpi=120)
    means = [100 * float(np.mean(table[a]["mean_dice"])) for a in arms]
    stds = [100 * float(np.std(table[a]["mean_dice"], ddof=1)) if len(table[a]["seeds"]) > 1 else 0.0 for a in arms]
    ax.bar(range(len(arms)), means, yerr=stds, capsize=4, color="#9ecae1", edgecolor="#3182bd")
    for i, a in enumerate(arms):
        ax.scatter([i] * len(table[a]["mean_dice"]), 100 * table[a]["mean_dice"], color="k", s=12, zorder=3)
    if "none" in table:
        ax.axhline(
            100 * float(np.mean(table["none"]["mean_dice"])), color="#de2d26", lw=1, ls="--", label="none (mean)"
        )
        ax.legend(loc="lower right")
    finite = [m - s for m, s in zip(means, stds) if math.isfinite(m)]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 10), min(100.0, max(means) + max(stds) + 5))
    ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
    ax.set_ylabel("mean foreground DSC (%)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_paired(table: Mapping[str, Mapping[str, Any]], path: Path) -> Optional[Path]:
    """Paired difference to ``none`` per arm (points), each pair a dot, the mean with its 95% interval."""
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    if "none" not in table:
        return None
    arms = [a for a in table if a != "none"]
    diffs = {a: pair(_by_key(table[a]), _by_key(table["none"])) for a in arms}
    arms = [a for a in arms if diffs[a] is not None]
    if not arms:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(arms) + 1.5), dpi=120)
    base = _by_key(table["none"])
    for i, arm in enumerate(arms):
        mine = _by_key(table[arm])
        points = [100 * (mine[k] - base[k]) for k in mine if k in base]
        ax.scatter(points, [i] * len(points), color="#969696", s=10, zorder=2)
        d = diffs[arm]
        if d.n > 1:
            ax.plot([100 * d.lo, 100 * d.hi], [i, i], color="#3182bd", lw=2, zorder=3)
        ax.scatter([100 * d.mean], [i], color="#08519c", s=30, zorder=4)
    ax.axvline(0, color="#de2d26", lw=1, ls="--")
    ax.set_yticks(range(len(arms)), arms)
    ax.invert_yaxis()
    ax.set_xlabel("paired Δ mean foreground DSC vs none (points), mean and 95% CI")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# (arm, reference, what the difference isolates): each pair differs in one factor only
CONTROLS = (
    (
        "hsmix_paper",
        "none_2b",
        "the mixing, at the paper's protocol (both see 2B samples at every step; only hsmix_paper mixes)",
    ),
    ("hsmix_paper", "cutmix_paper", "superpixel + saliency mixing against CutMix's boxes, protocol held equal"),
    ("hsmix_paper", "mixup_paper", "superpixel + saliency mixing against MixUp's global blend, protocol held equal"),
    ("cutmix_paper", "none_2b", "CutMix's boxes at the paper's protocol"),
    ("none_2b", "none", "twice the unmixed samples per step (the protocol's extra compute, no mixing)"),
    ("hsmix_both", "cutmix", "superpixel + saliency mixing against CutMix at equal samples per step"),
    ("hsmix_both", "mixup", "superpixel + saliency mixing against MixUp at equal samples per step"),
    ("hsmix_paper", "hsmix_both", "the paper's protocol against equal samples, the same mixing"),
    ("cutmix_paper", "cutmix", "the paper's protocol against B samples mixed at half the steps, CutMix's mixing"),
    ("mixup_paper", "mixup", "the paper's protocol against B samples mixed at half the steps, MixUp's mixing"),
    # the paper's Table 7 ablations, each against its own one-component variant
    ("hsmix_hard", "grid_hard", "superpixels against the cells of a 7 x 7 grid as the regions of hard mixing"),
    ("hsmix_soft", "beta_soft", "the saliency ratio against one Beta ratio per image in soft mixing"),
    ("hsmix_soft", "pixel_soft", "the saliency ratio averaged per superpixel against the pixel-wise ratio"),
)


def controls_table(table: Mapping[str, Mapping[str, Any]]) -> Optional[str]:
    """The paired comparisons among the arms present that each isolate one factor (see :data:`CONTROLS`)."""
    lines = ["| comparison | Δ mean fg DSC [95% CI] (up) | isolates |", "|---|---|---|"]
    for arm, ref, what in CONTROLS:
        if arm in table and ref in table:
            diff = pair(_by_key(table[arm]), _by_key(table[ref]))
            if diff is not None:
                lines.append(f"| {arm} − {ref} | {diff.format()} | {what} |")
    return "\n".join(lines) if len(lines) > 2 else None


def mean_curves(runs: Sequence[Mapping[str, Any]], arm_order: Sequence[str]) -> Dict[str, Dict[str, np.ndarray]]:
    """Per arm with learning curves: the steps, and the mean over runs of test DSC and training loss at each."""
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for arm in arm_order:
        curves = [r["curve"] for r in runs if r["arm"] == arm and r.get("curve")]
        if not curves:
            continue
        steps = sorted(set.intersection(*({int(p["step"]) for p in c} for c in curves)))
        if not steps:
            continue
        at = [{int(p["step"]): p for p in c} for c in curves]
        out[arm] = {
            "step": np.array(steps),
            "runs": np.array(len(curves)),
            **{
                key: np.array([np.nanmean([c[s][key] for c in at]) for s in steps])
                for key in ("mean_fg_dsc", "train_loss")
            },
        }
    return out


_CURVE_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")
_CURVE_LINES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def curve_styles(n: int) -> List[Dict[str, str]]:
    """``n`` distinct (colour, line, marker) styles: the 10 default colours, then again with another line.

    matplotlib's own cycle repeats after 10 lines, and a sweep of every arm has more; beyond 40 the styles
    repeat (a figure with that many curves is unreadable anyway).
    """
    styles = [
        {"color": colour, "linestyle": line, "marker": marker}
        for line, marker in _CURVE_LINES
        for colour in _CURVE_COLOURS
    ]
    return [styles[i % len(styles)] for i in range(n)]


def plot_curves(curves: Mapping[str, Mapping[str, np.ndarray]], path: Path) -> Path:
    """Mean test DSC and mean training loss per arm against the optimiser step, one style per arm."""
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    fig, (dsc, loss) = plt.subplots(1, 2, figsize=(13, 4), dpi=120)
    for (arm, c), style in zip(curves.items(), curve_styles(len(curves))):
        label = f"{arm} ({int(c['runs'])} runs)"
        dsc.plot(c["step"], 100 * c["mean_fg_dsc"], ms=3, label=label, **style)
        loss.plot(c["step"], c["train_loss"], ms=3, label=label, **style)
    dsc.set_xlabel("step")
    dsc.set_ylabel("test mean foreground DSC (%)")
    loss.set_xlabel("step")
    loss.set_ylabel("training loss (mean since the previous point)")
    loss.set_yscale("log")
    # outside the axes: with a dozen arms a legend inside covers the curves it names
    loss.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(
    out_dir: Path,
    arm_order: Sequence[str],
    class_names: Sequence[str],
    expected_runs: int,
    header: Mapping[str, Any],
    notes: Optional[str] = None,
    planned: Optional[Sequence[Any]] = None,
    compare_to: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None,
) -> Path:
    """Write ``report.md`` and ``mean_fg_dsc.png`` in ``out_dir`` from the JSON files in ``out_dir/runs``.

    With ``planned`` (``(arm, seed, fold)`` triples), only those runs are reported: a folder may also hold runs
    of other seeds kept for a later session, which must not change this command's tables. ``compare_to`` maps
    the name of another sweep to its runs: the report pairs each of this sweep's runs with the run of the same
    arm and seed (and fold) there (:func:`~monai_hsmix.apps.ablation.compare.comparison_section`).
    """
    out_dir = Path(out_dir)
    runs = load_runs(out_dir / "runs")
    if planned is not None:
        wanted = set(planned)
        runs = [r for r in runs if (r["arm"], r["seed"], r.get("fold")) in wanted]
    table = summarise(runs, arm_order)
    lines = ["# HSMix ablation report", ""]
    lines.append(f"Finished runs: {len(runs)} of {expected_runs}.")
    lines.append("")
    for key, value in header.items():
        lines.append(f"- **{key}**: {value}")
    commits = sorted({str(r.get("git_commit", "not recorded")) for r in runs})
    lines.append(f"- **runs trained at git**: {', '.join(commits) if commits else 'n/a'}")
    if notes:
        lines += ["", notes]
    lines += ["", "## Arms", ""]
    for arm, entry in table.items():
        folds = f", folds {entry['folds']}" if entry["folds"] else ""
        lines.append(
            f"- `{arm}` (seeds {sorted(set(entry['seeds']))}{folds}, {entry['seconds']:.0f} s per run): "
            f"{entry['description']}"
        )
    lines += [
        "",
        f"## Results (mean ± std over {_unit(table) if table else 'runs'} of the per-run mean over "
        "validation images/volumes)",
        "",
    ]
    lines.append(markdown_tables(table, class_names) if table else "No finished runs yet.")
    if table:
        lines += [
            "",
            "## Paired differences in mean foreground DSC (points)",
            "",
            "Runs are paired by seed (and fold); 95% Student-t interval over the pairs; (k/n up): pairs where the arm "
            "scored higher. Folds share training images, so the intervals are if anything too narrow.",
            "",
            paired_table(table),
            "",
            "## Cost per arm (means over runs)",
            "",
            cost_table(table),
        ]
        plot(table, out_dir / "mean_fg_dsc.png", f"{len(runs)} runs")
        lines += ["", "![mean foreground DSC per arm](mean_fg_dsc.png)"]
        if plot_paired(table, out_dir / "paired_dsc.png"):
            lines += ["", "![paired differences to none](paired_dsc.png)"]
        controls = controls_table(table)
        if controls:
            lines += [
                "",
                "## Comparisons that isolate one factor",
                "",
                "Each row pairs two arms that differ in one thing only (same seeds and folds).",
                "",
                controls,
            ]
        curves = mean_curves(runs, arm_order)
        if curves:
            plot_curves(curves, out_dir / "learning_curves.png")
            lines += [
                "",
                "## Learning curves",
                "",
                "Test-set mean foreground DSC and training loss every `--eval-every` steps, mean over each arm's runs: "
                "whether the baseline overfits, and whether mixing delays it.",
                "",
                "![learning curves](learning_curves.png)",
            ]
    if table and compare_to:
        lines += [
            "",
            "## Against other sweeps",
            "",
            "The same arm and seed (and fold) here and in another sweep of the same test set: the difference holds "
            "only the settings named (e.g. a longer schedule, more training patients).",
        ]
        for name, other in compare_to.items():
            lines += ["", comparison_section(runs, other, arm_order, name)]
    path = out_dir / "report.md"
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    return path

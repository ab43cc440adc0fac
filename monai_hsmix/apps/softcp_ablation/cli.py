"""Does Soft-CP help lesion segmentation with few training cases? Train the same 2D UNet under each arm.

Example (CPU-sized, the BraTS 2015 subset)::

    python -m monai_hsmix.apps.softcp_ablation --data-dir ../shared/data/brats2015_subset --out runs/softcp \\
        --seeds 0 1 2 --image-size 96 --steps 300

Trains on the axial brain slices of the ``--train-splits`` cases (default ``train/``: the low-data
regime), resized to ``--image-size``, and scores whole-tumour DSC, Jaccard and HD95 per held-out case
(``--test-splits``, default ``validation/`` and ``test/``) in 3D at the stored grid. Arms:

- ``none``: flips and ±20° rotation only (every arm has them);
- ``hard_cp``: a tumour from another training slice pasted with its hard mask (plain copy-paste);
- ``softcp_online``: the same paste through Soft-CP's soft mask, a fresh paste at every draw;
- ``softcp_offline``: Soft-CP synthesis before training: one pasted twin per slice, used in place of
  the slice with the same probability (no new pastes during training).

Pastes keep the lesion 80% inside the main slice's brain mask and under 10% on its existing tumour.
Each arm x seed writes ``OUT/runs/ARM_seedS.json`` atomically; a rerun with the same options skips them
(and refuses, naming the setting, runs made with other settings), then rewrites ``OUT/report.md``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from monai_hsmix.apps.ablation.arms import MixOptions
from monai_hsmix.apps.ablation.evaluate import evaluate
from monai_hsmix.apps.ablation.report import write_report
from monai_hsmix.apps.ablation.runs import load_runs, mean_fg_dice, run_key
from monai_hsmix.apps.ablation.train2d import TrainConfig
from monai_hsmix.apps.mix_sweep import (
    SweepConfig,
    add_training_arguments,
    check_training_arguments,
    pairwise_table,
    plan_sweep,
    run_sweep,
    sweep_header,
    sweep_main,
    train_settings,
)
from monai_hsmix.data.io import write_bytes_atomic
from monai_hsmix.apps.softcp_ablation.data import (
    DEFAULT_BRAIN,
    DEFAULT_CHANNELS,
    DEFAULT_LABEL,
    LesionPasteSampler,
    brain_slices,
    list_cases,
    load_case,
)

__all__ = ["build_parser", "check_arguments", "main", "NOTES", "run", "SoftCPAblationConfig"]

logger = logging.getLogger("monai_hsmix.softcp_ablation")

# arm -> (blend mode or None, offline synthesis, description)
SOFTCP_ARMS: Dict[str, tuple] = {
    "none": (None, False, "flips and ±20° rotation only"),
    "hard_cp": ("hard", False, "copy-paste of a tumour from another training slice with its hard mask, online"),
    "softcp_online": ("soft", False, "Soft-CP: the same paste through the soft mask (alpha 0.7, 5 rings), online"),
    "softcp_offline": ("soft", True, "Soft-CP offline synthesis: one pasted twin per slice made before training"),
}


@dataclass
class SoftCPAblationConfig(SweepConfig):
    """One sweep; the command-line options have the same names (``--data-dir`` is ``data_dir``)."""

    arms: Sequence[str] = tuple(SOFTCP_ARMS)
    seeds: Sequence[int] = (0, 1, 2)
    train_splits: Sequence[str] = ("train",)
    test_splits: Sequence[str] = ("validation", "test")
    channels_files: Sequence[str] = DEFAULT_CHANNELS
    label_file: str = DEFAULT_LABEL
    brain_file: str = DEFAULT_BRAIN
    image_size: int = 96
    alpha: float = 0.7
    num_rings: int = 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.softcp_ablation", description=__doc__.split("\n")[0]
    )
    add_training_arguments(parser, SOFTCP_ARMS)
    parser.add_argument("--train-splits", nargs="+", help="split folders whose cases train (default: train)")
    parser.add_argument(
        "--test-splits", nargs="+", help="split folders whose cases are scored (default: validation test)"
    )
    parser.add_argument("--channels-files", nargs="+", help="one NIfTI file name per input channel in each case folder")
    parser.add_argument("--label-file", help="tumour label file (non-zero = whole tumour)")
    parser.add_argument("--brain-file", help="brain mask file (pastes stay inside it)")
    parser.add_argument("--image-size", type=int, help="training slices are resized to it")
    parser.add_argument("--mix-prob", type=float, help="share of drawn slices that get a pasted tumour (pasting arms)")
    parser.add_argument("--alpha", type=float, help="Soft-CP: weight alpha**k of the k-th ring")
    parser.add_argument("--num-rings", type=int, help="Soft-CP: rings of the soft mask")
    return parser


def check_arguments(args: SoftCPAblationConfig) -> None:
    """Raise ``ValueError`` for a bad option before anything loads or trains."""
    check_training_arguments(args, SOFTCP_ARMS)
    shared = sorted(set(args.train_splits) & set(args.test_splits))
    if shared:
        raise ValueError(f"splits {shared} are both training and test splits")
    args.train_config(args.image_size)
    from monai_hsmix.apps.softcp_ablation.data import make_paster

    make_paster("soft", 0, args.alpha, args.num_rings)  # alpha, num_rings


def run(args: SoftCPAblationConfig) -> Path:
    """Train the missing arm x seed runs, then write the report; returns the report path."""
    torch.set_num_threads(args.threads)
    config = args.train_config(args.image_size)
    train_dirs, test_dirs = list_cases(args.data_dir, args.train_splits), list_cases(args.data_dir, args.test_splits)
    base = {
        "data_dir": str(args.data_dir.resolve()),
        "train_cases": [p.name for p in train_dirs],
        "test_cases": [p.name for p in test_dirs],
        "channels_files": list(args.channels_files),
        "label_file": args.label_file,
        "brain_file": args.brain_file,
        "train": train_settings(config),
    }

    def settings_of(arm: str, fold: Optional[int]) -> Dict[str, Any]:
        mode, offline, _ = SOFTCP_ARMS[arm]
        extra = {} if mode != "soft" else {"alpha": args.alpha, "num_rings": args.num_rings}
        return {**base, "arm": {"mode": mode, "offline": offline, **extra}}

    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo, planned = plan_sweep(runs_dir, args.arms, args.seeds, [None], settings_of)
    if todo and not args.report_only:
        load = lambda folder: load_case(folder, args.channels_files, args.label_file, args.brain_file)  # noqa: E731
        train_cases, test_cases = [load(p) for p in train_dirs], [load(p) for p in test_dirs]
        slices = brain_slices(train_cases, args.image_size)
        volumes = [c.volume for c in test_cases]
        logger.info(
            "%d training cases (%d brain slices), %d test cases, %d runs to train",
            len(train_cases),
            slices.images.shape[0],
            len(test_cases),
            len(todo),
        )

        def sampler_of(arm: str, seed: int, fold: Optional[int]) -> LesionPasteSampler:
            mode, offline, _ = SOFTCP_ARMS[arm]
            return LesionPasteSampler(
                slices, mode, offline, args.mix_prob, seed, alpha=args.alpha, num_rings=args.num_rings
            )

        run_sweep(
            todo,
            sampler_of,
            lambda fold: lambda model: evaluate(model, volumes, args.image_size, 2),
            lambda a: "none",
            lambda a: SOFTCP_ARMS[a][2],
            2,
            config,
            MixOptions(num_classes=2),
        )
    report = write_report(
        args.out,
        args.arms,
        ["whole tumour"],
        expected_runs=len(planned),
        header=_header(args, config, train_dirs, test_dirs),
        notes=NOTES,
        planned=planned,
    )
    # the shared report writer titles itself for HSMix and compares arms only with none and MONAI's mixers
    text = report.read_text().replace("# HSMix ablation report", "# Soft-CP ablation report", 1)
    write_bytes_atomic(report, (text + _extra_tables(args.out, planned)).encode())
    return report


def _extra_tables(out: Path, planned) -> str:
    """Every arm against every other (hard vs soft, online vs offline), and the runs that found no tumour at all."""
    wanted = set(planned)
    runs = [r for r in load_runs(out / "runs") if (r["arm"], r["seed"], r.get("fold")) in wanted]
    if not runs:
        return ""
    arms = [a for a in SOFTCP_ARMS if any(r["arm"] == a for r in runs)]
    scores = {a: {run_key(r): mean_fg_dice(r) for r in runs if r["arm"] == a} for a in arms}
    lines = [
        "",
        "## Every pair of arms: paired Δ whole-tumour DSC (points), row − column, 95% CI over seeds",
        "",
        pairwise_table(scores),
        "",
        "## Runs that predicted no tumour in any test case",
        "",
    ]
    for arm in arms:
        empty = sorted(r["seed"] for r in runs if r["arm"] == arm and all(v["dice"][0] == 0 for v in r["volumes"]))
        lines.append(f"- `{arm}`: {len(empty)} of {len(scores[arm])} runs" + (f" (seeds {empty})" if empty else ""))
    return "\n".join(lines) + "\n"


NOTES = (
    "Every arm trains the same 2D MONAI UNet (2 outputs: background, whole tumour) with the same AdamW/poly schedule, "
    "steps and batch; softmax Dice (soft labels) + cross-entropy; all arms share the random flips and ±20° rotation. "
    "Pasting happens in the slice sampler: slices come from the runner's generator (the same in every arm for a seed), "
    "the paste coin, donor slice and placement from a separate seeded stream; the runner's own mixing is off (its "
    "`none` arm), so the cost table's mixing column is 0 and the mix prob shown there is not used. Evaluation: each "
    "held-out case predicted slice by slice at the training size, logits resized back to 240 x 240, 3D whole-tumour "
    "DSC and Jaccard from MONAI, HD95 = MONAI HausdorffDistanceMetric(percentile=95) in mm (larger of the two directed "
    "95th percentiles). The interval is over seeds only: one fixed split of cases."
)


def _header(args: SoftCPAblationConfig, config: TrainConfig, train_dirs, test_dirs) -> Dict[str, Any]:
    data = (
        f"{args.data_dir} — training cases {[p.name for p in train_dirs]} (splits {list(args.train_splits)}), "
        f"test cases {[p.name for p in test_dirs]} (splits {list(args.test_splits)}); "
        f"channels {list(args.channels_files)}"
    )
    extra = f"paste prob {config.mix_prob}, Soft-CP alpha {args.alpha}, {args.num_rings} rings"
    return sweep_header("monai_hsmix.apps.softcp_ablation", args, config, data, "slices", extra)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return sweep_main(SoftCPAblationConfig, build_parser(), argv, check_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())

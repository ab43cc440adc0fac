"""Record in a bundle's ``configs/metadata.json`` what a run actually used and achieved.

``python -m monai_hsmix.apps.bundle_metadata --bundle brats2018_hsmix``
    sets ``monai_version``, ``pytorch_version``, ``numpy_version`` and every entry of
    ``required_packages_version`` to the versions installed in this environment;
``... --eval-dir outputs/eval --command "python -m ..."``
    also sets ``eval_metrics`` from the ``summary.csv`` that ``evaluate.yaml`` writes (mean Dice and
    per-class Dice / HD95 means) and ``eval_metrics_source`` to the command that produced it.

The file is rewritten atomically (temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import argparse
import csv
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Dict, Optional, Sequence

from monai_hsmix.bundle.utils import BUNDLES, bundle_dir
from monai_hsmix.data.io import write_bytes_atomic

__all__ = [
    "installed_version",
    "main",
    "read_report_summary",
    "record_eval_metrics",
    "record_versions",
    "update_metadata",
]


def installed_version(package: str) -> str:
    """Installed version of a distribution (``monai_hsmix`` from its ``__version__``), without local tags."""
    if package == "monai_hsmix":
        import monai_hsmix

        return monai_hsmix.__version__
    try:
        return version(package).split("+")[0]
    except PackageNotFoundError:
        raise ValueError(f"package {package!r} listed in required_packages_version is not installed") from None


def record_versions(meta: Dict[str, object]) -> Dict[str, object]:
    """``meta`` with the framework and required-package versions of this environment."""
    import monai
    import numpy
    import torch

    out = dict(meta)
    out["monai_version"] = monai.__version__.split("+")[0]
    out["pytorch_version"] = torch.__version__.split("+")[0]
    out["numpy_version"] = numpy.__version__
    out["required_packages_version"] = {
        p: installed_version(p) for p in dict(meta.get("required_packages_version", {}))
    }
    return out


def read_report_summary(summary_csv) -> Dict[str, Dict[str, float]]:
    """``{metric label: {class: mean}}`` from the ``summary.csv`` of a
    :class:`~monai_hsmix.engines.reporting.SegmentationReport`."""
    path = Path(summary_csv)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation summary not found: {path} (run evaluate.yaml first)")
    rows = list(csv.DictReader(path.read_text().splitlines()))
    if not rows or not {"metric", "class", "mean"} <= set(rows[0]):
        raise ValueError(f"{path}: not a SegmentationReport summary (columns metric, class, mean expected)")
    out: Dict[str, Dict[str, float]] = {}
    for row in rows:
        out.setdefault(row["metric"], {})[row["class"]] = float(row["mean"])
    return out


def record_eval_metrics(
    meta: Dict[str, object], summary: Dict[str, Dict[str, float]], command: str
) -> Dict[str, object]:
    """``meta`` with ``eval_metrics`` (mean Dice over classes, per-class Dice and HD95) and their source."""
    dice = next((v for k, v in summary.items() if k.lower().startswith("dice")), None)
    if dice is None:
        raise ValueError(f"the summary has no Dice rows (metrics: {sorted(summary)})")
    finite = [v for v in dice.values() if v == v]
    metrics: Dict[str, float] = {"mean_dice": round(sum(finite) / len(finite), 4) if finite else None}
    for label, per_class in summary.items():
        key = label.lower().split(" ")[0]
        for cls, value in per_class.items():
            metrics[f"{key}_{cls}"] = round(value, 4) if value == value else None
    out = dict(meta)
    out["eval_metrics"] = metrics
    out["eval_metrics_source"] = command
    return out


def update_metadata(meta_file, eval_dir: Optional[str] = None, command: Optional[str] = None) -> Dict[str, object]:
    """Rewrite ``meta_file`` with this environment's versions (and ``eval_dir``'s metrics); returns the new metadata."""
    path = Path(meta_file)
    meta = record_versions(json.loads(path.read_text()))
    if eval_dir is not None:
        if not command:
            raise ValueError("--command is required with --eval-dir: the metrics must say how they were obtained")
        meta = record_eval_metrics(meta, read_report_summary(Path(eval_dir) / "summary.csv"), command)
    write_bytes_atomic(path, (json.dumps(meta, indent=4) + "\n").encode())
    return meta


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.bundle_metadata",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bundle", choices=BUNDLES, help="a bundle of this repository")
    parser.add_argument("--meta-file", help="a metadata.json elsewhere (instead of --bundle)")
    parser.add_argument("--eval-dir", help="folder with the summary.csv of an evaluate.yaml run")
    parser.add_argument("--command", help="the commands that trained and evaluated (stored with the metrics)")
    args = parser.parse_args(argv)
    if bool(args.bundle) == bool(args.meta_file):
        parser.error("give exactly one of --bundle and --meta-file")
    meta_file = args.meta_file or bundle_dir(args.bundle) / "configs" / "metadata.json"
    meta = update_metadata(meta_file, args.eval_dir, args.command)
    print(
        f"updated {meta_file}: monai {meta['monai_version']}, torch {meta['pytorch_version']}"
        + (f", eval_metrics {meta['eval_metrics']}" if args.eval_dir else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

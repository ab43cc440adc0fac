"""Helpers around the bundles in ``bundles/``: where they are, and reading their evaluation output."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Sequence

__all__ = ["bundle_dir", "BUNDLES", "read_metric_summary", "REGION_NAMES"]

BUNDLES = ("synapse_hsmix", "brats2018_hsmix")
REGION_NAMES = {"brats2018_hsmix": ("WT", "TC", "ET"),
                "synapse_hsmix": ("spleen", "right_kidney", "left_kidney", "gallbladder", "liver", "stomach",
                                  "aorta", "pancreas")}


def bundle_dir(name: str) -> Path:
    """Folder of a bundle shipped in this repository's ``bundles/`` (``synapse_hsmix``, ``brats2018_hsmix``)."""
    if name not in BUNDLES:
        raise ValueError(f"unknown bundle {name!r}; expected one of {BUNDLES}")
    path = Path(__file__).resolve().parents[2] / "bundles" / name
    if not (path / "configs" / "metadata.json").is_file():
        raise FileNotFoundError(f"bundle {name!r} not found at {path} (the bundles ship with the source tree)")
    return path


def read_metric_summary(summary_csv, class_names: Sequence[str]) -> Dict[str, float]:
    """Per-class means from a MONAI ``MetricsSaver`` ``<metric>_summary.csv``.

    Rows ``class0``, ``class1``, ... are renamed to ``class_names`` in order; the ``mean`` row (the
    average over classes of the per-case averages) is kept as ``"mean"``.
    """
    path = Path(summary_csv)
    if not path.is_file():
        raise FileNotFoundError(f"metric summary not found: {path}")
    text = path.read_text()
    rows = list(csv.reader(text.splitlines(), delimiter="\t" if "\t" in text.splitlines()[0] else ","))
    header, body = rows[0], rows[1:]
    if header[:2] != ["class", "mean"]:
        raise ValueError(f"{path}: not a MetricsSaver summary (header {header})")
    values = {row[0]: float(row[1]) for row in body if row}
    classes = [k for k in values if k.startswith("class")]
    if len(classes) != len(class_names):
        raise ValueError(f"{path}: {len(classes)} classes but {len(class_names)} names given")
    out = {name: values[f"class{i}"] for i, name in enumerate(class_names)}
    if "mean" in values:
        out["mean"] = values["mean"]
    return out

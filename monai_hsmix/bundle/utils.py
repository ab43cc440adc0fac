"""Helpers around the bundles in ``bundles/``: where they are, and reading their evaluation output."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Sequence

__all__ = ["bundle_dir", "BUNDLES", "read_metric_summary", "REGION_NAMES"]

BUNDLES = ("synapse_hsmix", "brats2018_hsmix")
REGION_NAMES = {
    "brats2018_hsmix": ("WT", "TC", "ET"),
    "synapse_hsmix": ("spleen", "right_kidney", "left_kidney", "gallbladder", "liver", "stomach", "aorta", "pancreas"),
}


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


# the configs monai.bundle.load can read: it looks for configs/<workflow_type>.json only (JSON, not YAML)
JSON_CONFIGS = ("train", "inference")


def json_config_text(yaml_file) -> str:
    """The JSON form of a bundle's YAML config (same content; YAML comments are not carried over)."""
    import json

    import yaml

    path = Path(yaml_file)
    content = yaml.safe_load(path.read_text())
    if not isinstance(content, dict):
        raise ValueError(f"{path}: a bundle config must be a mapping, got {type(content).__name__}")
    return json.dumps(content, indent=4) + "\n"


def write_json_configs(bundle_folder) -> list:
    """Write ``configs/<name>.json`` from ``configs/<name>.yaml`` for :data:`JSON_CONFIGS`, atomically.

    MONAI's ``monai.bundle.load`` builds the network from ``configs/train.json`` (or ``<workflow_type>.json``)
    and returns only a state dict when that file is missing; the YAML files stay the ones to edit.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from monai_hsmix.data.io import write_bytes_atomic

    folder = Path(bundle_folder) / "configs"
    written = []
    for name in JSON_CONFIGS:
        source = folder / f"{name}.yaml"
        if not source.is_file():
            raise FileNotFoundError(f"bundle config not found: {source}")
        target = folder / f"{name}.json"
        write_bytes_atomic(target, json_config_text(source).encode())
        written.append(target)
    return written

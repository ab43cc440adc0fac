"""Reading MetricsSaver summaries and locating the shipped bundles."""

from __future__ import annotations

import pytest

from monai_hsmix.bundle.utils import bundle_dir, read_metric_summary


def test_read_metric_summary_maps_class_rows_to_names(tmp_path):
    path = tmp_path / "val_mean_dice_summary.csv"
    path.write_text("class,mean,median\nclass0,0.5,0.4\nclass1,0.25,0.2\nclass2,nan,nan\nmean,0.375,0.3\n")
    out = read_metric_summary(path, ["WT", "TC", "ET"])
    assert out["WT"] == 0.5 and out["TC"] == 0.25 and out["mean"] == 0.375 and out["ET"] != out["ET"]
    path.write_text("class\tmean\nclass0\t0.5\nmean\t0.5\n")
    assert read_metric_summary(path, ["a"]) == {"a": 0.5, "mean": 0.5}
    with pytest.raises(ValueError, match="1 classes but 2 names"):
        read_metric_summary(path, ["a", "b"])
    path.write_text("filename,class0\ncase1,0.1\n")
    with pytest.raises(ValueError, match="not a MetricsSaver summary"):
        read_metric_summary(path, ["a"])
    with pytest.raises(FileNotFoundError):
        read_metric_summary(tmp_path / "none.csv", ["a"])


def test_bundle_dir():
    assert (bundle_dir("synapse_hsmix") / "configs" / "train.yaml").is_file()
    with pytest.raises(ValueError, match="unknown bundle"):
        bundle_dir("acdc_hsmix")

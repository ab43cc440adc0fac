"""Defaults and logs a bundle user meets (issue 25, item 6): the 2015 layout is evaluated on its test split,
2015 data without ``--layout`` is told to pass it, progress bars only on a terminal, demo data announced,
the key metric's mean explained where it differs from the table's, MONAI-internal warnings quieted."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from monai.bundle import ConfigParser

from monai_hsmix.bundle.handlers import KeyMetricNote, quiet_known_warnings
from monai_hsmix.bundle.utils import BUNDLES, bundle_dir
from monai_hsmix.data.brats import find_brats_cases
from monai_hsmix.data.demo_data import resolve_dataset_dir
from monai_hsmix.data.io import DatasetError

from .conftest import log_records


def _parser(bundle, *names, **overrides):
    parser = ConfigParser()
    parser.read_config([str(bundle_dir(bundle) / "configs" / f"{n}.yaml") for n in names])
    for k, v in overrides.items():
        parser[k] = v
    return parser


@pytest.mark.parametrize("layout, split", [("brats2015_deepmedic", "test"), ("brats2018", "val")])
def test_evaluation_split_follows_the_layout(layout, split):
    assert _parser("brats2018_hsmix", "train", "evaluate", layout=layout).get_parsed_content("eval_split") == split


def test_2015_data_read_as_2018_suggests_the_layout(tmp_path):
    for split in ("train", "validation", "test"):
        (tmp_path / split / "case1").mkdir(parents=True)
    with pytest.raises(DatasetError, match="pass --layout brats2015_deepmedic --modalities"):
        find_brats_cases(tmp_path)
    with pytest.raises(DatasetError) as excinfo:  # an empty folder gets no misleading hint
        find_brats_cases(tmp_path / "train" / "case1")
    assert "--layout" not in str(excinfo.value)


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("config", ["train", "inference"])
def test_progress_bars_default_to_off_without_a_terminal(bundle, config):
    # pytest captures stderr, as a log file would
    assert _parser(bundle, config).get_parsed_content("progress") is False


def test_slice_preparation_follows_the_progress_setting():
    parser = _parser("brats2018_hsmix", "train")
    for datalist in ("train#datalist", "validate#datalist"):
        assert "progress=@progress" in parser.get(datalist), datalist


def test_demo_data_is_announced(tmp_path):
    with log_records("monai_hsmix.data.demo_data", logging.WARNING) as records:
        resolve_dataset_dir("", "synapse", tmp_path / "demo", size=16, depth=2)
        resolve_dataset_dir("", "synapse", tmp_path / "demo", size=16, depth=2)
    seen = [r.getMessage() for r in records]
    assert "generating a small synthetic synapse demo dataset" in seen[0] and str(tmp_path / "demo") in seen[0]
    assert "using the synthetic synapse demo dataset" in seen[1]


class _State:
    def __init__(self, details):
        self.metric_details = {"val_mean_dice": details}


class _Engine:
    def __init__(self, details):
        self.state = _State(details)


def _note_messages(details):
    with log_records("monai_hsmix.bundle.handlers") as records:
        KeyMetricNote("val_mean_dice")(_Engine(details))
    return [r.getMessage() for r in records]


def test_key_metric_note_explains_a_different_mean():
    full = np.array([[0.2, 0.4], [0.6, 0.8]])
    assert KeyMetricNote.means(full) == pytest.approx((0.5, 0.5))
    assert _note_messages(full) == []
    # class 1 absent from case 0: MONAI gives (0.2 + 0.6 + 0.8) / 3, the table (0.4 + 0.8) / 2
    gaps = np.array([[0.2, np.nan], [0.6, 0.8]])
    assert KeyMetricNote.means(gaps) == pytest.approx((1.6 / 3, 0.6))
    messages = _note_messages(gaps)
    assert len(messages) == 1 and "0.5333" in messages[0] and "0.6000" in messages[0] and "NaN" in messages[0]


def test_monai_internal_warnings_are_quieted_and_others_kept():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        for _ in range(3):
            warnings.warn(
                "monai.metrics.utils get_mask_edges:always_return_as_numpy: Argument "
                "`always_return_as_numpy` has been deprecated since version 1.5.0.",
                FutureWarning,
            )
            warnings.warn("the ground truth of class 2 is all 0, this may result in nan/inf distance.", UserWarning)
        warnings.warn("something else", FutureWarning)
    assert [str(w.message) for w in caught] == ["something else"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_every_workflow_quiets_the_known_warnings(bundle):
    for names in (["train"], ["inference"], ["train", "evaluate"], ["train", "multi_gpu_train"]):
        steps = _parser(bundle, *names).get("initialize")
        assert "$monai_hsmix.bundle.handlers.quiet_known_warnings()" in steps, (bundle, names)

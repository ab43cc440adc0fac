"""Deliberate CPU thread counts: the default and the bundles' num_threads knob."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser

import monai_hsmix.engines.threads as threads
from monai_hsmix.bundle.utils import BUNDLES, bundle_dir


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)


def test_default_threads_leave_room_for_load_workers_and_ranks(two_cores, monkeypatch):
    assert threads.default_num_threads(load=0.0) == 2
    assert threads.default_num_threads(load=1.2) == 1  # the other core is busy
    assert threads.default_num_threads(load=6.0) == 1  # a loaded machine: never below one
    assert threads.default_num_threads(num_workers=1, load=0.0) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_num_threads(load=0.0) == 1
    monkeypatch.setattr(threads, "usable_cores", lambda: 64)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert threads.default_num_threads(load=0.0) == 8


def test_omp_num_threads_wins_and_bad_values_fail(two_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_num_threads(load=5.0) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        threads.default_num_threads()
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        threads.set_num_threads(0)


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("config", ["train", "inference"])
def test_bundle_num_threads_knob_sets_torch_threads(bundle, config):
    before = torch.get_num_threads()
    parser = ConfigParser()
    parser.read_config(str(bundle_dir(bundle) / "configs" / f"{config}.yaml"))
    assert parser["num_threads"] is None  # documented default: chosen from the machine
    parser["num_threads"] = 3
    init = [i for i, expr in enumerate(parser["initialize"]) if "num_threads" in expr]
    assert init, "no initialize step sets the threads"
    try:
        assert parser.get_parsed_content(f"initialize#{init[0]}") == 3
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)

import math

import numpy as np
import pytest
import torch

from monai_hsmix.apps.train_smooth_gan import TripletBatchSampler, load_tiles, main, parse_args, resolve_device, train
from monai_hsmix.data.nuclei_data import synthetic_nuclei
from monai_hsmix.networks.smooth_gan import load_checkpoint, load_generator

TINY = [
    "--steps",
    "3",
    "--batch-size",
    "2",
    "--crop-size",
    "32",
    "--base-features",
    "4",
    "--disc-features",
    "4",
    "--num-synthetic",
    "2",
    "--log-every",
    "1",
]


@pytest.mark.slow
def test_cli_trains_a_few_cpu_steps_and_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "sg.pt"
    assert main([*TINY, "--device", "cpu", "--output", str(out)]) == 0
    payload = load_checkpoint(out)
    assert payload["step"] == 3 and payload["config"]["device"] == "cpu"
    assert len(payload["history"]) == 3
    for record in payload["history"]:
        assert all(math.isfinite(record[k]) for k in ("d", "g", "g_adv", "g_l1"))
    generator, config = load_generator(out)
    assert config["channels"] == 3 and config["value_range"] == [0.0, 255.0]
    assert "L_D" in capsys.readouterr().out


@pytest.mark.slow
def test_single_channel_training_with_l1_outside_pasted(tmp_path):
    argv = [
        *TINY,
        "--steps",
        "2",
        "--channels",
        "1",
        "--l1-region",
        "outside",
        "--device",
        "cpu",
        "--output",
        str(tmp_path / "g.pt"),
    ]
    path, history = train(parse_args(argv))
    generator, config = load_generator(path)
    assert generator.channels == 1 and config["l1_region"] == "outside" and len(history) == 2


def test_sampler_batches_are_in_range_and_masks_disjoint():
    tiles = [synthetic_nuclei(96, 20, seed=s) for s in range(2)]
    batch = TripletBatchSampler(tiles, 48, np.random.RandomState(0)).sample(4)
    assert batch["image"].shape == batch["anchor"].shape == batch["positive"].shape == (4, 3, 48, 48)
    assert all(batch[k].min() >= -1 and batch[k].max() <= 1 for k in ("image", "anchor", "positive"))
    assert batch["mask_add"].sum() > 0
    assert not torch.any((batch["mask_add"] > 0) & (batch["mask_ori"] > 0))


def test_bad_settings_raise(tmp_path):
    with pytest.raises(ValueError, match="crop-size"):
        train(parse_args([*TINY[:-2], "--crop-size", "16", "--output", str(tmp_path / "x.pt")]))
    with pytest.raises(ValueError, match="at least"):
        TripletBatchSampler([synthetic_nuclei(32, 4)], 64, np.random.RandomState(0))
    with pytest.raises(FileNotFoundError):
        load_tiles(tmp_path, channels=3)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")

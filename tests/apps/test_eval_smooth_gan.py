import pytest
import torch

from monai_hsmix.apps.eval_smooth_gan import SmoothGANEvalConfig, evaluate, main, parse_args
from monai_hsmix.networks.smooth_gan import PatchDiscriminator, SmoothGANGenerator, save_checkpoint


def _checkpoint(tmp_path, residual):
    torch.manual_seed(0)
    config = {"channels": 3, "base_features": 4, "residual": residual, "value_range": [0.0, 255.0]}
    return save_checkpoint(
        tmp_path / f"g{residual}.pt", SmoothGANGenerator(3, 4, residual=residual), PatchDiscriminator(3, 4), config, 0
    )


def _args(*argv):
    return parse_args(list(argv))


def test_identity_generator_changes_nothing_and_a_random_one_does(tmp_path):
    identity = evaluate(_args("--checkpoint", str(_checkpoint(tmp_path, True)), "--last", "1", "--crop-size", "64"))
    assert identity["crops"] >= 1
    assert identity["change"] == 0.0 and identity["gap_after"] == identity["gap_before"]
    random = evaluate(_args("--checkpoint", str(_checkpoint(tmp_path, False)), "--last", "1", "--crop-size", "64"))
    assert random["change"] > 1.0
    assert random["gap_before"] == identity["gap_before"]  # same seeded pastes


def test_cli_prints_the_figures(tmp_path, capsys):
    assert main(["--checkpoint", str(_checkpoint(tmp_path, True)), "--last", "1", "--crop-size", "64"]) == 0
    assert "change 0.000" in capsys.readouterr().out


def test_missing_checkpoint_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        evaluate(SmoothGANEvalConfig(checkpoint=tmp_path / "none.pt"))

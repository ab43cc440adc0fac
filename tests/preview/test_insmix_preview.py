import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from monai_hsmix.networks.smooth_gan import PatchDiscriminator, SmoothGANGenerator, save_checkpoint
from monai_hsmix.preview import insmix


def _args(*argv):
    parser = argparse.ArgumentParser()
    insmix.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_synthetic_preview_with_a_quick_generator_fit(tmp_path):
    out = insmix.run(_args("--crop-size", "64", "--gan-steps", "1", "--output", str(tmp_path / "p.png")))
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 3 * im.size[1]  # five panels side by side
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10  # not a blank figure


def test_monuseg_preview_with_checkpoint(monuseg_dir, tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "g.pt", SmoothGANGenerator(3, 4), PatchDiscriminator(3, 4),
        {"channels": 3, "base_features": 4, "value_range": [0.0, 255.0]}, step=0,
    )  # fmt: skip
    out = insmix.run(
        _args(
            "--monuseg-dir",
            str(monuseg_dir),
            "--crop-size",
            "96",
            "--checkpoint",
            str(ckpt),
            "--output",
            str(tmp_path / "m.png"),
        )
    )
    assert out.is_file() and out.stat().st_size > 10_000


def test_preview_argument_errors(tmp_path, monuseg_dir):
    with pytest.raises(ValueError, match="go together"):
        insmix.run(_args("--image", str(tmp_path / "x.tif")))
    with pytest.raises(ValueError, match="out of range"):
        insmix.run(_args("--monuseg-dir", str(monuseg_dir), "--index", "999"))
    with pytest.raises(ValueError, match="leaves"):
        insmix.run(_args("--monuseg-dir", str(monuseg_dir), "--crop-size", "64", "--crop-top", "990"))

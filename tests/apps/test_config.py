"""Apps parse their command line into a dataclass whose defaults are the only defaults."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from monai_hsmix.apps.config import parse_config


@dataclass
class _Config:
    data_dir: Path
    steps: int = 7
    flag: bool = False


def _parser(extra: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--steps", type=int, help="(default: %(default)s)")
    p.add_argument("--flag", action="store_true")
    if extra:
        p.add_argument("--unknown-option", type=int)
    return p


def test_defaults_come_from_the_dataclass_and_show_in_help():
    parser = _parser()
    assert parse_config(_Config, parser, ["--data-dir", "d"]) == _Config(Path("d"))
    assert parse_config(_Config, _parser(), ["--data-dir", "d", "--steps", "3", "--flag"]) == _Config(
        Path("d"), 3, True
    )
    assert "(default: 7)" in parser.format_help()


def test_an_option_without_a_field_is_an_error():
    with pytest.raises(TypeError, match="unknown_option"):
        parse_config(_Config, _parser(extra=True), ["--data-dir", "d"])


@pytest.mark.parametrize(
    "module, config, required",
    [
        ("monai_hsmix.apps.ablation.cli", "AblationConfig", ["--data-dir", "d", "--out", "o"]),
        ("monai_hsmix.apps.train_smooth_gan", "SmoothGANTrainConfig", []),
        ("monai_hsmix.apps.eval_smooth_gan", "SmoothGANEvalConfig", ["--checkpoint", "c.pt"]),
    ],
)
def test_each_app_parses_into_its_config_with_the_config_defaults(module, config, required):
    import importlib

    app = importlib.import_module(module)
    cls = getattr(app, config)
    parser = app.build_parser() if hasattr(app, "build_parser") else app.add_arguments(argparse.ArgumentParser())
    parsed = parse_config(cls, parser, required)
    assert isinstance(parsed, cls)
    expected = cls(**{k.lstrip("-").replace("-", "_"): v for k, v in zip(required[::2], required[1::2])})
    assert parsed == expected

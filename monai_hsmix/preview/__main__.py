"""Command line entry: ``python -m monai_hsmix.preview SUBCOMMAND [options]``.

Each subcommand lives in ``monai_hsmix.preview.<name>`` and provides ``add_arguments(parser)`` and
``run(args) -> pathlib.Path`` (the PNG written).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Optional, Sequence

__all__ = ["main", "SUBCOMMANDS"]

SUBCOMMANDS = {
    "hsmix": "hard and soft mixing of two images (the paper's Figures 2-3)",
    "softcp": "soft copy-paste of a lesion from a donor case",
    "insmix": "InsMix nuclei copy-paste, background shuffle and harmonisation",
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monai_hsmix.preview", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, help_text in SUBCOMMANDS.items():
        module_name = f"monai_hsmix.preview.{name}"
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue  # a figure module not shipped in this build; argparse lists only those present
        modules[name].add_arguments(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    path = modules[args.command].run(args)
    print(f"preview written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

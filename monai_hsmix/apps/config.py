"""Apps take a configuration dataclass; their command lines only parse ``argv`` into one.

The dataclass is the single source of the defaults: :func:`parse_config` copies them into the
parser (so ``--help`` shows them) and builds the dataclass from the parsed options. A caller in Python
(a preview, a test, a notebook) builds the dataclass directly instead of faking an argparse namespace.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Optional, Sequence, Type, TypeVar

__all__ = ["config_defaults", "parse_config"]

C = TypeVar("C")


def config_defaults(config_cls: type) -> dict:
    """Default value of every field of the dataclass ``config_cls`` that has one."""
    out = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def parse_config(config_cls: Type[C], parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> C:
    """Parse ``argv`` with ``parser`` (whose options are named like the fields) into ``config_cls``.

    An option without a field, or a field that is neither an option nor defaulted, raises ``TypeError``
    from the dataclass, so the parser and the dataclass cannot drift apart unnoticed.
    """
    parser.set_defaults(**config_defaults(config_cls))
    return config_cls(**vars(parser.parse_args(argv)))

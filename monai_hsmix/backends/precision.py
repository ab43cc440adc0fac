"""Backends compute in the dtype they are given, also when called inside a ``torch.autocast`` region.

Autocast rewrites matrix products and convolutions to float16 or bfloat16. SLIC's nearest-centre search
reads the bits of its float32 distances (the candidate number sits in the low mantissa bits), so a float16
product there is not a small rounding difference but a wrong reinterpretation; saliency's 8-bit levels
would lose their exactness. A training loop may well run its whole step, batch preparation included,
under autocast: the backends switch it off for their own duration.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, List, TypeVar

import torch

__all__ = ["autocast_off", "full_precision"]

F = TypeVar("F", bound=Callable)


def _autocast_device_types() -> List[str]:
    """Device types whose autocast is on in this thread."""
    types = []
    for device_type in ("cpu", "cuda"):
        try:
            on = torch.is_autocast_enabled(device_type)
        except TypeError:  # torch < 2.4 has one query per device type
            on = torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
        if on:
            types.append(device_type)
    return types


@contextlib.contextmanager
def autocast_off():
    """Leave every active autocast region for the duration of the block (a no-op when none is active)."""
    with contextlib.ExitStack() as stack:
        for device_type in _autocast_device_types():
            stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        yield


def full_precision(fn: F) -> F:
    """Decorator: ``fn`` runs with autocast switched off (see :func:`autocast_off`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with autocast_off():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

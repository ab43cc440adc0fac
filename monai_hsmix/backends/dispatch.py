"""Which implementation of a torch backend function runs: compiled CPU kernels or torch operations.

The torch backends take and return tensors on the batch's device. On a GPU they are sequences of
batched torch operations. On a CPU the same sequences are many cheap passes over memory, each
paying dispatch and a trip through the caches, so CPU tensors go to fused kernels compiled by
numba instead (``engine="auto"``). ``engine="torch"`` runs the torch operations on any device:
it is what a GPU runs, and lets the tests check both implementations on a CPU.
"""

from __future__ import annotations

import torch

from monai_hsmix.core.numba_mixing import ENGINES, check_engine

__all__ = ["ENGINES", "resolve_engine"]


def resolve_engine(engine: str, device: torch.device) -> str:
    """``"torch"`` or ``"numba"``: the implementation that runs for ``engine`` on ``device``.

    Parameters
    ----------
    engine : {"auto", "torch", "numba"}
        ``"auto"``: numba kernels for CPU tensors, torch operations elsewhere.
    device : torch.device
        Where the batch lives.

    Raises
    ------
    ValueError
        For an unknown name, or ``"numba"`` with a tensor that is not on the CPU.
    """
    check_engine(engine)
    on_cpu = torch.device(device).type == "cpu"
    if engine == "numba" and not on_cpu:
        raise ValueError(f"engine='numba' runs on CPU tensors only, got a tensor on {device}; use 'auto' or 'torch'")
    if engine == "auto":
        return "numba" if on_cpu else "torch"
    return engine

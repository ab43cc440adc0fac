"""CPU thread counts chosen on purpose rather than left to PyTorch's default (one per core).

On a small machine that is already busy, one intra-op thread per core oversubscribes it: measured on
a loaded 2-core machine, the demo took 9 minutes with the default against under 3 with one thread.
The default here counts the cores this process may use, leaves one per data-loader worker and per
other ``torchrun`` process on the node, and subtracts what other processes already keep busy.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Optional

import torch

__all__ = ["default_num_threads", "set_num_threads", "usable_cores"]

logger = logging.getLogger(__name__)

_MAX_DEFAULT = 8  # 2D networks at these sizes gain little beyond this, and other work needs cores


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_num_threads(num_workers: int = 0, load: Optional[float] = None) -> int:
    """Intra-op threads for this process.

    ``OMP_NUM_THREADS`` wins when set. Otherwise: the usable cores, shared among the processes
    ``torchrun`` starts on this node (``LOCAL_WORLD_SIZE``), minus one core per data-loader worker
    and minus the cores other processes keep busy (the 1-minute load average, or ``load``), at
    least 1 and at most 8.

    Parameters
    ----------
    num_workers : int
        Data-loader worker processes each training process starts.
    load : float, optional
        Cores busy with other work; default the 1-minute load average (0 where unavailable).
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS must be a whole number, got {env!r}") from None
    cores = usable_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    local_procs = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    free = cores - math.ceil(max(0.0, float(load)) - 1e-9)
    share = (min(cores, max(free, 1)) // local_procs) - int(num_workers)
    return int(max(1, min(_MAX_DEFAULT, share)))


def set_num_threads(num_threads: Optional[int] = None, num_workers: int = 0) -> int:
    """Set PyTorch's (and OpenCV's) intra-op threads; ``None`` picks :func:`default_num_threads`.

    Returns the number set. The choice is logged once, so a run's log says under which setting it ran.
    """
    n = default_num_threads(num_workers) if num_threads is None else int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    torch.set_num_threads(n)
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:  # OpenCV is optional for most of the package
        pass
    logger.info(f"using {n} CPU thread(s) ({usable_cores()} usable cores; num_threads / OMP_NUM_THREADS to change)")
    return n

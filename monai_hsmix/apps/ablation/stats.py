"""Paired differences between arms, with a 95% interval, so a report can also say "no difference".

Two runs are paired when they share the seed and the fold: same initialisation, same batches before
mixing, same training and test images. The interval is Student's t on the mean of the paired
differences. Folds of one dataset share most of their training images, so their differences are not
independent and the interval is, if anything, too narrow (Nadeau and Bengio, 2003): read it as the
best case for telling arms apart.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Hashable, Mapping, Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ["pair", "paired_difference", "PairedDifference", "runs_needed"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``n`` paired differences, their std, the 95% interval (``lo``, ``hi``) and how many are > 0."""

    mean: float
    sd: float
    lo: float
    hi: float
    n: int
    positive: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def format(self, scale: float = 100.0) -> str:
        if self.n < 2:
            return f"{scale * self.mean:+.2f} (n = {self.n}, no interval; {self.positive}/{self.n} up)"
        interval = f"[{scale * self.lo:+.2f}, {scale * self.hi:+.2f}]"
        return f"{scale * self.mean:+.2f} {interval} ({self.positive}/{self.n} up)"


def paired_difference(differences: Sequence[float], level: float = 0.95) -> PairedDifference:
    """Mean and two-sided Student-t interval of paired differences (NaN-free input)."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0 or not np.isfinite(d).all():
        raise ValueError(f"paired differences must be finite and non-empty, got {differences!r}")
    mean, n = float(d.mean()), int(d.size)
    if n < 2:
        return PairedDifference(mean, math.nan, math.nan, math.nan, n, int((d > 0).sum()))
    with warnings.catch_warnings():
        # equal differences: scipy warns about its zero variance, and the interval is the point, as it should be
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        interval = stats.ttest_1samp(d, 0.0).confidence_interval(level)
    positive = int((d > 0).sum())
    return PairedDifference(mean, float(d.std(ddof=1)), float(interval.low), float(interval.high), n, positive)


def pair(arm: Mapping[Hashable, float], reference: Mapping[Hashable, float]) -> Optional[PairedDifference]:
    """Paired difference ``arm - reference`` over the keys (seed, fold) both have; None if none."""
    keys = sorted(set(arm) & set(reference), key=str)
    if not keys:
        return None
    return paired_difference([arm[k] - reference[k] for k in keys])


def runs_needed(sd: float, half_width: float, level: float = 0.95) -> int:
    """Smallest number of pairs whose t interval half-width is at most ``half_width`` for a spread ``sd``."""
    if not sd > 0 or not half_width > 0:
        raise ValueError(f"sd and half_width must be positive, got {sd} and {half_width}")
    n = 2
    while stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n) > half_width:
        n += 1
    return n

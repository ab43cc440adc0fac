"""MONAI-internal warnings of its surface-distance metrics that a user can do nothing about.

``HausdorffDistanceMetric`` calls ``get_mask_edges`` with an argument MONAI itself deprecated (1.5), and
warns once per class that is empty in the reference or the prediction; our scores already stand for those
cases (NaN for an absent class, the diagonal for a missed one), so evaluations that print them every time
only bury the warnings that matter.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Tuple, Type

__all__ = ["MONAI_METRIC_WARNINGS", "ignore_monai_metric_warnings", "quiet_monai_metric_warnings"]

MONAI_METRIC_WARNINGS: Tuple[Tuple[Type[Warning], str], ...] = (
    (FutureWarning, r".*get_mask_edges:always_return_as_numpy.*"),
    (UserWarning, r"the (ground truth|prediction) of class \d+ is all 0, this may result in nan/inf distance"),
)


def ignore_monai_metric_warnings() -> None:
    """Add an "ignore" filter for each of :data:`MONAI_METRIC_WARNINGS` to the current filters."""
    for category, message in MONAI_METRIC_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


@contextlib.contextmanager
def quiet_monai_metric_warnings() -> Iterator[None]:
    """Ignore :data:`MONAI_METRIC_WARNINGS` inside the block only; the filters outside it are left as they were."""
    with warnings.catch_warnings():
        ignore_monai_metric_warnings()
        yield

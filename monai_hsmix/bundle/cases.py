"""Datasets of named cases for the bundles: an unreadable case is named in the error, or skipped on request.

MONAI wraps an error raised while loading a case twice (``RuntimeError("applying transform ...")`` for the
loader and again for the ``Compose``), and a ``DataLoader`` worker turns it into ``Caught RuntimeError in
DataLoader worker process 0`` followed by the worker's traceback as text; the file's name then sits dozens
of lines into the log. :class:`CaseDataset` raises :class:`CaseError` instead, whose first line names the
case and the file, in the main process and in workers alike. With ``skip_unreadable`` it checks every case
before the run and leaves out those that cannot be read, and :class:`SkippedCasesReport` repeats at the end
of the run which cases were left out and why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from monai.data import Dataset
from monai.transforms import Compose

from monai_hsmix.bundle.errors import error_chain
from monai_hsmix.data.io import DatasetError
from monai_hsmix.engines.reporting import is_main_process
from monai_hsmix.optional import require

Events = require("ignite.engine", "Events")

logger = logging.getLogger(__name__)

__all__ = ["CaseError", "CaseDataset", "SkippedCasesReport", "case_name"]

_WORKER_PREFIX = "Caught "


def case_name(item: Any) -> str:
    """A readable name of a datalist item: its ``name``, ``case`` or path entry (or its repr)."""
    if isinstance(item, dict):
        for key in ("name", "case", "path", "case_dir", "image"):
            if item.get(key):
                return str(item[key]) if key in ("name", "case") else Path(str(item[key])).name
    return repr(item)[:80]


class CaseError(DatasetError):
    """A case of a datalist could not be loaded; the first line of the message names the case and the file.

    A ``DataLoader`` worker re-creates the error in the main process from its type and a message that starts
    with ``Caught CaseError in DataLoader worker process N`` followed by the worker's traceback as text; the
    constructor keeps the error's own message from it, with the worker named at its end.
    """

    def __init__(self, message: str) -> None:
        text = str(message)
        if text.startswith(_WORKER_PREFIX) and "Original Traceback" in text:
            own = [ln for ln in text.splitlines() if ln.split(": ", 1)[0].endswith(type(self).__name__)]
            if own:
                where = text.splitlines()[0].rstrip(".")
                # the worker's traceback ends in this error's own line: it repeats what the line says
                text = own[-1].split(": ", 1)[1] + f" [{where[len(_WORKER_PREFIX) + len(type(self).__name__) + 1:]}]"
        super().__init__(text)


def _first_dataset_error(exc: BaseException) -> Optional[BaseException]:
    return next((e for e in error_chain(exc) if isinstance(e, DatasetError)), None)


def _describe(name: str, exc: BaseException) -> str:
    cause = _first_dataset_error(exc) or exc
    first = (str(cause).splitlines() or [""])[0]
    text = first if isinstance(cause, DatasetError) else f"{type(cause).__name__}: {first}"
    return text if name in text else f"case {name}: {text}"


class CaseDataset(Dataset):
    """MONAI ``Dataset`` of named cases whose loading errors name the case and the file first.

    Parameters
    ----------
    data : sequence of dict
        The datalist; each item's ``name`` (or ``case``, or the file name of ``path``/``case_dir``) names it.
    transform : callable, optional
        The preprocessing; its first transform (for a ``Compose``) is the loader that ``skip_unreadable``
        runs on each case before the run.
    skip_unreadable : bool
        Check every case before the run (it is read once more) and leave out the cases whose loading
        raises a :class:`~monai_hsmix.data.io.DatasetError` (missing, truncated or inconsistent files),
        with a warning naming each. Off by default: a bad case then stops the run with a :class:`CaseError`.
    check : callable, optional
        What to run on each case for ``skip_unreadable`` (default: the loader, see ``transform``).

    Attributes
    ----------
    skipped : list of (str, str)
        ``(case name, reason)`` of each case left out.
    """

    def __init__(self, data: Sequence, transform: Optional[Callable] = None, skip_unreadable: bool = False,
                 check: Optional[Callable] = None) -> None:
        items = list(data)
        if not items:
            raise DatasetError("the datalist is empty: no case to load")
        self.skipped: List[tuple] = []
        self.total = len(items)
        if skip_unreadable:
            items = self._readable(items, check if check is not None else self._loader(transform))
            if not items:
                raise DatasetError(f"none of the {self.total} cases can be read: "
                                   + "; ".join(reason for _, reason in self.skipped))
        super().__init__(items, transform)

    @staticmethod
    def _loader(transform) -> Callable:
        if isinstance(transform, Compose) and transform.transforms:
            return transform.transforms[0]
        if transform is None:
            raise ValueError("skip_unreadable needs a transform (or check) that loads a case")
        return transform

    def _readable(self, items: List[Any], check: Callable) -> List[Any]:
        kept = []
        for item in items:
            try:
                check(dict(item) if isinstance(item, dict) else item)
            except DatasetError as exc:
                self.skipped.append((case_name(item), _describe(case_name(item), exc)))
                continue
            kept.append(item)
        if self.skipped and is_main_process():
            logger.warning(f"skipping {len(self.skipped)} of {self.total} cases that cannot be read:\n  "
                           + "\n  ".join(reason for _, reason in self.skipped))
        return kept

    def _transform(self, index: int):
        item = self.data[index]
        try:
            return super()._transform(index)
        except Exception as exc:
            if _first_dataset_error(exc) is None:
                raise  # a bug or a bad setting, not a bad case: keep its own traceback
            error = CaseError(_describe(case_name(item), exc)
                              + " (skip_unreadable=True leaves unreadable cases out and lists them)")
            # the dataset error's own traceback is enough; MONAI's two "applying transform" wrappers add nothing
            raise error from _first_dataset_error(exc)


class SkippedCasesReport:
    """At the end of an evaluator run, log which cases a :class:`CaseDataset` left out, and why.

    Parameters
    ----------
    dataset : CaseDataset or any object with ``skipped`` and ``total``
        The dataset the evaluator reads.
    """

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine) -> None:
        skipped = getattr(self.dataset, "skipped", [])
        if not skipped or not is_main_process():
            return
        total = getattr(self.dataset, "total", len(skipped))
        logger.warning(f"{total - len(skipped)} of {total} cases done; {len(skipped)} skipped as unreadable:\n  "
                       + "\n  ".join(reason for _, reason in skipped))

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
from typing import Any, Callable, List, Optional, Sequence

from monai.data import Dataset
from monai.transforms import Compose

from monai_hsmix.bundle.errors import error_chain
from monai_hsmix.data.io import DatasetError
from monai_hsmix.engines.reporting import is_main_process
from monai_hsmix.optional import require

Events = require("ignite.engine", "Events")

logger = logging.getLogger(__name__)

__all__ = ["CaseError", "CaseDataset", "SkippedCasesReport", "CheckGeometryd", "case_name"]

_WORKER_PREFIX = "Caught "


def case_name(item: Any, fallback: bool = True) -> str:
    """A readable name of a datalist item: its ``name``, ``case`` or path entry (else its repr, or ``""``
    without ``fallback``)."""
    if isinstance(item, dict):
        for key in ("name", "case", "path", "case_dir", "image"):
            value = item.get(key)
            if isinstance(value, (list, tuple)) and value:  # files of one case, one per channel
                value = value[0]
            if isinstance(value, (str, Path)) and str(value):  # not a loaded array
                return str(value) if key in ("name", "case") else Path(str(value)).name
    return repr(item)[:80] if fallback else ""


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
                text = own[-1].split(": ", 1)[1] + f" [{where[len(_WORKER_PREFIX) + len(type(self).__name__) + 1 :]}]"
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
        runs on each case before the run, with the :class:`CheckGeometryd` checks that follow it.
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

    def __init__(
        self,
        data: Sequence,
        transform: Optional[Callable] = None,
        skip_unreadable: bool = False,
        check: Optional[Callable] = None,
    ) -> None:
        items = list(data)
        if not items:
            raise DatasetError("the datalist is empty: no case to load")
        self.skipped: List[tuple] = []
        self.total = len(items)
        if skip_unreadable:
            items = self._readable(items, check if check is not None else self._loader(transform))
            if not items:
                raise DatasetError(
                    f"none of the {self.total} cases can be read: " + "; ".join(reason for _, reason in self.skipped)
                )
        super().__init__(items, transform)

    @staticmethod
    def _loader(transform) -> Callable:
        if isinstance(transform, Compose) and transform.transforms:
            steps = list(transform.transforms)
            # the loader, and the geometry checks right after it: a scan they reject is as unusable
            end = 1
            while end < len(steps) and isinstance(steps[end], CheckGeometryd):
                end += 1
            return Compose(steps[:end])
        if transform is None:
            raise ValueError("skip_unreadable needs a transform (or check) that loads a case")
        return transform

    def _readable(self, items: List[Any], check: Callable) -> List[Any]:
        kept = []
        for item in items:
            try:
                check(dict(item) if isinstance(item, dict) else item)
            except Exception as exc:  # MONAI's Compose wraps what its transforms raise in RuntimeError
                if _first_dataset_error(exc) is None:
                    raise
                self.skipped.append((case_name(item), _describe(case_name(item), exc)))
                continue
            kept.append(item)
        if self.skipped and is_main_process():
            logger.warning(
                f"skipping {len(self.skipped)} of {self.total} cases that cannot be read:\n  "
                + "\n  ".join(reason for _, reason in self.skipped)
            )
        return kept

    def _transform(self, index: int):
        item = self.data[index]
        try:
            return super()._transform(index)
        except Exception as exc:
            if _first_dataset_error(exc) is None:
                raise  # a bug or a bad setting, not a bad case: keep its own traceback
            error = CaseError(
                _describe(case_name(item), exc) + " (skip_unreadable=True leaves unreadable cases out and lists them)"
            )
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
        logger.warning(
            f"{total - len(skipped)} of {total} cases done; {len(skipped)} skipped as unreadable:\n  "
            + "\n  ".join(reason for _, reason in skipped)
        )


class CheckGeometryd:
    """Check each input scan's orientation and voxel spacing against what the network was trained on.

    The bundles read scans as stored (no resampling): a scan at another spacing, or in another axis order,
    shows the 2D network slices unlike its training slices, and its predictions are poor though they
    overlay the scan correctly. This transform raises a :class:`~monai_hsmix.data.io.DatasetError` naming
    the case, what it has and what was expected, so :class:`CaseDataset` stops the run on it (or leaves it
    out with ``skip_unreadable``). It logs each scan's orientation and spacing when nothing is expected.

    Parameters
    ----------
    keys : str or sequence of str
        MetaTensor entries to check (their ``affine``).
    axcodes : str, optional
        Expected orientation as nibabel axis codes of the stored axes (``"LPS"``, ``"RAS"`` ...).
    spacing : sequence of float, optional
        Expected voxel spacing per axis (mm); ``None`` in an entry leaves that axis unchecked.
    rtol : float
        Relative spacing difference tolerated.
    """

    def __init__(
        self, keys, axcodes: Optional[str] = None, spacing: Optional[Sequence] = None, rtol: float = 0.1
    ) -> None:
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        self.axcodes = None if axcodes is None else str(axcodes).upper()
        self.spacing = None if spacing is None else [None if s is None else float(s) for s in spacing]
        if self.spacing is not None and any(s is not None and s <= 0 for s in self.spacing):
            raise ValueError(f"expected spacing must be positive, got {spacing}")
        if float(rtol) < 0:
            raise ValueError(f"rtol must be >= 0, got {rtol}")
        self.rtol = float(rtol)

    def __call__(self, data):
        import numpy as np
        from monai.data.utils import affine_to_spacing

        nib = require("nibabel")
        d = dict(data)
        name = case_name(d, fallback=False)
        for key in self.keys:
            affine = np.asarray(getattr(d[key], "affine", np.eye(4)), dtype=np.float64)
            if not name:  # the loader replaced the paths: the image's source names the case
                source = (getattr(d[key], "meta", None) or {}).get("filename_or_obj")
                name = Path(str(source)).name if source else "(unnamed)"
            codes = "".join(nib.aff2axcodes(affine))
            spacing = [float(v) for v in affine_to_spacing(affine, r=3)]
            found = f"orientation {codes}, spacing {', '.join(f'{v:.3g}' for v in spacing)} mm"
            if self.axcodes is None and self.spacing is None:
                logger.info(f"case {name}: {found}")
                continue
            if self.axcodes is not None and codes != self.axcodes:
                raise DatasetError(
                    f"case {name}: {found}; the network expects orientation {self.axcodes}: reorient "
                    f"the scan (e.g. MONAI's Orientation(axcodes='{self.axcodes}')) or change "
                    "expected_axcodes if it was trained on such scans"
                )
            if self.spacing is not None:
                if len(self.spacing) != len(spacing):
                    raise ValueError(
                        f"expected spacing {self.spacing} has {len(self.spacing)} axes, the scan {len(spacing)}"
                    )
                off = [
                    i
                    for i, (want, got) in enumerate(zip(self.spacing, spacing))
                    if want is not None and abs(got - want) > self.rtol * want
                ]
                if off:
                    raise DatasetError(
                        f"case {name}: {found}; the network expects spacing {self.spacing} mm "
                        f"(within {self.rtol:.0%}): resample the scan (e.g. MONAI's Spacing) or "
                        "change expected_spacing if it was trained on such scans"
                    )
        return d

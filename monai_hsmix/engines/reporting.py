"""What long bundle runs show: iteration-log filters, progress bars, HD95 in millimetres, and per-class
evaluation reports (console table, CSV, box plot, TensorBoard curves and overlays).

Every handler here writes or logs on rank 0 only, so ``torchrun`` runs print each line once.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from monai.data.utils import affine_to_spacing
from monai.handlers import HausdorffDistance

from monai_hsmix.data.io import write_bytes_atomic
from monai_hsmix.optional import require

__all__ = [
    "every_n_iterations",
    "EveryN",
    "HausdorffDistanceMM",
    "is_main_process",
    "ProgressBar",
    "SegmentationReport",
    "spacing_of",
]

Events = require("ignite.engine", "Events")
reinit__is_reduced = require("ignite.metrics.metric", "reinit__is_reduced")

logger = logging.getLogger(__name__)


def is_main_process() -> bool:
    """True outside ``torch.distributed`` and on rank 0 inside it."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class EveryN:
    """Ignite event filter ``(engine, event) -> bool`` that fires every ``n``-th event (picklable)."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __call__(self, engine, event: int) -> bool:
        return event % self.n == 0


def every_n_iterations(n: int):
    """``iteration_log`` for MONAI's ``StatsHandler``: log every ``n`` iterations (``0`` never).

    The handler takes a bool or an event filter, not a count: an integer such as 20 would be read
    as ``True`` and log every iteration.
    """
    if isinstance(n, bool) or int(n) != n or int(n) < 0:
        raise ValueError(f"log_every must be a whole number >= 0 (0 turns iteration logs off), got {n!r}")
    return EveryN(int(n)) if int(n) > 0 else False


class ProgressBar:
    """Ignite's tqdm ``ProgressBar`` over an engine's iterations, attached on rank 0 only.

    Parameters
    ----------
    desc : str
        Text before the bar (for example ``"train"`` or ``"evaluate"``).
    enabled : bool
        False attaches nothing (for logs that go to a file).
    persist : bool
        Keep each finished bar on screen.
    """

    def __init__(self, desc: str = "", enabled: bool = True, persist: bool = True) -> None:
        self.desc, self.enabled, self.persist = desc, bool(enabled), bool(persist)

    def attach(self, engine) -> None:
        if not (self.enabled and is_main_process()):
            return
        IgniteProgressBar = require("ignite.handlers", "ProgressBar")

        IgniteProgressBar(persist=self.persist, desc=self.desc).attach(engine)


def spacing_of(tensor, spatial_ndim: int) -> Optional[np.ndarray]:
    """Voxel spacing from a MetaTensor's affine (None for a plain tensor)."""
    affine = getattr(tensor, "affine", None)
    if affine is None:
        return None
    return np.asarray(affine_to_spacing(torch.as_tensor(affine), r=spatial_ndim), dtype=np.float64)


class HausdorffDistanceMM(HausdorffDistance):
    """MONAI's ``HausdorffDistance`` handler with each item's spacing from its label's affine.

    Distances are in the units of the affine (millimetres for NIfTI scans); items without an affine
    (plain tensors) count in voxels. Arguments are those of :class:`monai.handlers.HausdorffDistance`.
    """

    @reinit__is_reduced
    def update(self, output) -> None:
        if len(output) != 2:
            raise ValueError(f"output must have length 2, got {len(output)}.")
        y_pred, y = output
        for pred, label in zip(y_pred, y):  # channel-first items, one at a time: each has its own spacing
            spacing = spacing_of(label, label.ndim - 1)
            self.metric_fn([pred], [label], spacing=None if spacing is None else spacing.tolist())


def _csv_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def _fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.4f}"


class SegmentationReport:
    """Per-class results of an evaluator run, with the class names.

    At the end of each evaluator run it reads the per-item, per-class values that MONAI's metric
    handlers keep in ``engine.state.metric_details`` (gathered over ranks) and

    - logs a table (class x metric, mean over items, NaN items such as empty regions skipped),
    - with ``output_dir``: writes ``per_case.csv`` (one row per item and metric), ``summary.csv``
      (mean, median, std, count per class) and ``<metric>_boxplot.png`` for ``plot_metrics``,
    - with ``log_dir``: writes TensorBoard scalars ``<metric label>/<class>`` at the evaluator's epoch
      (the trainer's epoch during validation) and ``overlays`` truth | prediction images.

    Parameters
    ----------
    class_names : sequence of str
        One name per metric column (the classes the metrics cover, background excluded or not).
    metrics : mapping of str to str
        Metric handler name -> label for tables and plots, e.g. ``{"val_mean_dice": "Dice"}``.
    output_dir : str, optional
        Folder for the CSV files and plots.
    log_dir : str, optional
        TensorBoard folder.
    name_key : str
        Key of each item's name in the batch (rows are ``item<i>`` when names are unknown, as on
        ``torchrun`` where rank 0 sees its own shard's names only).
    plot_metrics : sequence of str, optional
        Metrics to draw as per-class box plots (default: the first metric).
    overlays : int
        Number of items drawn as TensorBoard overlays per run.
    multilabel : bool
        Predictions and labels are independent region channels (BraTS WT/TC/ET) rather than one-hot
        classes with background in channel 0.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        metrics: Mapping[str, str],
        output_dir: Optional[str] = None,
        log_dir: Optional[str] = None,
        name_key: str = "name",
        plot_metrics: Optional[Sequence[str]] = None,
        overlays: int = 0,
        multilabel: bool = False,
    ) -> None:
        if not metrics:
            raise ValueError("SegmentationReport needs at least one metric")
        self.class_names = [str(c) for c in class_names]
        self.metrics = dict(metrics)
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.log_dir = log_dir
        self.name_key = name_key
        self.plot_metrics = list(plot_metrics) if plot_metrics is not None else [next(iter(self.metrics))]
        unknown = [m for m in self.plot_metrics if m not in self.metrics]
        if unknown:
            raise ValueError(f"plot_metrics {unknown} are not among metrics {list(self.metrics)}")
        self.overlays = int(overlays)
        self.multilabel = bool(multilabel)
        self._names: List[str] = []
        self._images: List[np.ndarray] = []
        self._writer = None
        self.last: Dict[str, Dict[str, float]] = {}

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._report)

    def _reset(self, engine) -> None:
        self._names, self._images = [], []

    def _collect(self, engine) -> None:
        batch, output = engine.state.batch, engine.state.output
        items = batch if isinstance(batch, list) else []
        self._names.extend(str(item.get(self.name_key, "")) if isinstance(item, dict) else "" for item in items)
        if self.log_dir and len(self._images) < self.overlays and isinstance(output, list):
            for item in output[: self.overlays - len(self._images)]:
                if all(k in item for k in ("image", "label", "pred")):
                    self._images.append(self._overlay(item["image"], item["label"], item["pred"]))

    def _classes(self, masks: torch.Tensor) -> np.ndarray:
        """Channel masks -> class index map: argmax of one-hot, or the innermost region for multilabel."""
        m = torch.as_tensor(masks).detach().float().cpu().numpy()
        if self.multilabel:
            out = np.zeros(m.shape[1:], np.int64)
            for c in range(m.shape[0]):  # later regions (TC, ET) lie inside earlier ones (WT)
                out[m[c] > 0.5] = c + 1
            return out
        return m.argmax(axis=0) if m.shape[0] > 1 else (m[0] > 0.5).astype(np.int64)

    def _overlay(self, image, label, pred) -> np.ndarray:
        colormaps = require("matplotlib", "colormaps")

        truth, guess = self._classes(label), self._classes(pred)
        img = torch.as_tensor(image).detach().float().cpu().numpy()[0]
        if truth.ndim == 3:  # a volume: the slice with the most truth
            z = int(np.argmax((truth > 0).reshape(-1, truth.shape[-1]).sum(0)))
            truth, guess = truth[..., z], guess[..., z]
            img = img[..., z] if img.ndim == 3 else img
        if img.shape != truth.shape:  # the network's input grid differs from the label's: no backdrop
            img = np.zeros(truth.shape, np.float32)
        lo, hi = np.percentile(img, [1, 99]) if img.size else (0.0, 1.0)
        grey = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)[..., None].repeat(3, -1)
        colours = np.asarray(colormaps["tab10"].colors)

        def paint(classes):
            rgb = grey.copy()
            fg = classes > 0
            rgb[fg] = 0.5 * rgb[fg] + 0.5 * colours[(classes[fg] - 1) % len(colours)]
            return rgb

        return np.concatenate([paint(truth), np.ones((truth.shape[0], 2, 3)), paint(guess)], axis=1).astype(np.float32)

    def _table(self, details: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
        out = {}
        for metric, values in details.items():
            with np.errstate(invalid="ignore"):
                finite = np.where(np.isfinite(values), values, np.nan)
                means = [float(np.nanmean(col)) if np.isfinite(col).any() else float("nan") for col in finite.T]
            out[metric] = dict(zip(self.class_names, means))
            valid = [v for v in means if np.isfinite(v)]
            out[metric]["mean"] = float(np.mean(valid)) if valid else float("nan")
        return out

    def _details(self, engine) -> Dict[str, np.ndarray]:
        found = getattr(engine.state, "metric_details", {}) or {}
        details = {}
        for metric in self.metrics:
            if metric not in found:
                raise KeyError(
                    f"SegmentationReport: metric {metric!r} has no per-item details "
                    f"(found {sorted(found)}); is its handler attached with save_details=True?"
                )
            values = torch.as_tensor(found[metric]).detach().float().cpu().numpy()
            values = values.reshape(values.shape[0], -1)
            if values.shape[1] != len(self.class_names):
                raise ValueError(
                    f"metric {metric!r} has {values.shape[1]} classes but {len(self.class_names)} "
                    f"class names were given ({self.class_names})"
                )
            details[metric] = values
        return details

    def _report(self, engine) -> None:
        details = self._details(engine)
        self.last = self._table(details)
        if not is_main_process():
            return
        n = next(iter(details.values())).shape[0]
        names = self._names if len(self._names) == n and all(self._names) else [f"item{i}" for i in range(n)]
        labels = [self.metrics[m] for m in details]
        header = f"{'class':<16}" + "".join(f"{lab:>14}" for lab in labels)
        lines = [header] + [
            f"{c:<16}" + "".join(f"{_fmt(self.last[m][c]):>14}" for m in details) for c in (*self.class_names, "mean")
        ]
        logger.info(f"per-class results over {n} items (epoch {engine.state.epoch}):\n" + "\n".join(lines))
        if self.output_dir is not None:
            self._write_files(details, names)
        if self.log_dir:
            self._write_tensorboard(engine.state.epoch)

    def _write_files(self, details: Dict[str, np.ndarray], names: List[str]) -> None:
        rows = [["case", "metric", *self.class_names]]
        for metric, values in details.items():
            rows += [[name, self.metrics[metric], *[_fmt(v) for v in row]] for name, row in zip(names, values)]
        write_bytes_atomic(self.output_dir / "per_case.csv", _csv_bytes(rows))
        summary = [["metric", "class", "mean", "median", "std", "count"]]
        for metric, values in details.items():
            for c, col in zip(self.class_names, values.T):
                ok = col[np.isfinite(col)]
                stats = (np.mean(ok), np.median(ok), np.std(ok)) if ok.size else (np.nan,) * 3
                summary.append([self.metrics[metric], c, *[_fmt(float(s)) for s in stats], int(ok.size)])
        write_bytes_atomic(self.output_dir / "summary.csv", _csv_bytes(summary))
        for metric in self.plot_metrics:
            self._box_plot(metric, details[metric])

    def _box_plot(self, metric: str, values: np.ndarray) -> None:
        matplotlib = require("matplotlib")

        matplotlib.use("Agg", force=False)
        plt = require("matplotlib.pyplot")

        cols = [col[np.isfinite(col)] for col in values.T]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(cols) + 1.5), 3.5))
        ax.boxplot(cols, showmeans=True)
        ax.set_xticks(range(1, len(cols) + 1), self.class_names, rotation=30 if len(cols) > 4 else 0)
        ax.set_ylabel(self.metrics[metric])
        ax.set_title(f"{self.metrics[metric]} per class ({values.shape[0]} items)")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        write_bytes_atomic(self.output_dir / f"{metric}_boxplot.png", buf.getvalue())

    def _write_tensorboard(self, step: int) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=self.log_dir)
        for metric, per_class in self.last.items():
            for c in self.class_names:
                if np.isfinite(per_class[c]):
                    self._writer.add_scalar(f"{self.metrics[metric]}/{c}", per_class[c], step)
        for i, img in enumerate(self._images):
            self._writer.add_image(f"overlay/truth_vs_prediction_{i}", img, step, dataformats="HWC")
        self._writer.flush()

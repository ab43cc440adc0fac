"""Handlers and settings of the bundles: a run of any length ends with a model where evaluation looks for it,
the key metric's mean is explained where it differs from the report's, MONAI-internal warnings stay quiet."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from monai_hsmix.engines.checkpoint import save_atomic
from monai_hsmix.engines.reporting import is_main_process
from monai_hsmix.metrics.known_warnings import ignore_monai_metric_warnings
from monai_hsmix.optional import require

Events = require("ignite.engine", "Events")

logger = logging.getLogger(__name__)

__all__ = ["FinalModel", "KeyMetricNote", "quiet_known_warnings"]


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    parallel = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return network.module if isinstance(network, parallel) else network


class FinalModel:
    """Validate the last epoch, save the final weights, and say which file is the best model and which the last.

    With ``val_interval`` longer than the run (``max_epochs 2`` against the Synapse default of 5) MONAI's
    ``ValidationHandler`` never runs, so the best-model saver writes nothing and evaluation fails later
    with ``FileNotFoundError: .../model.pt``. This handler closes that gap:

    - at the end of the last epoch, when the validator did not run in that epoch, it runs it (before the
      training checkpoint of that epoch is written, so the checkpoint holds the best metric it found);
    - when training completes, it writes the network's ``state_dict`` to ``final_filename`` (the same
      format as the best model), and if no validation ever produced ``best_filename`` it writes the final
      weights there too, with a warning that this model was not chosen by validation;
    - it logs one line naming the best model (with its metric and epoch) and the last model.

    Attach it after the ``ValidationHandler`` (it needs to see whether that ran) and, on ``torchrun``, on
    every rank: validation gathers its metrics over ranks. Only rank 0 writes files and logs.

    Parameters
    ----------
    save_dir : str
        Folder of the best model (``best_filename``, written by the validator's checkpoint saver) and of
        the final model.
    network : torch.nn.Module
        The trained network (a ``DistributedDataParallel`` wrapper is unwrapped, as in the best model).
    validator : ignite Engine, optional
        The evaluator run by the ``ValidationHandler``; None trains without validation.
    best_filename : str
        Name of the best model in ``save_dir`` (what the evaluation and inference configs load).
    final_filename : str
        Name of the final model in ``save_dir``.
    """

    def __init__(
        self,
        save_dir: str,
        network: torch.nn.Module,
        validator=None,
        best_filename: str = "model.pt",
        final_filename: str = "model_final.pt",
    ) -> None:
        if best_filename == final_filename:
            raise ValueError(f"best_filename and final_filename must differ, both are {best_filename!r}")
        self.save_dir = Path(save_dir)
        self.network = network
        self.validator = validator
        self.best_filename = str(best_filename)
        self.final_filename = str(final_filename)

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._validate_last_epoch)
        engine.add_event_handler(Events.COMPLETED, self._finish)

    def _validated_this_epoch(self, engine) -> bool:
        # MONAI's Evaluator.run(global_epoch) leaves state.epoch == global_epoch and iteration > 0
        state = self.validator.state
        return state.epoch == engine.state.epoch and state.iteration > 0

    def _validate_last_epoch(self, engine) -> None:
        if self.validator is None or engine.state.epoch != engine.state.max_epochs:
            return
        if not self._validated_this_epoch(engine):
            logger.info(f"validating the last epoch ({engine.state.epoch}), which val_interval skips")
            self.validator.run(engine.state.epoch)

    def _finish(self, engine) -> None:
        best, final = self.save_dir / self.best_filename, self.save_dir / self.final_filename
        if self.validator is not None and not best.is_file() and not self._validated_this_epoch(engine):
            # stopped before the last epoch (engine.terminate) or resumed from a finished run whose
            # best model was deleted: validate what there is
            self.validator.run(engine.state.epoch)
        if not is_main_process():
            return
        save_atomic(_unwrap(self.network).state_dict(), final)
        last = f"last model: {final} (epoch {engine.state.epoch})"
        if not best.is_file():
            save_atomic(_unwrap(self.network).state_dict(), best)
            logger.warning(
                f"training finished; the model was not validated, so {best} is the last model "
                f"(epoch {engine.state.epoch}), not one chosen by validation; {last}"
            )
            return
        state = getattr(self.validator, "state", None)
        metric = getattr(state, "best_metric", None)
        name = getattr(state, "key_metric_name", None) or "key metric"
        if metric is not None and math.isfinite(float(metric)) and getattr(state, "best_metric_epoch", -1) >= 0:
            chosen = f"{name} {float(metric):.4f} at epoch {state.best_metric_epoch}"
        else:
            chosen = f"{name} never finite"
        logger.info(f"training finished: best model: {best} ({chosen}); {last}")


class KeyMetricNote:
    """After each evaluator run, say how the key metric MONAI logs relates to the per-class table's mean.

    MONAI's ``MeanDice`` (``val_mean_dice``) averages every (case, class) value that is not NaN, so a class
    present in more cases weighs more; the per-class table
    (:class:`~monai_hsmix.engines.reporting.SegmentationReport`) averages each class over its cases and
    then the classes. The two agree when every class has a value in every case; otherwise this handler
    logs both numbers and the reason, so that a reader does not take one for a mistake in the other.

    Parameters
    ----------
    metric : str
        The metric handler's name (``engine.state.metrics`` and ``engine.state.metric_details`` key).
    tolerance : float
        Differences up to this are not reported.
    """

    def __init__(self, metric: str = "val_mean_dice", tolerance: float = 5e-5) -> None:
        self.metric = str(metric)
        self.tolerance = float(tolerance)

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    @staticmethod
    def means(details) -> tuple:
        """``(mean over all finite values, mean of the per-class means)`` of a ``(cases, classes)`` array."""
        import numpy as np

        values = torch.as_tensor(details).detach().float().cpu().numpy()
        values = values.reshape(values.shape[0], -1)
        finite = np.isfinite(values)
        overall = float(values[finite].mean()) if finite.any() else float("nan")
        per_class = [float(col[ok].mean()) for col, ok in zip(values.T, finite.T) if ok.any()]
        return overall, (float(np.mean(per_class)) if per_class else float("nan"))

    def __call__(self, engine) -> None:
        details = (getattr(engine.state, "metric_details", None) or {}).get(self.metric)
        if details is None or not is_main_process():
            return
        overall, table = self.means(details)
        if math.isfinite(overall) and math.isfinite(table) and abs(overall - table) > self.tolerance:
            logger.info(
                f"{self.metric} {overall:.4f} is MONAI's mean over every (case, class) value; the table's "
                f"mean {table:.4f} averages the per-class means. They differ because some classes have no "
                "value in some cases (absent from the ground truth: NaN, left out), so the classes weigh "
                "differently in the two"
            )


def quiet_known_warnings() -> None:
    """Ignore :data:`~monai_hsmix.metrics.known_warnings.MONAI_METRIC_WARNINGS` for the whole process
    (idempotent; a bundle validates every few epochs and would print them each time); others show as before."""
    ignore_monai_metric_warnings()

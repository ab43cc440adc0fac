"""Training handlers of the bundles: a run of any length ends with a model where evaluation looks for it."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

import torch

from monai_hsmix.engines.checkpoint import save_atomic
from monai_hsmix.engines.reporting import is_main_process
from monai_hsmix.optional import require

Events = require("ignite.engine", "Events")

logger = logging.getLogger(__name__)

__all__ = ["FinalModel"]


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

    def __init__(self, save_dir: str, network: torch.nn.Module, validator=None, best_filename: str = "model.pt",
                 final_filename: str = "model_final.pt") -> None:
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
            logger.warning(f"training finished; the model was not validated, so {best} is the last model "
                           f"(epoch {engine.state.epoch}), not one chosen by validation; {last}")
            return
        state = getattr(self.validator, "state", None)
        metric = getattr(state, "best_metric", None)
        name = getattr(state, "key_metric_name", None) or "key metric"
        if metric is not None and math.isfinite(float(metric)) and getattr(state, "best_metric_epoch", -1) >= 0:
            chosen = f"{name} {float(metric):.4f} at epoch {state.best_metric_epoch}"
        else:
            chosen = f"{name} never finite"
        logger.info(f"training finished: best model: {best} ({chosen}); {last}")

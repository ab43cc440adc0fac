"""Training-state checkpoints that let a bundle resume after an interruption."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Dict, Optional

import torch
from ignite.engine import Events

from monai.handlers import CheckpointLoader, CheckpointSaver

_LAST = re.compile(r"^last_checkpoint_epoch=(\d+)\.pt$")


def latest_checkpoint(ckpt_dir) -> Optional[Path]:
    """The ``last_checkpoint_epoch=N.pt`` with the largest ``N`` in ``ckpt_dir`` (None when there is none)."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _LAST.match(p.name))]
    return max(found)[1] if found else None


def _unwrap(obj):
    parallel = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return obj.module if isinstance(obj, parallel) else obj


def _is_main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class TrainingCheckpoint:
    """Save the training state every ``save_interval`` epochs and resume from the newest save.

    The saved dictionary is ``save_dict`` (network, optimizer, ...) plus the trainer itself under
    ``"trainer"``, so a resumed run continues the epoch and iteration counters. The trainer is added
    in :meth:`attach` because a bundle config cannot refer to the trainer from one of its own handlers
    (that would be a reference cycle). Only rank 0 writes; every rank loads.

    Parameters
    ----------
    save_dir : str
        Folder for ``last_checkpoint_epoch=N.pt`` (only the newest is kept).
    save_dict : dict
        Objects with ``state_dict``/``load_state_dict`` to save besides the trainer.
    resume : bool
        Load the newest checkpoint in ``save_dir`` when the run starts, if there is one.
    save_interval : int
        Save every this many epochs.
    map_location : optional
        Passed to ``torch.load`` when resuming.
    """

    def __init__(self, save_dir: str, save_dict: Dict[str, object], resume: bool = True, save_interval: int = 1,
                 map_location=None) -> None:
        if not save_dict:
            raise ValueError("TrainingCheckpoint needs at least one object to save")
        if "trainer" in save_dict:
            raise ValueError("'trainer' is added by TrainingCheckpoint itself; remove it from save_dict")
        if int(save_interval) < 1:
            raise ValueError(f"save_interval must be >= 1, got {save_interval}")
        self.save_dir = str(save_dir)
        # DDP checkpoints hold the bare module, so single-process evaluation can load them
        self.save_dict = {k: _unwrap(v) for k, v in save_dict.items()}
        self.resume = bool(resume)
        self.save_interval = int(save_interval)
        self.map_location = map_location
        self.resumed_from: Optional[Path] = None
        self.logger = logging.getLogger(__name__)

    def attach(self, engine) -> None:
        objects = {**self.save_dict, "trainer": engine}
        last = latest_checkpoint(self.save_dir) if self.resume else None
        if last is not None:
            self.resumed_from = last
            self.logger.info(f"resuming training from {last}")
            CheckpointLoader(load_path=str(last), load_dict=objects, map_location=self.map_location).attach(engine)
            engine.add_event_handler(Events.STARTED, self._warn_if_finished)
        if _is_main_process():
            CheckpointSaver(save_dir=self.save_dir, save_dict=objects, file_prefix="last",
                            save_interval=self.save_interval, n_saved=1, epoch_level=True).attach(engine)
            # the saver prunes only files it wrote itself: drop those of the run we resumed from
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._prune)

    def _warn_if_finished(self, engine) -> None:
        if engine.state.max_epochs is not None and engine.state.epoch >= engine.state.max_epochs:
            self.logger.warning(
                f"{self.resumed_from} already reached epoch {engine.state.epoch} of max_epochs "
                f"{engine.state.max_epochs}: nothing left to train (raise max_epochs, or pass resume=False "
                "to start over)"
            )

    def _prune(self, engine) -> None:
        newest = latest_checkpoint(self.save_dir)
        for path in Path(self.save_dir).iterdir():
            if path != newest and _LAST.match(path.name):
                path.unlink()

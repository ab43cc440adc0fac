"""Training-state checkpoints that let a bundle resume after an interruption, and only the run it belongs to.

Every checkpoint file is written atomically (a temporary file in the same folder, fsync, rename), so a
kill at any moment leaves either the previous file or the complete new one, never a truncated file under
a checkpoint's name; the previous training checkpoint is deleted only after the new one is in place.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch

from monai.handlers import CheckpointSaver

from monai_hsmix.optional import require
from monai_hsmix.data.io import PARTIAL_PREFIX, atomic_path, remove_stale_partials
from monai_hsmix.engines.random_streams import RandomStreams
from monai_hsmix.engines.reporting import is_main_process
from monai_hsmix.engines.run_settings import normalize_settings, settings_differences

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "checkpoint_candidates",
    "latest_checkpoint",
    "RunSettingsMismatchError",
    "save_atomic",
    "TrainingCheckpoint",
]

Events = require("ignite.engine", "Events")
BaseSaveHandler = require("ignite.handlers.checkpoint", "BaseSaveHandler")
Checkpoint = require("ignite.handlers.checkpoint", "Checkpoint")

_LAST = re.compile(r"^last_checkpoint_epoch=(\d+)\.pt$")
_SETTINGS_KEY = "run_settings"
_BEST_KEY = "best_metric"
_STREAMS_KEY = "random_streams"


class RunSettingsMismatchError(RuntimeError):
    """A checkpoint in the output folder belongs to a run with different settings."""


def checkpoint_candidates(ckpt_dir) -> List[Path]:
    """``last_checkpoint_epoch=N.pt`` files in ``ckpt_dir``, newest (largest ``N``) first."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _LAST.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(ckpt_dir) -> Optional[Path]:
    """The ``last_checkpoint_epoch=N.pt`` with the largest ``N`` in ``ckpt_dir`` (None when there is none)."""
    found = checkpoint_candidates(ckpt_dir)
    return found[0] if found else None


def save_atomic(obj: Any, path) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same folder, fsync and rename.

    A reader sees either the old file or the complete new one; an interrupted save leaves at most a
    ``.partial-*`` file, which is never taken for a checkpoint.
    """
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        torch.save(obj, f)
    return Path(path)


class AtomicDiskSaver(BaseSaveHandler):
    """Ignite save handler writing with :func:`save_atomic`; ``filename`` fixes the name (e.g. ``model.pt``).

    Parameters
    ----------
    dirname : str
        Folder of the checkpoint files (created when missing).
    filename : str, optional
        Always write to this name; then ``remove`` does nothing, because the next save replaces the
        file in one step (deleting it first would leave a moment with no file at all).
    """

    def __init__(self, dirname, filename: Optional[str] = None) -> None:
        self.dirname = Path(dirname)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Optional[Mapping] = None) -> None:
        save_atomic(checkpoint, self.dirname / (self.filename or filename))

    def remove(self, filename: str) -> None:
        if self.filename is None:
            (self.dirname / filename).unlink(missing_ok=True)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's :class:`~monai.handlers.CheckpointSaver` whose files are written atomically.

    MONAI writes in place, so a kill during a save leaves a truncated ``model.pt``. Takes the same
    arguments as ``CheckpointSaver``. When attached (at the start of a run), it deletes the
    ``.partial-*`` files that saves killed in earlier runs left in ``save_dir``.
    """

    def __init__(self, save_dir: str, save_dict: Dict, **kwargs: Any) -> None:
        super().__init__(save_dir, save_dict, **kwargs)
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler = AtomicDiskSaver(self.save_dir, getattr(ckpt.save_handler, "filename", None))

    def attach(self, engine) -> None:
        _remove_stale_partials(self.save_dir)
        super().attach(engine)


def _remove_stale_partials(folder) -> None:
    """Delete what saves killed in earlier runs left in ``folder`` (on the process that writes it)."""
    if not is_main_process():
        return
    removed = remove_stale_partials(folder)
    if removed:
        logging.getLogger(__name__).info(
            f"removed {len(removed)} file(s) that interrupted saves left in {folder}: "
            + ", ".join(p.name for p in removed)
        )


def _unwrap(obj):
    parallel = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return obj.module if isinstance(obj, parallel) else obj


class _BestMetricState:
    """The validator's best metric and the best-model saver's ranking, as one saveable object.

    Without it a resumed run starts from "no best yet" and its first validation overwrites ``model.pt``
    with whatever model it has, even a worse one.
    """

    def __init__(self, validator, best_model_saver: Optional[CheckpointSaver]) -> None:
        self.validator = validator
        self.best_model_saver = best_model_saver

    def _ranking(self) -> Optional[Checkpoint]:
        return getattr(self.best_model_saver, "_key_metric_checkpoint", None)

    def state_dict(self) -> Dict[str, Any]:
        state = self.validator.state
        ranking = self._ranking()
        return {
            "best_metric": float(getattr(state, "best_metric", -1)),
            "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1)),
            "ranking": [[float(p), str(f)] for p, f in ranking.state_dict()["_saved"]] if ranking else [],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.validator.state.best_metric = state["best_metric"]
        self.validator.state.best_metric_epoch = state["best_metric_epoch"]
        ranking = self._ranking()
        if ranking is not None:
            # a best model deleted since must not block saving a new one
            folder = Path(self.best_model_saver.save_dir)
            handler = ranking.save_handler
            kept = [
                (p, f) for p, f in state["ranking"] if (folder / (getattr(handler, "filename", None) or f)).is_file()
            ]
            ranking.load_state_dict({"_saved": kept})


class TrainingCheckpoint:
    """Save the training state every ``save_interval`` epochs and resume from the newest readable save.

    The saved dictionary is ``save_dict`` (network, optimizer, ...) plus the trainer itself under
    ``"trainer"`` (epoch and iteration counters), ``run_settings``, the run's random streams under
    ``"random_streams"`` (:class:`~monai_hsmix.engines.random_streams.RandomStreams`: the global
    generators and those of the data loader's transforms, sampler and collate function and of the
    trainer's ``prepare_batch``, so that a resumed run draws what the uninterrupted run would have
    drawn) and, with a ``validator``, its best metric so far. The trainer is added in :meth:`attach` because a
    bundle config cannot refer to the trainer from one of its own handlers (that would be a reference
    cycle). Only rank 0 writes; every rank loads.

    A checkpoint is resumed only when its ``run_settings`` equal the current ones; otherwise
    :class:`RunSettingsMismatchError` names each setting that differs. A checkpoint that cannot be read
    (a crash of an older version, a full disk) is skipped, with a warning naming it, for the next newest.

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
    run_settings : dict, optional
        The settings that define the run (network, its arguments, augmentation, data, image size ...),
        as JSON-like values. Settings that may change on a resume (``max_epochs``) do not belong here.
    validator : ignite Engine, optional
        The evaluator whose ``state.best_metric`` is saved and restored.
    best_model_saver : CheckpointSaver, optional
        The validator's best-model saver (``save_key_metric=True``); its ranking is saved and restored,
        so it replaces ``model.pt`` only with a better model after a resume.
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Dict[str, object],
        resume: bool = True,
        save_interval: int = 1,
        map_location=None,
        run_settings: Optional[Mapping[str, Any]] = None,
        validator=None,
        best_model_saver: Optional[CheckpointSaver] = None,
    ) -> None:
        if not save_dict:
            raise ValueError("TrainingCheckpoint needs at least one object to save")
        reserved = {"trainer", _SETTINGS_KEY, _BEST_KEY, _STREAMS_KEY} & set(save_dict)
        if reserved:
            raise ValueError(f"{sorted(reserved)} are added by TrainingCheckpoint itself; remove them from save_dict")
        if int(save_interval) < 1:
            raise ValueError(f"save_interval must be >= 1, got {save_interval}")
        if best_model_saver is not None and validator is None:
            raise ValueError("best_model_saver needs the validator it is attached to")
        self.save_dir = str(save_dir)
        # DDP checkpoints hold the bare module, so single-process evaluation can load them
        self.save_dict = {k: _unwrap(v) for k, v in save_dict.items()}
        self.resume = bool(resume)
        self.save_interval = int(save_interval)
        self.map_location = map_location
        self.run_settings = normalize_settings(run_settings)
        self.best = _BestMetricState(validator, best_model_saver) if validator is not None else None
        self.resumed_from: Optional[Path] = None
        self._pending: Optional[Dict[str, Any]] = None
        self._streams: Optional[RandomStreams] = None
        self._saver_attached = False
        self.logger = logging.getLogger(__name__)

    # ---- resuming --------------------------------------------------------------------------------
    def _read(self, path: Path) -> Optional[Dict[str, Any]]:
        try:
            checkpoint = torch.load(str(path), map_location=self.map_location, weights_only=True)
        except Exception as e:  # truncated or empty file, zip errors, unpickling errors ...
            self.logger.warning(
                f"skipping unreadable checkpoint {path} ({type(e).__name__}: {e}); "
                "resuming from the next newest one, if any"
            )
            return None
        if not isinstance(checkpoint, dict) or "trainer" not in checkpoint:
            self.logger.warning(f"skipping {path}: not a training checkpoint (no 'trainer' entry)")
            return None
        return checkpoint

    def _check_settings(self, path: Path, checkpoint: Mapping[str, Any]) -> None:
        saved = checkpoint.get(_SETTINGS_KEY)
        if saved is None and not self.run_settings:
            return
        folder = Path(self.save_dir)
        fresh = (
            f"To start a new run, choose another output folder (--output_dir), or pass --resume False to "
            f"train from scratch in this one (its checkpoints in {folder} are then replaced)."
        )
        if saved is None:
            raise RunSettingsMismatchError(
                f"{path} records no run settings (written by an older version), so it cannot be checked "
                f"against this run's settings. {fresh}"
            )
        diffs = settings_differences(saved, self.run_settings)
        if diffs:
            raise RunSettingsMismatchError(
                f"{path} belongs to a run with different settings, so it is not resumed:\n  "
                + "\n  ".join(diffs)
                + f"\n{fresh}"
            )

    def find_resumable(self) -> Optional[Dict[str, Any]]:
        """The newest readable checkpoint in ``save_dir`` whose settings match (None when there is none)."""
        for path in checkpoint_candidates(self.save_dir):
            checkpoint = self._read(path)
            if checkpoint is not None:
                self._check_settings(path, checkpoint)
                self.resumed_from = path
                return checkpoint
        return None

    def _load(self, engine) -> None:
        checkpoint, self._pending = self._pending, None
        if checkpoint is None:
            return
        # a checkpoint saved without a validator (or by an older version) has no best metric to restore
        optional = (_BEST_KEY, _SETTINGS_KEY, _STREAMS_KEY)
        objects = {k: v for k, v in self._objects(engine).items() if k in checkpoint or k not in optional}
        if _STREAMS_KEY not in checkpoint:
            self.logger.warning(
                f"{self.resumed_from} holds no random state (written by an older version): the resumed "
                "run draws new random numbers, not those the interrupted run would have drawn"
            )
        # keep this run's max_epochs: raising it is how a finished run is trained further
        max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=objects, checkpoint=checkpoint)
        if max_epochs is not None and engine.state.epoch > max_epochs:
            raise ValueError(
                f"{self.resumed_from} is at epoch {engine.state.epoch}, beyond max_epochs {max_epochs}: "
                "raise max_epochs to train further, or pass --resume False to start over"
            )
        engine.state.max_epochs = max_epochs
        self.logger.info(f"resumed training from {self.resumed_from} (epoch {engine.state.epoch})")
        if max_epochs is not None and engine.state.epoch >= max_epochs:
            self.logger.warning(
                f"{self.resumed_from} already reached epoch {engine.state.epoch} of max_epochs {max_epochs}: "
                "nothing left to train (raise max_epochs, or pass resume=False to start over)"
            )

    # ---- saving ----------------------------------------------------------------------------------
    def _objects(self, engine) -> Dict[str, Any]:
        if self._streams is None or self._streams.engine is not engine:
            self._streams = RandomStreams(engine)
        objects: Dict[str, Any] = {
            **self.save_dict,
            "trainer": engine,
            _SETTINGS_KEY: _Settings(self.run_settings),
            _STREAMS_KEY: self._streams,
        }
        if self.best is not None:
            objects[_BEST_KEY] = self.best
        return objects

    def _attach_saver(self, engine) -> None:
        # attached when the run starts, i.e. after every other end-of-epoch handler (validation included),
        # so that a checkpoint holds the best metric of its own epoch
        if self._saver_attached:
            return
        self._saver_attached = True
        saver = Checkpoint(
            self._objects(engine),
            AtomicDiskSaver(self.save_dir),
            filename_prefix="last",
            score_function=lambda e: e.state.epoch,
            score_name="epoch",
            n_saved=None,
        )
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), saver)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self._prune)

    def _prune(self, engine) -> None:
        # only after the new file is in place: a crash in between leaves two checkpoints, not none
        newest = Path(self.save_dir) / f"last_checkpoint_epoch={engine.state.epoch}.pt"
        if not newest.is_file():
            return
        for path in Path(self.save_dir).iterdir():
            stray = path.name.startswith(PARTIAL_PREFIX) and "last_checkpoint_epoch=" in path.name
            if path != newest and (_LAST.match(path.name) or stray):
                path.unlink(missing_ok=True)

    def attach(self, engine) -> None:
        _remove_stale_partials(self.save_dir)
        if self.resume:
            # read (and check) now, before any training work, so a mismatch stops the run at once
            self._pending = self.find_resumable()
            if self._pending is not None:
                engine.add_event_handler(Events.STARTED, self._load)
        if is_main_process():
            engine.add_event_handler(Events.STARTED, self._attach_saver)


class _Settings:
    """``run_settings`` as an object ignite can save; loading only confirms (the check came earlier)."""

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = settings

    def state_dict(self) -> Dict[str, Any]:
        return dict(self.settings)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

"""The random streams of a training run, saved in its checkpoint so that a resumed run continues them.

A run resumed from a checkpoint that holds only the network, the optimizer and the counters draws
its random numbers afresh: ``set_determinism`` at start-up puts every stream back at its
beginning, so the first resumed epoch replays the first epoch's shuffle order, flips and mixing,
and the numbers differ from those of an uninterrupted run. :class:`RandomStreams` is the rest of
the state: the global generators (Python, numpy, torch on the CPU and on each GPU), which decide
the sampler's order and the workers' seeds, and the generators of the objects that feed the
trainer, found by walking the trainer's data loader (dataset transforms, sampler, collate
function) and its ``prepare_batch`` (mixing on the training device).
"""

from __future__ import annotations

import logging
import random
import types
from typing import Any, Dict, Mapping

import numpy as np
import torch
from monai.transforms import Randomizable

from monai_hsmix.engines.batch_transform import BatchTransformCollate

__all__ = ["RandomStreams", "find_random_streams"]

logger = logging.getLogger(__name__)

_LOADER_PARTS = ("dataset", "sampler", "batch_sampler", "collate_fn", "generator")
# objects that hold no random stream of the pipeline (walking a network would visit every parameter)
_LEAVES = (
    str,
    bytes,
    int,
    float,
    complex,
    bool,
    type(None),
    torch.Tensor,
    np.ndarray,
    torch.nn.Module,
    torch.device,
    torch.dtype,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)
_LONGEST = 256  # longer sequences are data (a datalist, a cache), not transforms
_DEEPEST = 16


def find_random_streams(roots: Mapping[str, Any], own: bool = False) -> Dict[str, Any]:
    """Every numpy ``RandomState``, torch ``Generator`` and :class:`BatchTransformCollate` reachable from
    ``roots`` through attributes, lists, tuples and dictionaries, by path (``"loader.dataset.transform.
    transforms[1].R"``), in a fixed order.

    A MONAI transform never seeded draws from the generator that all such transforms share (a class
    attribute); with ``own`` it gets a copy of its own first, so that restoring its state changes
    no other transform."""
    found: Dict[str, Any] = {}
    seen = set()

    def walk(obj: Any, path: str, depth: int) -> None:
        if isinstance(obj, (np.random.RandomState, torch.Generator)):
            found.setdefault(path, obj)
            return
        if isinstance(obj, _LEAVES) or depth > _DEEPEST or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, BatchTransformCollate):
            found[path] = obj
        if isinstance(obj, (list, tuple)):
            if len(obj) <= _LONGEST:
                for i, item in enumerate(obj):
                    walk(item, f"{path}[{i}]", depth + 1)
        elif isinstance(obj, dict):
            if len(obj) <= _LONGEST:
                for key, item in obj.items():
                    walk(item, f"{path}[{key!r}]", depth + 1)
        elif hasattr(obj, "__dict__"):
            if isinstance(obj, Randomizable) and "R" not in vars(obj) and own:
                shared, obj.R = obj.R, np.random.RandomState()
                obj.R.set_state(shared.get_state())
            elif isinstance(obj, Randomizable) and "R" not in vars(obj):
                walk(obj.R, f"{path}.R", depth + 1)
            for key, item in vars(obj).items():
                if not key.startswith("__"):
                    walk(item, f"{path}.{key}", depth + 1)

    for name, root in roots.items():
        walk(root, name, 0)
    return found


def _numpy_state(state: tuple) -> Dict[str, Any]:
    # tensors and plain numbers: a checkpoint loaded with weights_only=True takes no numpy arrays
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _numpy_tuple(state: Mapping[str, Any]) -> tuple:
    return (
        state["name"],
        state["keys"].numpy().astype(np.uint32),
        state["pos"],
        state["has_gauss"],
        state["cached_gaussian"],
    )


def _stream_state(obj: Any) -> Dict[str, Any]:
    if isinstance(obj, np.random.RandomState):
        return {"numpy": _numpy_state(obj.get_state())}
    if isinstance(obj, torch.Generator):
        return {"torch": obj.get_state()}
    return {"seeded_for": None if obj.seeded_for is None else list(obj.seeded_for)}


def _set_stream_state(obj: Any, state: Mapping[str, Any]) -> bool:
    """Restore one stream; ``False`` when the saved state is of another kind."""
    if isinstance(obj, np.random.RandomState) and "numpy" in state:
        obj.set_state(_numpy_tuple(state["numpy"]))
    elif isinstance(obj, torch.Generator) and "torch" in state:
        obj.set_state(state["torch"])
    elif isinstance(obj, BatchTransformCollate) and "seeded_for" in state:
        obj.seeded_for = None if state["seeded_for"] is None else tuple(state["seeded_for"])
    else:
        return False
    return True


class RandomStreams:
    """The random state of a training run, with ``state_dict`` / ``load_state_dict`` for a checkpoint.

    Parameters
    ----------
    engine : ignite Engine
        The trainer. Its data loader (``engine.state.dataloader``, or MONAI's ``engine.data_loader``)
        and ``engine.prepare_batch`` are searched for generators when the state is saved or loaded,
        so streams created after the checkpoint handler (a loader built later) are included.

    Notes
    -----
    Saved at the end of an epoch and loaded when the resumed run starts, the state makes the next
    epoch draw what it would have drawn without the interruption: the sampler's order and the
    worker seeds (torch's generator), the dataset transforms of a loader without workers and the
    mixing of ``BatchTransformPrepareBatch`` or ``BatchTransformCollate`` (their own generators).
    An epoch cut short by ``epoch_length`` is not resumed where it stopped: the loader starts over.
    """

    def __init__(self, engine) -> None:
        self.engine = engine

    def _roots(self) -> Dict[str, Any]:
        loader = getattr(self.engine.state, "dataloader", None) or getattr(self.engine, "data_loader", None)
        roots = {
            f"loader.{part}": getattr(loader, part) for part in _LOADER_PARTS if getattr(loader, part, None) is not None
        }
        prepare = getattr(self.engine, "prepare_batch", None)
        if prepare is not None:
            roots["prepare_batch"] = prepare
        return roots

    def state_dict(self) -> Dict[str, Any]:
        state: Dict[str, Any] = {
            "python": random.getstate(),
            "numpy": _numpy_state(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        }
        state["objects"] = {path: _stream_state(obj) for path, obj in find_random_streams(self._roots()).items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        np.random.set_state(_numpy_tuple(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            if len(state["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(state["cuda"])
            else:
                logger.warning(
                    f"the checkpoint holds the random state of {len(state['cuda'])} GPUs, this machine has "
                    f"{torch.cuda.device_count()}: the GPU streams start afresh"
                )
        saved = dict(state["objects"])
        unmatched = []
        for path, obj in find_random_streams(self._roots(), own=True).items():
            if path not in saved or not _set_stream_state(obj, saved.pop(path)):
                unmatched.append(path)
        if unmatched or saved:
            logger.warning(
                "the random streams of this run and of its checkpoint differ (the pipeline changed?); "
                f"these start afresh: {sorted(unmatched)}; these were not restored: {sorted(saved)}"
            )

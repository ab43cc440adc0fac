"""Applying a batch transform such as :class:`~monai_hsmix.transforms.RandHSMixd` in training.

Two places fit a transform that needs the whole batch:

* :class:`BatchTransformCollate` in a DataLoader's ``collate_fn`` (runs in the worker processes, on the CPU);
* :class:`BatchTransformPrepareBatch` as ``SupervisedTrainer(prepare_batch=...)`` (runs in the main process
  after the batch is on the training device, so the torch backend mixes on the GPU).

Neither is specific to HSMix: any transform of a whole dictionary batch fits (MONAI's ``MixUpd``,
``CutMixd``, ...). ``HSMixCollate`` and ``HSMixPrepareBatch`` are the earlier names, kept as aliases.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, Optional, Sequence, Tuple, Union

import torch
from monai.data import list_data_collate
from monai.engines.utils import PrepareBatch
from monai.utils import convert_to_tensor

__all__ = ["BatchTransformCollate", "BatchTransformPrepareBatch", "HSMixCollate", "HSMixPrepareBatch"]


class BatchTransformCollate:
    """Collate a list of samples, then apply a batch transform, with per-worker random streams.

    A transform object inside ``collate_fn`` is copied into every DataLoader worker with the same
    random state, and MONAI's ``worker_init_fn`` reseeds only the dataset's transforms, so each worker
    would draw the same numbers. This collate reseeds its transform from
    ``torch.utils.data.get_worker_info().seed`` (distinct per worker and per epoch, and reproducible
    under ``torch.manual_seed``) the first time it runs in a worker for that seed.

    Without workers (``num_workers=0``) MONAI's ``DataLoader`` seeds the dataset's transforms from
    torch's default generator, so that ``monai.utils.set_determinism(seed)`` reproduces them in
    another process; the collate's transform, which it does not reach, follows torch's seed the
    same way: it is reseeded from ``torch.initial_seed()`` the first time it runs in the main
    process with that seed (set by ``torch.manual_seed`` or ``set_determinism``). Like the
    dataset's transforms, it then keeps its stream from epoch to epoch, until torch's seed changes.

    Parameters
    ----------
    transform : callable
        Applied to the collated batch, e.g. ``RandHSMixd(...)``; reseeded through its
        ``set_random_state`` when it has one.
    collate_fn : callable
        Builds the batch from the list of samples; MONAI's ``list_data_collate`` by default.

    Examples
    --------
    >>> loader = DataLoader(ds, batch_size=8, num_workers=2,
    ...                     collate_fn=BatchTransformCollate(RandHSMixd(["image", "label"], "label", num_classes=4)))
    """

    def __init__(
        self, transform: Callable[[Any], Any], collate_fn: Callable[[Sequence[Any]], Any] = list_data_collate
    ) -> None:
        if not callable(transform) or not callable(collate_fn):
            raise TypeError("transform and collate_fn must be callable")
        self.transform = transform
        self.collate_fn = collate_fn
        # what the transform was last seeded from: ("worker", id, seed) or ("main", torch seed); saved
        # with the transform's state in a training checkpoint, so that a resume does not reseed it
        self.seeded_for: Optional[Tuple[Any, ...]] = None

    def _reseed(self) -> None:
        if not hasattr(self.transform, "set_random_state"):
            return
        info = torch.utils.data.get_worker_info()
        if info is not None:
            source, seed = ("worker", info.id, info.seed), info.seed
        else:
            seed = torch.initial_seed()
            source = ("main", seed)
        if self.seeded_for != source:
            self.transform.set_random_state(seed=seed % (2**32))
            self.seeded_for = source

    def __call__(self, samples: Sequence[Any]) -> Any:
        self._reseed()
        return self.transform(self.collate_fn(samples))


class BatchTransformPrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI's ``SupervisedTrainer``: move a batch to the device, then transform it.

    Parameters
    ----------
    transform : callable, optional
        Dictionary batch transform (e.g. ``RandHSMixd``); ``None`` trains without mixing.
    image_key, label_key : str
        Keys of the network input and of the target.

    Notes
    -----
    MONAI calls it as ``prepare_batch(batchdata, device, non_blocking, **kwargs)`` and expects
    ``(inputs, targets)``. With ``mode="both"`` the returned batch has ``2B`` samples.
    """

    def __init__(
        self,
        transform: Optional[Callable[[Any], Any]] = None,
        image_key: Hashable = "image",
        label_key: Hashable = "label",
    ) -> None:
        self.transform = transform
        self.image_key = image_key
        self.label_key = label_key

    def __call__(
        self,
        batchdata: Mapping[Hashable, Any],
        device: Optional[Union[str, torch.device]] = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batchdata, Mapping):
            raise TypeError(f"{type(self).__name__} expects a dictionary batch, got {type(batchdata).__name__}")
        missing = [k for k in (self.image_key, self.label_key) if k not in batchdata]
        if missing:
            raise KeyError(f"batch has no key(s) {missing}; available: {list(batchdata)}")
        batch = dict(batchdata)
        for key in (self.image_key, self.label_key):
            batch[key] = convert_to_tensor(batch[key], track_meta=True).to(
                device=device, non_blocking=non_blocking, **kwargs
            )
        if self.transform is not None:
            batch = self.transform(batch)
        return batch[self.image_key], batch[self.label_key]


# the names these classes had when HSMix was their only user
HSMixCollate = BatchTransformCollate
HSMixPrepareBatch = BatchTransformPrepareBatch

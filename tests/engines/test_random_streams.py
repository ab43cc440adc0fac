"""A training checkpoint carries the run's random streams: a resumed run draws what the uninterrupted one drew."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, RandFlipd, RandRotate90d
from monai.utils import set_determinism

from monai_hsmix import BatchTransformCollate, BatchTransformPrepareBatch, RandHSMixd
from monai_hsmix.data import cardiac_batch
from monai_hsmix.engines.checkpoint import TrainingCheckpoint
from monai_hsmix.engines.random_streams import RandomStreams, find_random_streams


def _dataset(n=8):
    images, labels = cardiac_batch(n, 24, seed=0)
    flips = Compose(
        [RandFlipd(["image", "label"], prob=0.5, spatial_axis=0), RandRotate90d(["image", "label"], prob=0.5)]
    )
    return Dataset([{"image": images[i], "label": labels[i]} for i in range(n)], transform=flips)


def _mixer():
    return RandHSMixd(
        ["image", "label"], "label", num_classes=4, n_segments=(6, 12), compactness=0.1, mode="hard", return_masks=True
    )


class _Killed(BaseException):
    pass


def _run(ckpt_dir, workers, kill_at_epoch=None, epochs=3):
    """Epochs of a loader with random transforms and HSMix in its collate; per epoch, what each batch drew."""
    set_determinism(0)
    loader = DataLoader(
        _dataset(), batch_size=4, shuffle=True, num_workers=workers, collate_fn=BatchTransformCollate(_mixer())
    )
    net = torch.nn.Linear(1, 1)
    draws = {}

    def step(engine, batch):
        draws.setdefault(engine.state.epoch, []).append(
            [
                batch["hsmix_partner"].tolist(),
                float(batch["hsmix_hard_mask"].sum()),
                batch["image"][:, 0, 0].sum(-1).tolist(),
                float(torch.rand(())),
            ]
        )  # a draw of torch's global generator too (dropout, ...)

    engine = Engine(step)
    TrainingCheckpoint(str(ckpt_dir), {"model": net}).attach(engine)
    if kill_at_epoch is not None:
        engine.add_event_handler(Events.EPOCH_STARTED(once=kill_at_epoch), lambda e: (_ for _ in ()).throw(_Killed()))
    try:
        engine.run(loader, max_epochs=epochs)
    except _Killed:
        pass
    return draws


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_loader_continues_every_random_stream(tmp_path, workers):
    whole = _run(tmp_path / "whole", workers)
    first = _run(tmp_path / "cut", workers, kill_at_epoch=3)
    assert sorted(first) == [1, 2]
    resumed = _run(tmp_path / "cut", workers)
    assert sorted(resumed) == [3] and resumed[3] == whole[3]
    assert resumed[3] != whole[1]  # not a replay of the first epoch


def test_the_streams_are_found_in_the_loader_and_the_trainers_prepare_batch():
    mix = _mixer()
    collate = BatchTransformCollate(_mixer())
    loader = DataLoader(_dataset(), batch_size=4, shuffle=True, collate_fn=collate, generator=torch.Generator())

    class Trainer:
        state = type("State", (), {"dataloader": loader})()
        prepare_batch = BatchTransformPrepareBatch(mix)
        network = torch.nn.Linear(2, 2)  # not searched

    found = find_random_streams(RandomStreams(Trainer())._roots())
    assert found["prepare_batch.transform.R"] is mix.R and found["prepare_batch.transform.mixer.R"] is mix.mixer.R
    assert (
        found["loader.collate_fn"] is collate
        and found["loader.collate_fn.transform.mixer.R"] is collate.transform.mixer.R
    )
    assert found["loader.generator"] is loader.generator
    transforms = loader.dataset.transform.transforms
    assert found["loader.dataset.transform.transforms[0].R"] is transforms[0].R
    assert found["loader.dataset.transform.transforms[1].R"] is transforms[1].R
    assert not any("network" in path for path in found)


def test_the_state_survives_a_weights_only_load_and_restores_every_stream(tmp_path):
    mix = _mixer().set_random_state(7)

    class Trainer:
        state = type("State", (), {"dataloader": None})()
        prepare_batch = BatchTransformPrepareBatch(mix)

    streams = RandomStreams(Trainer())
    torch.save(streams.state_dict(), tmp_path / "s.pt")
    expected = (np.random.rand(), torch.rand(()), mix.R.rand(), mix.mixer.R.rand())
    np.random.rand(5), torch.rand(5), mix.R.rand(5), mix.mixer.R.rand(5)
    streams.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert (np.random.rand(), torch.rand(()), mix.R.rand(), mix.mixer.R.rand()) == expected


def test_restoring_an_unseeded_transform_leaves_the_generator_monai_transforms_share():
    from monai.transforms import Randomizable

    mix = _mixer()  # never seeded: draws from Randomizable.R, shared by every unseeded transform

    class Trainer:
        state = type("State", (), {"dataloader": None})()
        prepare_batch = BatchTransformPrepareBatch(mix)

    streams = RandomStreams(Trainer())
    state = streams.state_dict()
    expected = Randomizable.R.rand()
    after = Randomizable.R.get_state()
    streams.load_state_dict(state)
    # the transform continues the saved stream on a generator of its own; the shared one is untouched
    assert mix.R is not Randomizable.R and mix.R.rand() == expected
    assert Randomizable.R.get_state()[2] == after[2] and np.array_equal(Randomizable.R.get_state()[1], after[1])

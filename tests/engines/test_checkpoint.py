"""Training-state checkpoints: newest-file lookup and the handler's argument checks."""

from __future__ import annotations

import os

import pytest
import torch

from monai_hsmix.engines.checkpoint import TrainingCheckpoint, latest_checkpoint


def test_latest_checkpoint_compares_epochs_numerically(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path) is None
    for name in ("last_checkpoint_epoch=9.pt", "last_checkpoint_epoch=10.pt", "model.pt", "last_checkpoint_epoch=x.pt"):
        (tmp_path / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "last_checkpoint_epoch=10.pt"


def test_training_checkpoint_rejects_bad_arguments(tmp_path):
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="at least one"):
        TrainingCheckpoint(str(tmp_path), {})
    with pytest.raises(ValueError, match="added by TrainingCheckpoint"):
        TrainingCheckpoint(str(tmp_path), {"model": net, "trainer": net})
    with pytest.raises(ValueError, match="save_interval"):
        TrainingCheckpoint(str(tmp_path), {"model": net}, save_interval=0)
    wrapped = TrainingCheckpoint(str(tmp_path), {"model": torch.nn.DataParallel(net)})
    assert wrapped.save_dict["model"] is net  # checkpoints hold the bare network


# ---- atomic saves and resuming past an interrupted save ---------------------------------------------
class _Killed(BaseException):
    """Stands for a kill: not an Exception, so no handler of the engine swallows it."""


def _run(ckpt_dir, max_epochs, seen=None):
    """A tiny engine: 2 iterations per epoch on a linear model, checkpointed every epoch."""
    from ignite.engine import Engine, Events

    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(engine, batch):
        opt.zero_grad()
        loss = net(torch.full((1, 2), float(batch))).sum()
        loss.backward()
        opt.step()
        return loss.item()

    engine = Engine(step)
    ckpt = TrainingCheckpoint(str(ckpt_dir), {"model": net, "optimizer": opt}, run_settings={"net": "linear"})
    ckpt.attach(engine)
    if seen is not None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.iteration))
    engine.run([1.0, 2.0], max_epochs=max_epochs)
    return engine, ckpt


def _interrupt_second_save(monkeypatch, step):
    """Make the save of epoch 2 die at ``step``: while writing, at fsync, at the rename, or after the
    rename but before the old checkpoint is deleted."""
    import os

    from monai_hsmix.engines import checkpoint as handlers

    calls = {"n": 0}
    if step == "write":
        real = torch.save

        def fake(obj, f, *a, **k):
            calls["n"] += 1
            if calls["n"] == 2:
                f.write(b"PK\x03\x04 half a checkpoint")
                raise _Killed
            return real(obj, f, *a, **k)

        monkeypatch.setattr(handlers.torch, "save", fake)
    elif step in ("fsync", "rename"):
        name = {"fsync": "fsync", "rename": "replace"}[step]
        real = getattr(os, name)

        def fake(*a, **k):
            if step == "rename" or (a and isinstance(a[0], int) and not os.path.isdir(f"/proc/self/fd/{a[0]}")):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise _Killed
            return real(*a, **k)

        monkeypatch.setattr(os, name, fake)
    elif step == "delete":
        real = TrainingCheckpoint._prune

        def fake(self, engine):
            calls["n"] += 1
            if calls["n"] == 2:
                raise _Killed
            return real(self, engine)

        monkeypatch.setattr(TrainingCheckpoint, "_prune", fake)
    else:
        raise AssertionError(step)


@pytest.mark.parametrize("step,resumed_epoch", [("write", 1), ("fsync", 1), ("rename", 1), ("delete", 2)])
def test_a_save_interrupted_at_any_step_leaves_a_resumable_run(tmp_path, monkeypatch, step, resumed_epoch):
    with monkeypatch.context() as patch:
        _interrupt_second_save(patch, step)
        with pytest.raises(_Killed):
            _run(tmp_path, max_epochs=3)
    # a complete checkpoint of the newest finished save is there, under its own name
    assert (tmp_path / f"last_checkpoint_epoch={resumed_epoch}.pt").is_file()
    seen = []
    engine, ckpt = _run(tmp_path, max_epochs=3, seen=seen)
    assert ckpt.resumed_from.name == f"last_checkpoint_epoch={resumed_epoch}.pt"
    assert seen == list(range(2 * resumed_epoch + 1, 7)), "the run restarted instead of resuming"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint_epoch=3.pt"]


def test_resume_skips_an_unreadable_checkpoint_with_a_warning(tmp_path, caplog):
    _run(tmp_path, max_epochs=1)
    # what an in-place writer leaves when killed: an empty newest file, and a stray partial file
    (tmp_path / "last_checkpoint_epoch=2.pt").write_bytes(b"")
    (tmp_path / ".partial-last_checkpoint_epoch=2.pt.abc").write_bytes(b"junk")
    seen = []
    with caplog.at_level("WARNING", logger="monai_hsmix.engines.checkpoint"):
        _, ckpt = _run(tmp_path, max_epochs=3, seen=seen)
    assert ckpt.resumed_from.name == "last_checkpoint_epoch=1.pt"
    assert any(
        "last_checkpoint_epoch=2.pt" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records
    )
    assert seen == [3, 4, 5, 6]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint_epoch=3.pt"]


def test_saves_are_atomic_files_readable_by_group_like_plain_saves(tmp_path):
    import stat

    from monai_hsmix.engines.checkpoint import save_atomic

    path = save_atomic({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    plain = tmp_path / "plain.pt"
    torch.save({"a": 1}, plain)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    plain.unlink()
    save_atomic({"a": torch.zeros(2)}, path)  # replaces in one step
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    from ignite.engine import Engine

    from monai_hsmix.engines.checkpoint import RunSettingsMismatchError

    _run(tmp_path, max_epochs=1)
    net = torch.nn.Linear(2, 1)
    other = TrainingCheckpoint(str(tmp_path), {"model": net}, run_settings={"net": "conv", "extra": [1, 2]})
    with pytest.raises(RunSettingsMismatchError) as excinfo:
        other.attach(Engine(lambda e, b: None))
    message = str(excinfo.value)
    assert "net: 'linear' in the checkpoint, 'conv' now" in message
    assert "extra: not recorded in the checkpoint" in message
    assert "--output_dir" in message and "--resume False" in message
    # tuples and lists, key order: the same settings after a round trip through the file
    same = TrainingCheckpoint(str(tmp_path), {"model": net}, run_settings={"net": "linear"})
    assert same.find_resumable() is not None
    # resume=False starts over without looking
    TrainingCheckpoint(str(tmp_path), {"model": net}, resume=False, run_settings={"net": "conv"}).attach(
        Engine(lambda e, b: None)
    )


def test_a_model_save_killed_midway_leaves_nothing_after_the_next_start(tmp_path, subprocess_env):
    # a kill (no Python clean-up) while model.pt is written leaves its temporary file; the best-model
    # saver deletes it when the next run starts, as the training checkpoints' partial files are
    import subprocess
    import sys

    from ignite.engine import Engine

    from monai_hsmix.engines.checkpoint import AtomicCheckpointSaver

    killed = (
        "import os, sys, torch\n"
        "from monai_hsmix.engines import checkpoint\n"
        "def dying_save(obj, f, *a, **k):\n"
        "    f.write(b'PK half a model'); f.flush(); os._exit(9)\n"
        "checkpoint.torch.save = dying_save\n"
        "checkpoint.save_atomic({'w': torch.ones(3)}, sys.argv[1])\n"
    )
    proc = subprocess.run([sys.executable, "-c", killed, str(tmp_path / "model.pt")], env=subprocess_env, timeout=300)
    assert proc.returncode == 9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".partial-") and left[0].endswith("-model.pt")
    running = tmp_path / f".partial-{os.getpid()}.0123abcd-model.pt"  # a save in progress in a live process
    running.write_bytes(b"")
    net = torch.nn.Linear(2, 1)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_filename="model.pt")
    saver.attach(Engine(lambda e, b: None))
    assert [p.name for p in tmp_path.iterdir()] == [running.name]

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedTrainer
from monai.networks.nets import UNet

from monai_hsmix import BatchTransformCollate, BatchTransformPrepareBatch, RandHSMixd
from monai_hsmix.data import cardiac_batch


def _dataset(n=16, size=32):
    images, labels = cardiac_batch(n, size, seed=0)
    return Dataset([{"image": images[i], "label": labels[i]} for i in range(n)])


def _mixer():
    return RandHSMixd(
        ["image", "label"],
        "label",
        num_classes=4,
        n_segments=(8, 16),
        compactness=0.1,
        mode="hard",
        backend="reference",
        return_masks=True,
    )


def _partners(loader):
    return [b["hsmix_partner"].tolist() + [b["hsmix_hard_mask"].sum().item()] for b in loader]


def test_each_worker_draws_different_numbers():
    loader = DataLoader(
        _dataset(), batch_size=4, shuffle=False, num_workers=2, collate_fn=BatchTransformCollate(_mixer())
    )
    torch.manual_seed(0)
    draws = _partners(loader)
    # batches 0/2 come from worker 0 and 1/3 from worker 1; identical streams would repeat the same draws
    assert draws[0] != draws[1] and draws[2] != draws[3]
    torch.manual_seed(0)
    assert _partners(loader) == draws  # reproducible under the global seed


_LOADER_RUN = textwrap.dedent("""
    import json
    from monai.data import DataLoader, Dataset
    from monai.transforms import RandFlipd
    from monai.utils import set_determinism
    from monai_hsmix import BatchTransformCollate, RandHSMixd
    from monai_hsmix.data import cardiac_batch

    def draws(seed):
        set_determinism(seed)
        images, labels = cardiac_batch(8, 32, seed=0)
        data = Dataset([{"image": images[i], "label": labels[i]} for i in range(8)],
                       transform=RandFlipd(["image", "label"], prob=0.5, spatial_axis=0))
        mix = RandHSMixd(["image", "label"], "label", num_classes=4, n_segments=(8, 16), compactness=0.1,
                         mode="hard", return_masks=True)
        loader = DataLoader(data, batch_size=4, shuffle=True, num_workers=0, collate_fn=BatchTransformCollate(mix))
        out = []
        for epoch in range(2):
            for batch in loader:
                rows = batch["image"][:, 0, :, 0].sum(1)  # which (flipped) samples, in which order
                out.append([batch["hsmix_partner"].tolist(), float(batch["hsmix_hard_mask"].sum()), rows.tolist()])
        return out

    print(json.dumps([draws(0), draws(1)]))
""")


def _loader_draws(env) -> list:
    proc = subprocess.run([sys.executable, "-c", _LOADER_RUN], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_set_determinism_reproduces_the_collate_transform_in_another_process(subprocess_env):
    # as MONAI's DataLoader reseeds the dataset's transforms from torch's generator, the collate
    # reseeds its transform, also in the main process (num_workers=0), where nothing else reaches it
    # (with workers, each worker reseeds it: test_each_worker_draws_different_numbers)
    seed0, seed1 = _loader_draws(subprocess_env)
    assert _loader_draws(subprocess_env)[0] == seed0
    assert seed1 != seed0
    # both epochs mixed, and differently: the stream goes on from epoch to epoch
    assert len(seed0) == 4 and seed0[:2] != seed0[2:]


def test_a_collate_in_the_main_process_follows_torchs_seed():
    mixer = _mixer().set_random_state(3)  # a seed of its own does not count: torch's decides
    torch.manual_seed(5)
    first = _partners(DataLoader(_dataset(8), batch_size=4, num_workers=0, collate_fn=BatchTransformCollate(mixer)))
    mixer.set_random_state(4)
    torch.manual_seed(5)
    collate = BatchTransformCollate(mixer)
    loader = DataLoader(_dataset(8), batch_size=4, num_workers=0, collate_fn=collate)
    assert _partners(loader) == first and collate.seeded_for == ("main", 5)
    # the stream goes on while torch's seed stays; a new seed reseeds it
    assert _partners(loader) != first
    torch.manual_seed(6)
    assert _partners(loader) != first and collate.seeded_for == ("main", 6)


def test_prepare_batch_trains_a_network_on_mixed_soft_labels():
    loader = DataLoader(_dataset(8), batch_size=4)
    net = UNet(2, 1, 4, channels=(4, 8), strides=(2,))
    seen = []

    def loss(pred, target):
        seen.append((pred.shape[0], target.shape))
        return torch.nn.functional.cross_entropy(pred, target)  # probability targets

    prepare = BatchTransformPrepareBatch(
        RandHSMixd(["image", "label"], "label", num_classes=4, n_segments=8, compactness=0.1, backend="reference")
    )
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=loader,
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), 0.1),
        loss_function=loss,
        prepare_batch=prepare,
    )
    trainer.run()
    assert seen == [(8, (8, 4, 32, 32))] * 2
    assert np.isfinite(trainer.state.output[0]["loss"])


def test_prepare_batch_reports_missing_keys_and_wrong_types():
    prepare = BatchTransformPrepareBatch(None)
    with pytest.raises(KeyError, match="label"):
        prepare({"image": torch.zeros(2, 1, 4, 4)})
    with pytest.raises(TypeError, match="dictionary"):
        prepare([torch.zeros(1)])
    images, labels = prepare({"image": np.zeros((2, 1, 4, 4)), "label": np.zeros((2, 1, 4, 4))}, torch.device("cpu"))
    assert images.shape == (2, 1, 4, 4) and isinstance(labels, torch.Tensor)
    with pytest.raises(TypeError, match="callable"):
        BatchTransformCollate(None)


def test_prepare_batch_is_a_monai_prepare_batch_and_old_names_still_work():
    from monai.engines.utils import PrepareBatch

    import monai_hsmix
    from monai_hsmix.engines import HSMixCollate, HSMixPrepareBatch

    assert isinstance(BatchTransformPrepareBatch(None), PrepareBatch)
    assert HSMixPrepareBatch is BatchTransformPrepareBatch and HSMixCollate is BatchTransformCollate
    assert monai_hsmix.HSMixPrepareBatch is BatchTransformPrepareBatch

"""The soft-label losses take what RandHSMix produces, and a TransUNet step trains on it."""

from __future__ import annotations

import pytest
import torch

from monai_hsmix.networks import SoftDiceBCELoss, SoftDiceCELoss, get_network
from monai_hsmix.transforms import RandHSMix


def _blobs(seed: int, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with a bright disc and a darker square, labelled 1 and 2 on background 0."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images, labels = [], []
    for _ in range(batch):
        cy, cx = torch.randint(8, size - 8, (2,), generator=g).tolist()
        label = torch.zeros(size, size, dtype=torch.long)
        label[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] = 1
        sy, sx = torch.randint(0, size - 6, (2,), generator=g).tolist()
        label[sy : sy + 6, sx : sx + 6] = 2
        images.append(label.float() + 0.1 * torch.randn(size, size, generator=g))
        labels.append(label)
    return torch.stack(images)[:, None], torch.stack(labels)[:, None]


@pytest.mark.slow
def test_hsmix_soft_labels_train_transunet_with_soft_dice_ce():
    images, labels = _blobs(0)
    mix = RandHSMix(num_classes=3, n_segments=(20, 40), compactness=0.1, mode="both", backend="reference")
    mix.set_random_state(0)
    mixed_images, soft = mix(images, labels)
    assert soft.shape == (4, 3, 32, 32) and torch.is_floating_point(soft)
    assert ((soft > 0) & (soft < 1)).any()  # the soft half really carries fractional labels

    torch.manual_seed(0)
    net = get_network(
        "transunet", 1, 3, img_size=32, hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64, resnet_layers=(1, 1, 1)
    )
    loss_fn = SoftDiceCELoss()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        optimiser.zero_grad()
        loss = loss_fn(net(torch.as_tensor(mixed_images)), torch.as_tensor(soft))
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert float(loss_fn(torch.zeros(2, 3, 32, 32), labels)) > 0  # the unmixed baseline uses the same loss


def test_hsmix_multilabel_output_feeds_soft_dice_bce():
    images, labels = _blobs(1)
    nested = torch.cat([labels >= 1, labels >= 2], dim=1).float()  # overlapping channels, like WT and TC
    mix = RandHSMix(multilabel=True, n_segments=(20, 40), compactness=0.1, mode="soft", backend="reference")
    mix.set_random_state(1)
    _, soft = mix(images, nested)
    assert soft.shape == nested.shape
    value = SoftDiceBCELoss()(torch.zeros_like(soft), torch.as_tensor(soft))
    assert torch.isfinite(value) and value > 0

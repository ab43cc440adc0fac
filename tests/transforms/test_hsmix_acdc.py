"""RandHSMixd on real cine-MRI slices from ACDC (skipped with a reason when the data is absent)."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_hsmix import RandHSMixd
from monai_hsmix.backends import available_backends


@pytest.fixture(scope="module")
def acdc_slices(acdc_dir):
    entries = json.loads((acdc_dir / "dataset.json").read_text())["training"][:4]
    images, labels = [], []
    for entry in entries:
        img = np.asarray(nib.load(str(acdc_dir / entry["image"])).dataobj, dtype=np.float32)
        lab = np.asarray(nib.load(str(acdc_dir / entry["label"])).dataobj).astype(np.int64)
        z = int(np.argmax((lab > 0).sum((0, 1))))  # the slice with the most heart
        images.append(img[:128, :128, z] if img.shape[0] < 128 else img[64:192, 64:192, z])
        labels.append(lab[:128, :128, z] if lab.shape[0] < 128 else lab[64:192, 64:192, z])
    return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(labels)[:, None])


@pytest.mark.parametrize("backend", available_backends())
def test_hsmix_on_acdc_slices(acdc_slices, backend):
    images, labels = acdc_slices
    mix = RandHSMixd.from_preset(
        "synapse", ["image", "label"], "label", num_classes=4, backend=backend, return_masks=True
    )
    mix.set_random_state(0)
    out = mix({"image": images, "label": labels})
    x, y = out["image"], out["label"]
    partner = out["hsmix_partner"]
    hard = x[:4]
    assert bool(((hard == images) | (hard == images[partner])).all())
    assert torch.allclose(y.sum(1), torch.ones_like(y[:, 0]), atol=1e-5)
    # a class appears in a mixed label only if one of the two sources has it at that pixel
    src = torch.nn.functional.one_hot(labels[:, 0], 4).movedim(-1, 1).float()
    support = torch.maximum(src, src[partner])
    assert bool((y[4:] <= support + 1e-6).all()) and bool((y[:4] <= support + 1e-6).all())
    area = float(out["hsmix_hard_mask"].mean())
    assert 0.1 < area < 0.5  # p = 0.3 over 200-400 superpixels
    n_segments = [int(s.max()) + 1 for s in out["hsmix_segments"]]
    assert all(100 <= n <= 500 for n in n_segments), n_segments
    ms = out["hsmix_soft_mask"]
    assert 0.0 <= float(ms.min()) and float(ms.max()) <= 1.0 and 0.3 < float(ms.mean()) < 0.7

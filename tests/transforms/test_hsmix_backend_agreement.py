"""The torch backend gives statistically the same HSMix augmentations as the reference backend.

Same batches, same random draws (pairings, segment counts, Bernoulli seeds), both backends; the
superpixels and saliency differ in detail, so the comparison is on the statistics that shape
training: how much of X2 hard mixing pastes (mean of Mh), how far soft mixing leans towards
one image (mean of |Ms - 0.5|; the mean of Ms itself is close to 0.5 for any saliency, since
the ratios of the two images of a pair add up to 1), and how many superpixels the maps hold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_hsmix import RandHSMix
from monai_hsmix.data import cardiac_batch


def _acdc_batch(acdc_dir, size: int = 160, count: int = 8):
    nib = pytest.importorskip("nibabel")
    images, labels = [], []
    for f in sorted((acdc_dir / "imagesTr").glob("*frame01.nii.gz"))[:count]:
        vol = np.asarray(nib.load(str(f)).dataobj, dtype=np.float32)
        lab = np.asarray(nib.load(str(acdc_dir / "labelsTr" / f.name)).dataobj)
        z = vol.shape[2] // 2
        h0, w0 = (vol.shape[0] - size) // 2, (vol.shape[1] - size) // 2
        images.append(vol[h0 : h0 + size, w0 : w0 + size, z])
        labels.append(lab[h0 : h0 + size, w0 : w0 + size, z].astype(np.int64))
    return torch.from_numpy(np.stack(images))[:, None], torch.from_numpy(np.stack(labels))[:, None]


def _statistics(images, labels, backend: str, calls: int = 6):
    mix = RandHSMix(num_classes=4, n_segments=(100, 200), compactness=0.1, p=0.3, backend=backend)
    mix.set_random_state(7)
    hard, soft, counts = [], [], []
    for _ in range(calls):
        *_, masks = mix(images, labels, return_masks=True)
        hard.append(float(masks.hard_mask.mean()))
        soft.append(float((masks.soft_mask - 0.5).abs().mean()))
        counts += [int(s.max()) + 1 for s in masks.segments]
    return np.mean(hard), np.mean(soft), np.mean(counts)


def _assert_agree(images, labels):
    ref = _statistics(images, labels, "reference")
    ours = _statistics(images, labels, "torch")
    hard_ref, soft_ref, count_ref = ref
    hard, soft, count = ours
    assert abs(hard - hard_ref) < 0.03, (ref, ours)  # p = 0.3 of the area, give or take a few segments
    assert abs(soft - soft_ref) < 0.2 * soft_ref, (ref, ours)
    assert abs(count - count_ref) < 0.15 * count_ref, (ref, ours)


def test_statistics_agree_on_acdc(acdc_dir):
    _assert_agree(*_acdc_batch(acdc_dir))


def test_statistics_agree_on_phantoms():
    images, labels = cardiac_batch(6, 128, seed=4)
    _assert_agree(torch.from_numpy(images), torch.from_numpy(labels))

"""The transforms' engine switch reaches SLIC, saliency and the blends (no global flag)."""

from __future__ import annotations

import pytest
import torch

from monai_hsmix.backends import numba_saliency, slic_numba_engine
from monai_hsmix.core import numba_mixing
from monai_hsmix.transforms import RandHSMix, RandHSMixd

KERNELS = [
    (slic_numba_engine, "cluster"),
    (numba_saliency, "numba_fine_grained_saliency"),
    (numba_mixing, "blend_index_rows"),
    (numba_mixing, "segment_mean_rows"),
]


def _batch():
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.avg_pool2d(torch.rand(4, 1, 32, 32, generator=g), 3, 1, 1)
    labels = torch.randint(0, 3, (4, 1, 32, 32), generator=g)
    return {"image": images, "label": labels}


def _counting(monkeypatch, calls):
    for module, name in KERNELS:
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


@pytest.mark.parametrize("engine", ["torch", "numba", "auto"])
def test_the_engine_reaches_slic_saliency_and_the_blends(monkeypatch, engine):
    calls = []
    _counting(monkeypatch, calls)
    mix = RandHSMixd(keys=["image", "label"], label_keys="label", num_classes=3, n_segments=(8, 12), engine=engine)
    out = mix.set_random_state(0)(_batch())
    assert out["image"].shape == (8, 1, 32, 32) and out["label"].shape == (8, 3, 32, 32)
    if engine == "torch":
        assert calls == [], "engine='torch' must not run a numba kernel"
    else:  # a CPU batch: every stage runs its kernel
        assert sorted(set(calls)) == sorted(name for _, name in KERNELS)


def test_engines_other_than_auto_need_the_torch_backend():
    with pytest.raises(ValueError, match="torch backend only"):
        RandHSMix(backend="reference", engine="torch")
    with pytest.raises(ValueError, match="engine must be one of"):
        RandHSMix(engine="cuda")

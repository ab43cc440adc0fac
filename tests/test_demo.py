"""The demo end to end (one short epoch): data, preview, training, evaluation, printed report."""

from __future__ import annotations

import math

import pytest

from monai_hsmix.demo import main, run_demo

pytestmark = pytest.mark.slow


def test_demo_runs_and_reports_per_region_metrics(tmp_path, capsys):
    results = run_demo(tmp_path / "demo_output", epochs=1, img_size=32, batch_size=8, seed=0)
    out = capsys.readouterr().out
    for region in ("WT", "TC", "ET"):
        assert region in out
        assert 0.0 <= results["val_mean_dice"][region] <= 1.0 or math.isnan(results["val_mean_dice"][region])
    assert (tmp_path / "demo_output" / "brats2018_hsmix" / "models" / "model.pt").is_file()
    assert (tmp_path / "demo_output" / "hsmix_preview.png").stat().st_size > 1000
    assert any((tmp_path / "demo_output" / "brats2018_hsmix" / "logs").iterdir())
    for line in ("best checkpoint", "TensorBoard logs", "HSMix preview"):
        assert line in out


def test_demo_rejects_unknown_network():
    with pytest.raises(SystemExit):
        main(["--network", "resnet"])

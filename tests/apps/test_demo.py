"""The demo end to end (one short epoch): data, preview, training, evaluation, printed report."""

from __future__ import annotations

import math

import pytest

from monai_hsmix.apps.demo import main, run_demo

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


def test_a_second_demo_resumes_and_other_settings_stop_it(tmp_path, capsys):
    out = tmp_path / "demo_output"
    run_demo(out, epochs=1, img_size=32, batch_size=8, seed=0, preview=False)
    ckpt = out / "brats2018_hsmix" / "models" / "last_checkpoint_epoch=1.pt"
    first = ckpt.stat().st_mtime_ns
    capsys.readouterr()
    run_demo(out, epochs=1, img_size=32, batch_size=8, seed=0, preview=False)
    assert "resuming the earlier demo run" in capsys.readouterr().out
    assert ckpt.stat().st_mtime_ns == first, "the finished run was trained again instead of resumed"
    # another image size is another run: stopped with the setting named, and --restart starts over
    assert main(["--output-dir", str(out), "--epochs", "1", "--img-size", "48", "--no-preview"]) == 2
    err = capsys.readouterr().err
    assert "img_size: 32 in the checkpoint, 48 now" in err and "--restart" in err
    assert main(["--output-dir", str(out), "--epochs", "1", "--img-size", "48", "--no-preview", "--restart"]) == 0
    assert ckpt.stat().st_mtime_ns != first

"""The InsMix ablation on a tiny synthetic tile folder: sampler, resume, settings check, report; real tiles
if present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_hsmix.apps.insmix_ablation import INSMIX_ARMS, InsMixAblationConfig, main, run
from monai_hsmix.apps.insmix_ablation.data import (
    InstanceCropSampler,
    find_instance_pairs,
    insmix_transform,
    read_instance_pair,
)
from monai_hsmix.apps.mix_sweep import SettingsMismatchError
from monai_hsmix.metrics import aggregated_jaccard_index

SIZE = 40


def _tile(rng: np.random.RandomState):
    """A 40x40 pink tile with 6 dark 5x5 nuclei (two of them touching) and their instance map."""
    inst = np.zeros((SIZE, SIZE), np.uint16)
    corners = [(3, 3), (3, 8), (15, 20), (25, 5), (30, 30), (10, 30)]
    for k, (r, c) in enumerate(corners, start=1):
        dr, dc = rng.randint(0, 4, size=2)
        inst[r + dr : r + dr + 5, c + dc : c + dc + 5] = k
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    image[:] = (230, 180, 200)
    image[inst > 0] = (80, 40, 120)
    image = np.clip(image + rng.randint(-10, 10, image.shape), 0, 255).astype(np.uint8)
    return image, inst


@pytest.fixture(scope="module")
def tiles(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiles")
    (root / "images").mkdir()
    (root / "instances").mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        image, inst = _tile(rng)
        Image.fromarray(image).save(root / "images" / f"t{i}.png")
        Image.fromarray(inst).save(root / "instances" / f"t{i}.png")
    return root


def _config(data: Path, out: Path, **kw) -> InsMixAblationConfig:
    base = dict(
        arms=("none", "ssd_bg", "cutmix"),
        seeds=(0,),
        folds=3,
        only_folds=(0,),
        crop_size=24,
        steps=2,
        batch_size=4,
        channels=(4, 8),
        min_seed_size=1,
        min_size=1,
    )
    return InsMixAblationConfig(data, out, **{**base, **kw})


def test_sampler_crops_match_across_arms_and_pastes_change_some(tiles):
    pairs = find_instance_pairs(tiles)
    loaded = [read_instance_pair(*pairs[n]) for n in sorted(pairs)]
    images, insts = [p[0] for p in loaded], [p[1] for p in loaded]

    def draw(variant):
        sampler = InstanceCropSampler(images, insts, 24, insmix_transform(variant, 24, 0.5, 0), prob=0.5, seed=0)
        return sampler.draw(8, torch.Generator().manual_seed(0)), sampler.pastes

    (plain_x, plain_y), none_pastes = draw("none")
    (ssd_x, ssd_y), ssd_pastes = draw("ssd")
    assert none_pastes == 0 and ssd_pastes > 0
    assert set(torch.unique(plain_y).tolist()) <= {0, 1, 2} and plain_y.shape == (8, 1, 24, 24)
    same = [(plain_x[k] == ssd_x[k]).all().item() for k in range(8)]
    # crops that got no paste are identical; at least one pasted crop differs, and it gained nucleus pixels
    assert any(same) and not all(same)
    changed = [k for k in range(8) if not same[k]]
    assert all((ssd_y[k] > 0).sum() > (plain_y[k] > 0).sum() for k in changed)


def test_unknown_variant_raises():
    with pytest.raises(ValueError, match="unknown InsMix variant"):
        insmix_transform("gan", 24, 0.5, 0)


def test_sweep_report_resume_and_settings_check(tiles, tmp_path):
    out = tmp_path / "sweep"
    report = run(_config(tiles, out))
    runs = sorted((out / "runs").glob("*.json"))
    assert [p.name for p in runs] == ["cutmix_seed0_fold0.json", "none_seed0_fold0.json", "ssd_bg_seed0_fold0.json"]
    first = json.loads(runs[1].read_text())
    assert first["arm"] == "none" and first["runner_arm"] == "none" and first["fold"] == 0
    assert {"aji", "object_dice", "pixel_dice", "true_objects", "pred_objects"} <= set(first["volumes"][0])
    assert json.loads(runs[2].read_text())["sampler_pastes"] > 0
    assert json.loads(runs[0].read_text())["runner_arm"] == "cutmix"
    text = report.read_text()
    assert "Finished runs: 3 of 3." in text and "## Paired differences in AJI (points)" in text
    assert "| row − column | none | ssd_bg | cutmix |" in text
    # a rerun with the same settings trains nothing
    stamps = [p.stat().st_mtime_ns for p in runs]
    run(_config(tiles, out))
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    # other settings: refused, naming the setting
    with pytest.raises(SettingsMismatchError, match=r"train\.steps: stored 2, now 3"):
        run(_config(tiles, out, steps=3))


def test_same_seed_same_numbers(tiles, tmp_path):
    a = run(_config(tiles, tmp_path / "a", arms=("copy_paste",))).parent
    b = run(_config(tiles, tmp_path / "b", arms=("copy_paste",))).parent
    rows = [json.loads((d / "runs" / "copy_paste_seed0_fold0.json").read_text())["volumes"] for d in (a, b)]
    assert rows[0] == rows[1]


def test_command_line_rejects_bad_options(tiles, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tiles), "--out", str(tmp_path), "--max-paste-ratio", "0"])
    assert "max_paste_ratio" in capsys.readouterr().err
    assert set(INSMIX_ARMS) == {"none", "copy_paste", "ssd", "ssd_bg", "cutmix"}


def test_missing_image_is_named(tiles, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "instances").mkdir()
    (tmp_path / "instances" / "lonely.png").write_bytes((tiles / "instances" / "t0.png").read_bytes())
    with pytest.raises(FileNotFoundError, match="lonely"):
        find_instance_pairs(tmp_path)


def test_real_tiles_read_and_score_themselves(monuseg_dir):
    pairs = find_instance_pairs(monuseg_dir)
    assert len(pairs) == 11
    image, inst = read_instance_pair(*pairs[sorted(pairs)[0]])
    assert image.shape == (3, 1000, 1000) and image.dtype == np.uint8 and inst.max() > 100
    assert aggregated_jaccard_index(inst, inst) == 1.0

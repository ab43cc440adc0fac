"""End-to-end runs of ``python -m monai_hsmix.apps.ablation`` on a tiny synthetic Decathlon dataset."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_hsmix.apps.ablation import main

TINY = [
    "--image-size",
    "32",
    "--steps",
    "3",
    "--batch-size",
    "4",
    "--channels",
    "4",
    "8",
    "--backend",
    "reference",
    "--hsmix-segments",
    "8",
    "12",
    "--mix-prob",
    "1.0",
]


def _write_case(folder: Path, name: str, rng: np.random.RandomState) -> dict:
    """A 32x32x4 volume with a bright disc (class 1) inside a ring (class 2); position varies by case."""
    xx, yy = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    cx, cy = rng.randint(12, 20, size=2)
    r = np.hypot(xx - cx, yy - cy)
    label = np.where(r < 4, 1, np.where(r < 7, 2, 0)).astype(np.uint8)
    label = np.repeat(label[..., None], 4, axis=2)
    image = 0.2 + 0.5 * (label == 1) + 0.25 * (label == 2) + 0.05 * rng.rand(32, 32, 4)
    for sub, array in (("images", image.astype(np.float32)), ("labels", label)):
        (folder / f"{sub}Tr").mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(folder / f"{sub}Tr" / f"{name}.nii.gz"))
    return {"image": f"./imagesTr/{name}.nii.gz", "label": f"./labelsTr/{name}.nii.gz"}


@pytest.fixture(scope="module")
def tiny_decathlon(tmp_path_factory) -> Path:
    """4 patients x 2 frames, no 'validation' list (the runner holds patients out)."""
    root = tmp_path_factory.mktemp("tiny_decathlon")
    rng = np.random.RandomState(0)
    training = [_write_case(root, f"patient{p:03d}_frame{f:02d}", rng) for p in range(1, 5) for f in (1, 2)]
    meta = {"name": "tiny", "labels": {"0": "background", "1": "core", "2": "ring"}, "training": training}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def _run(data: Path, out: Path, *extra: str) -> Path:
    argv = [
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--arms",
        "none",
        "hsmix_both",
        "--seeds",
        "0",
        "--train-patients",
        "2",
        "--val-patients",
        "2",
        *TINY,
        *extra,
    ]
    assert main(argv) == 0
    return out / "report.md"


@pytest.fixture(scope="module")
def first_sweep(tiny_decathlon, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    _run(tiny_decathlon, out)
    return out


def test_report_has_one_row_per_arm_and_the_plot(first_sweep):
    text = (first_sweep / "report.md").read_text()
    assert "Finished runs: 2 of 2." in text
    dsc_table = text.split("#### DSC (%)")[1].split("####")[0]
    rows = [line for line in dsc_table.splitlines() if line.startswith("| ") and not line.startswith("| arm")]
    assert [row.split("|")[1].strip() for row in rows] == ["none", "hsmix_both"]
    assert "| arm | runs | core | ring | mean fg |" in text
    assert "python -m monai_hsmix.apps.ablation --data-dir" in text and "monai 1." in text
    assert "runs trained at git" in text
    assert (first_sweep / "mean_fg_dsc.png").stat().st_size > 1000


def test_run_json_keeps_patients_apart_and_scores_every_volume(first_sweep):
    run = json.loads((first_sweep / "runs" / "hsmix_both_seed0.json").read_text())
    settings = run["settings"]
    assert len(settings["train_ids"]) == 2 and len(settings["val_ids"]) == 2
    assert not set(settings["train_ids"]) & set(settings["val_ids"])
    assert {v["patient"] for v in run["volumes"]} == set(settings["val_ids"])
    assert len(run["volumes"]) == 4  # two frames of each validation patient
    assert run["sources_per_step"] == 2 and run["samples_per_step"] == 4
    assert run["git_commit"]
    for volume in run["volumes"]:
        assert len(volume["dice"]) == 2
        assert all(0.0 <= d <= 1.0 for d in volume["dice"] + volume["jaccard"])
        assert all(np.isfinite(volume["hd95"]))


def test_same_seed_gives_the_same_metrics(tiny_decathlon, first_sweep, tmp_path):
    _run(tiny_decathlon, tmp_path)
    for name in ("none_seed0.json", "hsmix_both_seed0.json"):
        a = json.loads((first_sweep / "runs" / name).read_text())
        b = json.loads((tmp_path / "runs" / name).read_text())
        assert a["volumes"] == b["volumes"]
        assert a["final_train_loss"] == b["final_train_loss"]


def test_resume_skips_finished_runs(tiny_decathlon, first_sweep, tmp_path, monkeypatch):
    import shutil

    import monai_hsmix.apps.ablation.cli as ablation

    shutil.copytree(first_sweep / "runs", tmp_path / "runs")
    (tmp_path / "runs" / "none_seed0.json").unlink()
    trained = []
    real = ablation.train_run
    monkeypatch.setattr(
        ablation, "train_run", lambda arm, seed, *a, **k: trained.append((arm, seed)) or real(arm, seed, *a, **k)
    )
    _run(tiny_decathlon, tmp_path)
    assert trained == [("none", 0)]
    assert "Finished runs: 2 of 2." in (tmp_path / "report.md").read_text()


def test_resume_with_other_settings_refuses(tiny_decathlon, first_sweep, tmp_path, capsys):
    import shutil

    shutil.copytree(first_sweep / "runs", tmp_path / "runs")
    with pytest.raises(SystemExit) as info:
        _run(tiny_decathlon, tmp_path, "--lr", "0.1")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "train.lr: stored 0.005, now 0.1" in err


@pytest.mark.parametrize(
    "bad,named",
    [
        (["--hsmix-segments", "100", "50"], "n_segments"),
        (["--hsmix-p", "2"], "p must be"),
        (["--cutmix-alpha", "0"], "alpha=0"),
        (["--lr", "0"], "--lr"),
        (["--batch-size", "6", "--arms", "none", "mixup", "hsmix_both"], None),
    ],
)
def test_every_argument_is_checked_before_the_first_run(tiny_decathlon, tmp_path, monkeypatch, capsys, bad, named):
    import monai_hsmix.apps.ablation.cli as ablation

    started = []
    monkeypatch.setattr(ablation, "train_run", lambda arm, *a, **k: started.append(arm) or {})
    argv = [
        "--data-dir",
        str(tiny_decathlon),
        "--out",
        str(tmp_path),
        "--arms",
        "none",
        "mixup",
        "cutmix",
        "hsmix_hard",
        "--seeds",
        "0",
        "--train-patients",
        "2",
        "--val-patients",
        "2",
        *TINY,
        *bad,
    ]
    if named is None:  # a valid command: the check lets it through
        monkeypatch.setattr(ablation, "write_report", lambda *a, **k: tmp_path / "report.md")
        assert main(argv) == 0 and started == ["none", "mixup", "hsmix_both"]
        return
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2 and started == [], "an arm trained before the bad argument was reported"
    assert named in capsys.readouterr().err


def test_a_truncated_volume_is_named(tiny_decathlon, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_decathlon, data)
    victim = data / "imagesTr" / "patient002_frame01.nii.gz"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(SystemExit) as excinfo:
        main(
            [
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "out"),
                "--arms",
                "none",
                "--seeds",
                "0",
                "--train-patients",
                "0",
                "--val-patients",
                "1",
                *TINY,
            ]
        )
    assert excinfo.value.code == 2
    assert str(victim) in capsys.readouterr().err


# --- image-folder layout (MoNuSeg-like): k-fold by image, crops, paired intervals, per-arm resume ---------

IMAGE_TINY = [
    "--image-size",
    "16",
    "--steps",
    "2",
    "--batch-size",
    "4",
    "--channels",
    "4",
    "8",
    "--backend",
    "reference",
    "--folds",
    "3",
    "--seeds",
    "0",
    "--preset",
    "monuseg",
    "--preset-size",
    "64",
]


@pytest.fixture(scope="module")
def tiny_image_folder(tmp_path_factory) -> Path:
    from tests.apps.ablation.test_image_folder import write_image_folder

    return write_image_folder(tmp_path_factory.mktemp("tiny_images") / "data", 6, size=32)


def _run_images(data: Path, out: Path, arms=("none", "hsmix_paper"), *extra: str) -> Path:
    assert main(["--data-dir", str(data), "--out", str(out), "--arms", *arms, *IMAGE_TINY, *extra]) == 0
    return out / "report.md"


@pytest.fixture(scope="module")
def image_sweep(tiny_image_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("image_sweep")
    _run_images(tiny_image_folder, out)
    return out


def test_image_folder_runs_every_fold_with_disjoint_images(image_sweep):
    names = sorted(p.name for p in (image_sweep / "runs").glob("*.json"))
    assert names == [f"{arm}_seed0_fold{f}.json" for arm in ("hsmix_paper", "none") for f in range(3)]
    tested = []
    for f in range(3):
        run = json.loads((image_sweep / "runs" / f"none_seed0_fold{f}.json").read_text())
        train, test = run["settings"]["train_images"], run["settings"]["test_images"]
        assert not set(train) & set(test) and len(train) + len(test) == 6
        assert sorted(v["volume"] for v in run["volumes"]) == sorted(test)  # scored on its held-out images only
        tested += test
    assert sorted(tested) == [f"img{i:02d}" for i in range(6)]


def test_hsmix_paper_run_trains_on_2b_samples_from_b_sources_at_every_step(image_sweep):
    paper = json.loads((image_sweep / "runs" / "hsmix_paper_seed0_fold0.json").read_text())
    assert (paper["samples_per_step"], paper["sources_per_step"], paper["mix_prob"]) == (8, 4, 1.0)
    assert paper["mixed_steps"] == 2 and paper["mean_samples_per_step"] == 8.0
    hs = paper["settings"]["arm"]["hsmix"]
    # the preset reaches the arm (Lab superpixels) with its counts scaled by area: (300, 500) * (16 / 64)^2
    assert hs["preset"] == "monuseg" and hs["slic_space"] == "lab" and hs["n_segments"] == [19, 31]
    assert paper["train_seconds"] >= paper["mix_seconds"] > 0


def test_image_folder_report_has_intervals_and_costs(image_sweep):
    text = (image_sweep / "report.md").read_text()
    assert "Finished runs: 6 of 6." in text and "3-fold cross-validation by image" in text
    paired = text.split("## Paired differences")[1].split("##")[0]
    row = [line for line in paired.splitlines() if line.startswith("| hsmix_paper |")][0]
    assert "[" in row and "/3 up)" in row  # 3 pairs (one seed x three folds) with an interval
    cost = text.split("## Cost per arm")[1]
    assert "| hsmix_paper | 8 | 4 | 1.00 | 8.0 | 4.0 |" in cost and "| none | 4 | 4 | 0.50 | 4.0 | 4.0 |" in cost
    assert (image_sweep / "paired_dsc.png").stat().st_size > 1000 and "paired_dsc.png" in text


def test_changed_hsmix_setting_keeps_none_runs_and_refuses_hsmix_runs(
    tiny_image_folder, image_sweep, tmp_path, monkeypatch, capsys
):
    import shutil

    import monai_hsmix.apps.ablation.cli as ablation

    shutil.copytree(image_sweep / "runs", tmp_path / "runs")
    monkeypatch.setattr(ablation, "train_run", lambda *a, **k: pytest.fail("a finished run was retrained"))
    _run_images(tiny_image_folder, tmp_path, ("none",), "--hsmix-p", "0.5")  # 'none' does not depend on p
    with pytest.raises(SystemExit) as info:
        _run_images(tiny_image_folder, tmp_path, ("none", "hsmix_paper"), "--hsmix-p", "0.5")
    assert info.value.code == 2
    assert "arm.hsmix.p: stored 0.3, now 0.5" in capsys.readouterr().err


def test_report_leaves_out_runs_of_seeds_this_command_does_not_plan(tiny_image_folder, image_sweep, tmp_path):
    import shutil

    shutil.copytree(image_sweep / "runs", tmp_path / "runs")
    extra = json.loads((tmp_path / "runs" / "none_seed0_fold0.json").read_text())
    extra["seed"] = 7  # a run kept for a later session's seed
    (tmp_path / "runs" / "none_seed7_fold0.json").write_text(json.dumps(extra))
    text = _run_images(tiny_image_folder, tmp_path).read_text()
    assert "Finished runs: 6 of 6." in text and "| none | 3 |" in text


def test_a_half_written_run_file_is_set_aside_and_redone(tiny_image_folder, image_sweep, tmp_path, monkeypatch, caplog):
    """A rerun after a half-written run file ended in ``error: Expecting value: line 32 ...`` (issue 24)."""
    import shutil

    import monai_hsmix.apps.ablation.cli as ablation

    shutil.copytree(image_sweep / "runs", tmp_path / "runs")
    victim = tmp_path / "runs" / "none_seed0_fold1.json"
    text = victim.read_text()
    victim.write_text(text[: len(text) // 2])
    trained = []
    real = ablation.train_run
    monkeypatch.setattr(
        ablation, "train_run", lambda arm, seed, *a, **k: trained.append(arm) or real(arm, seed, *a, **k)
    )
    with caplog.at_level("WARNING", logger="monai_hsmix.ablation"):
        _run_images(tiny_image_folder, tmp_path)
    assert trained == ["none"]
    assert (tmp_path / "runs" / "none_seed0_fold1.json.corrupt").read_text() == text[: len(text) // 2]
    assert json.loads(victim.read_text())["settings"] == json.loads(text)["settings"]
    assert any(str(victim) in r.getMessage() and "set aside" in r.getMessage() for r in caplog.records)


def test_editing_a_mask_redoes_the_runs_that_used_it(tiny_image_folder, image_sweep, tmp_path, monkeypatch, caplog):
    """Settings recorded file names only: an edited mask reported the old runs' numbers (issue 24)."""
    import shutil

    from PIL import Image

    import monai_hsmix.apps.ablation.cli as ablation

    data = tmp_path / "data"
    shutil.copytree(tiny_image_folder, data)
    shutil.copytree(image_sweep / "runs", tmp_path / "out" / "runs")
    # a copy of the same data keeps the fingerprint; only the changed file's folds are redone
    trained = []
    monkeypatch.setattr(ablation, "train_run", lambda arm, seed, *a, **k: trained.append(arm) or {})
    monkeypatch.setattr(ablation, "write_report", lambda *a, **k: tmp_path / "report.md")
    common = ["--data-dir", str(data), "--out", str(tmp_path / "out"), "--arms", "none", *IMAGE_TINY]
    runs = {p.name: json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*.json")}
    for run in runs.values():  # the data folder moved: only that setting differs, so record the copy's path
        run["settings"]["data_dir"] = str(data.resolve())
    for name, run in runs.items():
        (tmp_path / "out" / "runs" / name).write_text(json.dumps(run))
    assert main(common) == 0 and trained == []
    test_of_fold0 = runs["none_seed0_fold0.json"]["settings"]["test_images"][0]
    mask_path = data / "masks" / f"{test_of_fold0}.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:4, :4] = 1 - mask[:4, :4]
    Image.fromarray(mask).save(mask_path)
    with caplog.at_level("WARNING", logger="monai_hsmix.ablation"):
        assert main(common) == 0
    # every fold trains or tests on every image here (3 folds of 6): all three 'none' runs are redone
    assert trained == ["none"] * 3
    assert any("data fingerprint" in r.getMessage() for r in caplog.records)


def test_recording_the_commit_leaves_the_repository_index_alone(tmp_path):
    """``git status`` refreshes the index of the checkout it reads (issue 24): the commit is read without it."""
    import os
    import subprocess

    from monai_hsmix.apps.ablation.cli import _git_commit

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "a"], check=True, env=env)
    os.utime(tmp_path / "a.txt", (1, 1))  # stat changed, content not: a plain `git status` rewrites the index
    index = tmp_path / ".git" / "index"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    commit = _git_commit(tmp_path)
    assert len(commit) >= 7 and "uncommitted" not in commit
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


# --- issue 23: the paper's whole-image protocol, a fixed test folder, learning curves, fair controls ------


def test_resize_trains_and_tests_on_the_resized_whole_images(tiny_image_folder, tmp_path, monkeypatch):
    import monai_hsmix.apps.ablation.cli as ablation

    seen = {}
    real_eval, real_sampler = ablation.evaluate_images, ablation.CropSampler

    def spy_eval(model, images, labels, names, roi, num_classes):
        seen.setdefault("test", []).extend((tuple(i.shape), tuple(l.shape), roi) for i, l in zip(images, labels))
        return real_eval(model, images, labels, names, roi, num_classes)

    def spy_sampler(images, labels, size):
        seen.setdefault("train", []).extend(tuple(i.shape) for i in images)
        return real_sampler(images, labels, size)

    monkeypatch.setattr(ablation, "evaluate_images", spy_eval)
    monkeypatch.setattr(ablation, "CropSampler", spy_sampler)
    argv = [
        "--data-dir",
        str(tiny_image_folder),
        "--out",
        str(tmp_path),
        "--arms",
        "none",
        "cutmix_paper",
        "--resize",
        "16",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--channels",
        "4",
        "8",
        "--folds",
        "3",
        "--only-folds",
        "0",
        "--seeds",
        "0",
        "--eval-every",
        "1",
    ]
    assert main(argv) == 0
    # the 32 x 32 images are resized whole to 16 x 16 for training and for testing (one window covers each)
    assert set(seen["train"]) == {(3, 16, 16)} and {(i, l, r) for i, l, r in seen["test"]} == {
        ((3, 16, 16), (1, 16, 16), 16)
    }
    run = json.loads((tmp_path / "runs" / "cutmix_paper_seed0_fold0.json").read_text())
    assert run["settings"]["resize"] == 16 and run["settings"]["train"]["image_size"] == 16
    assert (run["samples_per_step"], run["sources_per_step"], run["mixed_steps"]) == (8, 4, 2)
    text = (tmp_path / "report.md").read_text()
    assert "resized to 16x16" in text and "cutmix_paper − none" not in text  # only listed controls
    assert "## Learning curves" in text and (tmp_path / "learning_curves.png").stat().st_size > 1000


def test_learning_curves_do_not_change_the_run(tiny_image_folder, image_sweep, tmp_path):
    _run_images(tiny_image_folder, tmp_path, ("none",), "--eval-every", "1", "--only-folds", "0")
    with_curve = json.loads((tmp_path / "runs" / "none_seed0_fold0.json").read_text())
    without = json.loads((image_sweep / "runs" / "none_seed0_fold0.json").read_text())
    assert [p["step"] for p in with_curve["curve"]] == [1, 2] and without["curve"] == []
    assert with_curve["volumes"] == without["volumes"] and with_curve["final_train_loss"] == without["final_train_loss"]
    from monai_hsmix.apps.ablation.train2d import mean_foreground_dice

    assert with_curve["curve"][-1]["mean_fg_dsc"] == pytest.approx(mean_foreground_dice(with_curve["volumes"]))


def test_test_dir_trains_on_every_image_and_tests_on_the_other_folder(tiny_image_folder, tmp_path):
    from tests.apps.ablation.test_image_folder import write_image_folder

    test_dir = write_image_folder(tmp_path / "test", 2, size=32, seed=5)
    for sub in ("images", "masks"):  # stems must differ from the training images'
        for f in sorted((test_dir / sub).iterdir()):
            f.rename(f.with_name("t" + f.name))
    argv = [
        "--data-dir",
        str(tiny_image_folder),
        "--out",
        str(tmp_path / "out"),
        "--arms",
        "none",
        "--test-dir",
        str(test_dir),
        "--image-size",
        "16",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--channels",
        "4",
        "8",
        "--seeds",
        "0",
    ]
    assert main(argv) == 0
    run = json.loads((tmp_path / "out" / "runs" / "none_seed0.json").read_text())
    assert run["settings"]["train_images"] == [f"img{i:02d}" for i in range(6)]
    assert sorted(v["volume"] for v in run["volumes"]) == ["timg00", "timg01"] and run["fold"] is None
    assert "tested on the 2 images of" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize(
    "extra,named",
    [
        (["--resize", "16", "--image-size", "32"], "leave out --image-size"),
        (["--test-dir", "{data}", "--only-folds", "0"], "--only-folds"),
        (["--eval-every", "-1"], "--eval-every"),
    ],
)
def test_protocol_options_are_checked(tiny_image_folder, tiny_decathlon, tmp_path, capsys, extra, named):
    extra = [e.replace("{data}", str(tiny_image_folder)) for e in extra]
    with pytest.raises(SystemExit) as info:
        main(["--data-dir", str(tiny_image_folder), "--out", str(tmp_path), "--arms", "none", *extra])
    assert info.value.code == 2 and named in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tiny_decathlon), "--out", str(tmp_path), "--arms", "none", "--resize", "32"])
    assert "is for image folders" in capsys.readouterr().err


def test_compare_to_pairs_runs_with_another_schedule(tiny_decathlon, first_sweep, tmp_path):
    report = _run(tiny_decathlon, tmp_path, "--steps", "2", "--compare-to", str(first_sweep))
    section = report.read_text().split("## Against other sweeps")[1]
    assert f"### Against `{first_sweep}`" in section
    assert "Settings that differ: train.steps: here 2, there 3." in section
    assert "| none | 1 |" in section and "| hsmix_both | 1 |" in section


@pytest.mark.parametrize("target,named", [("out", "this sweep's own --out"), ("empty", "no runs/ folder")])
def test_compare_to_is_checked_before_training(tiny_decathlon, tmp_path, capsys, target, named):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as info:
        _run(tiny_decathlon, tmp_path / "out", "--compare-to", str(tmp_path / target))
    assert info.value.code == 2 and named in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs").exists()

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_hsmix.apps import softcp_synthesize as app


def _write_dataset(root: Path, n=6, shape=(16, 16, 12), multi_file=False):
    rng = np.random.RandomState(0)
    entries = []
    for i in range(n):
        affine = np.diag([1.5, 1.5, 2.0, 1.0])
        img = rng.rand(*shape, 2).astype(np.float32)
        lbl = np.zeros(shape, dtype=np.uint8)
        c = rng.randint(5, 11, size=3)
        lbl[c[0] - 2 : c[0] + 2, c[1] - 2 : c[1] + 2, c[2] - 1 : c[2] + 2] = 2
        lbl[c[0], c[1], c[2]] = 1
        mask = np.zeros(shape, dtype=np.uint8)
        mask[2:-2, 2:-2, 1:-1] = 1
        (root / "imagesTr").mkdir(parents=True, exist_ok=True)
        (root / "labelsTr").mkdir(exist_ok=True)
        if multi_file:
            image = []
            for ch, name in enumerate(("flair", "t1c")):
                nib.save(nib.Nifti1Image(img[..., ch], affine), str(root / f"imagesTr/case{i}_{name}.nii.gz"))
                image.append(f"imagesTr/case{i}_{name}.nii.gz")
        else:
            nib.save(nib.Nifti1Image(img, affine), str(root / f"imagesTr/case{i}.nii.gz"))
            image = f"./imagesTr/case{i}.nii.gz"
        nib.save(nib.Nifti1Image(lbl, affine), str(root / f"labelsTr/case{i}.nii.gz"))
        nib.save(nib.Nifti1Image(mask, affine), str(root / f"labelsTr/mask{i}.nii.gz"))
        entries.append({"image": image, "label": f"./labelsTr/case{i}.nii.gz", "mask": f"labelsTr/mask{i}.nii.gz"})
    ds = {"name": "tiny", "numTraining": n, "labels": {"0": "bg", "1": "core", "2": "edge"}, "training": entries}
    (root / "dataset.json").write_text(json.dumps(ds))
    return root / "dataset.json"


def _args(datalist, out, *extra):
    return [
        "--datalist",
        str(datalist),
        "--output-dir",
        str(out),
        "--label-values",
        "1",
        "2",
        "--ratio",
        "2",
        "--seed",
        "3",
        "--reference-key",
        "mask",
        "--s2",
        "0.5",
        "--no-progress",
        *extra,
    ]


def _refused(argv, capsys) -> str:
    """What the command prints when it stops on bad input: one message, exit code 2, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        app.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: " in err
    return err


def _mtimes(out: Path):
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "dataset.json"}


def test_synthesis_writes_cases_and_datalist(tmp_path):
    datalist = _write_dataset(tmp_path / "data")
    out = tmp_path / "out"
    assert app.main(_args(datalist, out)) == 0
    ds = json.loads((out / "dataset.json").read_text())
    real = [e for e in ds["training"] if not e.get("synthetic")]
    syn = [e for e in ds["training"] if e.get("synthetic")]
    assert len(real) == 6 and len(syn) == 3 and ds["numTraining"] == 9 and ds["name"] == "tiny"
    for e in ds["training"]:  # every path resolves from the new dataset.json's folder
        assert (out / e["image"]).is_file() and (out / e["label"]).is_file() and (out / e["mask"]).is_file()
    for e in syn:
        main = real[e["softcp_main"]]
        src = nib.load(str(out / main["image"]))
        res = nib.load(str(out / e["image"]))
        assert res.shape == src.shape == (16, 16, 12, 2)
        np.testing.assert_allclose(res.affine, src.affine)
        lbl_src = np.asarray(nib.load(str(out / main["label"])).dataobj)
        lbl_res = np.asarray(nib.load(str(out / e["label"])).dataobj)
        pasted = lbl_res != lbl_src
        assert pasted.any() and set(np.unique(lbl_res[pasted])) <= {1, 2}
        assert np.all(np.asarray(nib.load(str(out / e["mask"])).dataobj)[pasted] == 1)  # s1 inside the mask


def test_resume_does_not_rewrite_finished_cases(tmp_path, monkeypatch):
    datalist = _write_dataset(tmp_path / "data", multi_file=True)
    out = tmp_path / "out"
    app.main(_args(datalist, out))
    first = _mtimes(out)
    assert len(first) == 3 * 4 + 1  # per case: 2 channel files, a label and the sidecar; the settings record
    contents = {p: p.read_bytes() for p in first}
    victim = sorted(out.glob("imagesSyn/syn_00001_*"))[0]
    victim.unlink()
    # an interrupted write leaves only a partial file behind
    partial = out / "imagesSyn" / ".partial-999-syn_00002_00_case0_flair.nii.gz"
    partial.write_bytes(b"truncated")

    calls = []
    real_case = app._synthesize_case

    def counting(index, *a, **k):
        calls.append(index)
        return real_case(index, *a, **k)

    monkeypatch.setattr(app, "_synthesize_case", counting)
    app.main(_args(datalist, out))
    assert calls == [1] and not partial.exists()
    after = _mtimes(out)
    for path, mtime in first.items():
        if "syn_00001" not in path.name:
            assert after[path] == mtime, f"{path} was rewritten"
    assert victim.read_bytes() == contents[victim]  # same seed, same case
    ds = json.loads((out / "dataset.json").read_text())
    assert sum(e.get("synthetic", False) for e in ds["training"]) == 3


def test_interruption_mid_run_then_resume_matches_a_clean_run(tmp_path, monkeypatch):
    datalist = _write_dataset(tmp_path / "data")
    clean = tmp_path / "clean"
    app.main(_args(datalist, clean))

    real_save = app.save_nifti_like
    state = {"n": 0}

    def failing_save(*a, **k):
        state["n"] += 1
        if state["n"] == 4:  # case 0: image + label; case 1: image, then the crash
            raise KeyboardInterrupt
        return real_save(*a, **k)

    out = tmp_path / "out"
    monkeypatch.setattr(app, "save_nifti_like", failing_save)
    with pytest.raises(KeyboardInterrupt):
        app.main(_args(datalist, out))
    monkeypatch.setattr(app, "save_nifti_like", real_save)
    case0 = {p: p.stat().st_mtime_ns for p in out.rglob("syn_00000*")}
    assert len(case0) == 3 and not (out / "dataset.json").exists()
    app.main(_args(datalist, out))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("syn_00000*")} == case0
    for p in clean.rglob("syn_*.nii.gz"):
        a = np.asarray(nib.load(str(p)).dataobj)
        b = np.asarray(nib.load(str(out / p.relative_to(clean))).dataobj)
        np.testing.assert_array_equal(a, b)


def test_bad_inputs(tmp_path, capsys):
    datalist = _write_dataset(tmp_path / "data", n=2)
    assert "ratio" in _refused(_args(datalist, tmp_path / "o", "--ratio", "0"), capsys)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"training": [{"image": "x.nii.gz"}, {"image": "y.nii.gz"}]}))
    assert "'label'" in _refused(_args(bad, tmp_path / "o"), capsys)
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"training": []}))
    assert "non-empty" in _refused(_args(one, tmp_path / "o"), capsys)
    assert "alpha" in _refused(_args(datalist, tmp_path / "o", "--alpha", "1.2"), capsys)
    missing = tmp_path / "missing.json"
    assert str(missing) in _refused(_args(missing, tmp_path / "o"), capsys)
    # the functions keep raising for code that calls them
    with pytest.raises(ValueError, match="ratio"):
        app.synthesize(
            app.SynthesisConfig(datalist, tmp_path / "o", ratio=0, progress=False, paste={"label_values": [1]})
        )


def test_cases_without_any_valid_donor_are_counted_as_failed(tmp_path):
    datalist = _write_dataset(tmp_path / "data", n=4)
    summary = app.synthesize(
        app.SynthesisConfig(datalist, tmp_path / "o", ratio=2, progress=False, paste={"label_values": [9]})
    )
    assert summary["failed"] == 2 and summary["synthetic"] == 0
    ds = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert len(ds["training"]) == 4 and ds["softcp"]["failed"] == 2


def test_absolute_paths_stay_absolute_and_relative_ones_are_rebased(tmp_path):
    datalist = _write_dataset(tmp_path / "data", n=4)
    ds = json.loads(datalist.read_text())
    ds["training"][0]["label"] = str((tmp_path / "data" / ds["training"][0]["label"]).resolve())
    datalist.write_text(json.dumps(ds))
    out = tmp_path / "deeper" / "out"
    app.main(_args(datalist, out))
    written = json.loads((out / "dataset.json").read_text())["training"]
    assert written[0]["label"] == ds["training"][0]["label"]
    assert written[1]["label"] == "../../data/labelsTr/case1.nii.gz"


@pytest.mark.parametrize(
    "change,named",
    [
        (["--seed", "4"], "seed: 3 in softcp_settings.json, 4 now"),
        (["--label-values", "2"], "label_values"),
        (["--ratio", "3"], "ratio: 2.0 in"),
    ],
)
def test_a_rerun_with_other_settings_stops_naming_them(tmp_path, change, named, capsys):
    datalist = _write_dataset(tmp_path / "data")
    out = tmp_path / "out"
    app.main(_args(datalist, out))
    before = _mtimes(out), (out / "dataset.json").read_text()
    argv = _args(datalist, out)
    for i in range(0, len(change), 2):  # replace the option's value
        at = argv.index(change[i])
        end = at + 1
        while end < len(argv) and not argv[end].startswith("--"):
            end += 1
        argv[at:end] = change[i : i + 2]
    message = _refused(argv, capsys)
    assert named in message and "--output-dir" in message
    assert (_mtimes(out), (out / "dataset.json").read_text()) == before, "the refused rerun changed the folder"
    assert app.main(_args(datalist, out)) == 0  # the same settings still resume


def test_the_input_datalist_is_never_overwritten(tmp_path, capsys):
    datalist = _write_dataset(tmp_path / "data")
    original = datalist.read_text()
    assert "overwrite the input datalist" in _refused(_args(datalist, datalist.parent), capsys)
    with pytest.raises(app.SynthesisSettingsError, match="overwrite the input datalist"):
        app.synthesize(
            app.SynthesisConfig(datalist, datalist.parent, ratio=2, progress=False, paste={"label_values": [1, 2]})
        )
    assert datalist.read_text() == original and not (datalist.parent / "imagesSyn").exists()


def test_synthetic_entries_of_an_earlier_output_are_no_real_source(tmp_path):
    datalist = _write_dataset(tmp_path / "data")
    first = tmp_path / "first"
    app.main(_args(datalist, first))
    with pytest.warns(UserWarning, match="ignoring 3 entries marked 'synthetic'"):
        summary = app.synthesize(
            app.SynthesisConfig(
                first / "dataset.json",
                tmp_path / "second",
                ratio=2,
                seed=3,
                reference_key="mask",
                progress=False,
                paste={"label_values": [1, 2], "s2": 0.5},
            )
        )
    assert summary["real"] == 6
    ds = json.loads((tmp_path / "second" / "dataset.json").read_text())
    real = [e for e in ds["training"] if not e.get("synthetic")]
    assert len(real) == 6 and len(ds["training"]) == 9
    assert not any("imagesSyn" in json.dumps(e) for e in real)
    assert all(0 <= e["softcp_main"] < 6 and 0 <= e["softcp_donor"] < 6 for e in ds["training"] if e.get("synthetic"))


def test_a_truncated_volume_is_named(tmp_path, capsys):
    datalist = _write_dataset(tmp_path / "data", n=2)
    victim = tmp_path / "data" / "labelsTr" / "case1.nii.gz"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    assert str(victim) in _refused(_args(datalist, tmp_path / "out"), capsys)


def test_object_augmentation_settings_build_the_object_transform():
    from monai.transforms import Compose, RandFlipd, RandRotated

    from monai_hsmix.apps.softcp_synthesize import paster_from_settings

    # the settings file keeps plain values (flip_prob, ...): they become the paster's Compose
    paster = paster_from_settings({"label_values": [1, 2], "s2": 0.5, "flip_prob": 1.0, "rotate_prob": 0.25}, 3)
    assert paster.s2 == 0.5 and paster.label_values == (1, 2) and paster.prob == 1.0
    assert isinstance(paster.object_transform, Compose)
    flips = [t for t in paster.object_transform.transforms if isinstance(t, RandFlipd)]
    rotations = [t for t in paster.object_transform.transforms if isinstance(t, RandRotated)]
    assert len(flips) == 3 and all(t.prob == 1.0 for t in flips) and rotations[0].prob == 0.25
    with pytest.raises(ValueError, match="flip_prob"):
        paster_from_settings({"flip_prob": 2.0}, 3)

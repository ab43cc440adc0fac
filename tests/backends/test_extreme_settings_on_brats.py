"""The settings and intensities that killed the process (signal 11) on real BraTS slices, run in a child
process so that a crash fails this test, naming the case, instead of ending the test run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = ("compactness", "spacing", "huge")

_CHILD = textwrap.dedent("""
    import json, sys
    import nibabel as nib, numpy as np, torch
    from monai_hsmix import RandHSMixd
    from monai_hsmix.backends.torch_slic import torch_slic

    case_dir = sys.argv[1]
    flair = nib.load(case_dir + "/Flair_subtrMeanDivStd.nii.gz").get_fdata(dtype=np.float32)
    t1c = nib.load(case_dir + "/T1c_subtrMeanDivStd.nii.gz").get_fdata(dtype=np.float32)
    labels = np.asarray(nib.load(case_dir + "/OTMultiClass.nii.gz").dataobj).astype(np.int64)
    z = [70, 80, 90, 100]
    slices = torch.from_numpy(np.stack([np.stack([flair[8:232, 8:232, k], t1c[8:232, 8:232, k]]) for k in z]))
    labels = torch.from_numpy(np.stack([labels[None, 8:232, 8:232, k] for k in z])).clamp(max=3)

    def counts(images, engine, compactness=0.003, spacing=None):
        seg = torch_slic(images, torch.full((4,), 100), compactness, spacing=spacing, engine=engine)
        return [int(s.max()) + 1 for s in seg]

    for case in sys.argv[2:]:
        print("starting", case, flush=True)
        images, options = slices, dict(n_segments=(50, 150), compactness=0.003)
        if case == "compactness":
            options["compactness"] = 1e-20
        elif case == "spacing":
            options["spacing"] = (1e20, 1.0)
        else:  # the same slices at float32's limit
            images = slices / slices.abs().amax() * 3e38
        result = {"case": case}
        for engine in ("numba", "torch"):
            try:
                result[engine] = counts(images, engine, options["compactness"], options.get("spacing"))
            except ValueError as err:
                result[engine] = str(err)
        flat = images.double().flatten(1)
        lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
        unit = ((images.double() - lo) / (hi - lo)).float()
        result["unit"] = {e: counts(unit, e) for e in ("numba", "torch")}
        mix = RandHSMixd(["image", "label"], "label", num_classes=4, **options).set_random_state(0)
        try:
            out = mix({"image": images, "label": labels})
            result["transform"] = bool(torch.isfinite(out["image"]).all())
        except ValueError as err:
            result["transform"] = str(err)
        print(json.dumps(result), flush=True)
""")


def test_extreme_settings_and_intensities_on_brats_slices(brats2015_dir, subprocess_env):
    case_dir = brats2015_dir / "train" / "brats_2013_pat0005_1"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(case_dir), *CASES],
        cwd=REPO,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = proc.stdout.strip().splitlines()
    started = [line.split()[1] for line in lines if line.startswith("starting ")]
    assert proc.returncode == 0, (
        f"the child process ended with {proc.returncode} in case {started[-1:]}:\n{proc.stderr[-3000:]}"
    )
    results = {r["case"]: r for r in (json.loads(line) for line in lines if line.startswith("{"))}
    assert sorted(results) == sorted(CASES)
    for case in ("compactness", "spacing"):
        # both engines and the transform refuse the setting, naming it
        r = results[case]
        assert r["numba"] == r["torch"] == r["transform"], r
        assert r["numba"].startswith(f"{case}=") and "overflow" in r["numba"]
    # both engines give the superpixels of the same images scaled to [0, 1], and the mix is finite
    r = results["huge"]
    assert r["numba"] == r["unit"]["numba"] and r["torch"] == r["unit"]["torch"], r
    assert r["transform"] is True

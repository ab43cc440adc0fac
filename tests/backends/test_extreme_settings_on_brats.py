"""The settings and intensities that killed the process (signal 11) on real BraTS slices, each in a child
process so that a crash fails this test instead of ending the test run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent('''
    import json, sys
    import nibabel as nib, numpy as np, torch
    from monai_hsmix import RandHSMixd
    from monai_hsmix.backends.torch_slic import torch_slic

    case_dir, case = sys.argv[1], sys.argv[2]
    flair = nib.load(case_dir + "/Flair_subtrMeanDivStd.nii.gz").get_fdata(dtype=np.float32)
    t1c = nib.load(case_dir + "/T1c_subtrMeanDivStd.nii.gz").get_fdata(dtype=np.float32)
    labels = np.asarray(nib.load(case_dir + "/OTMultiClass.nii.gz").dataobj).astype(np.int64)
    z = [70, 80, 90, 100]
    images = torch.from_numpy(np.stack([np.stack([flair[8:232, 8:232, k], t1c[8:232, 8:232, k]]) for k in z]))
    labels = torch.from_numpy(np.stack([labels[None, 8:232, 8:232, k] for k in z])).clamp(max=3)
    options = dict(n_segments=(50, 150), compactness=0.003)
    if case == "compactness":
        options["compactness"] = 1e-20
    elif case == "spacing":
        options["spacing"] = (1e20, 1.0)
    elif case == "huge":
        images = images / images.abs().amax() * 3e38
    result = {}
    for engine in ("numba", "torch"):
        try:
            seg = torch_slic(images, torch.full((4,), 100), options["compactness"], spacing=options.get("spacing"),
                             engine=engine)
            result[engine] = [int(s.max()) + 1 for s in seg]
        except ValueError as err:
            result[engine] = str(err)
    flat = images.double().flatten(1)
    lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    unit = ((images.double() - lo) / (hi - lo)).float()
    result["unit"] = {e: [int(s.max()) + 1 for s in torch_slic(unit, torch.full((4,), 100), 0.003, engine=e)]
                      for e in ("numba", "torch")}
    mix = RandHSMixd(["image", "label"], "label", num_classes=4, **options).set_random_state(0)
    try:
        out = mix({"image": images, "label": labels})
        result["transform"] = bool(torch.isfinite(out["image"]).all())
    except ValueError as err:
        result["transform"] = str(err)
    print(json.dumps(result))
''')


@pytest.mark.parametrize("case", ["compactness", "spacing", "huge"])
def test_extreme_settings_and_intensities_on_brats_slices(brats2015_dir, case):
    case_dir = brats2015_dir / "train" / "brats_2013_pat0005_1"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(case_dir), case], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"the child process ended with {proc.returncode}:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if case == "huge":
        # both engines give the superpixels of the same images scaled to [0, 1], and the mix is finite
        assert result["numba"] == result["unit"]["numba"] and result["torch"] == result["unit"]["torch"], result
        assert result["transform"] is True
    else:
        # both engines and the transform refuse the setting, naming it
        assert result["numba"] == result["torch"] == result["transform"], result
        assert result["numba"].startswith(f"{case}=") and "overflow" in result["numba"]

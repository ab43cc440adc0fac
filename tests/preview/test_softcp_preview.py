import argparse

import numpy as np
import pytest
from PIL import Image

from monai_hsmix.preview import softcp


def _args(*argv):
    parser = argparse.ArgumentParser()
    softcp.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_demo_preview_writes_a_png(tmp_path):
    out = softcp.run(_args("--output", str(tmp_path / "demo.png"), "--num-rings", "3", "--ring-width", "1"))
    with Image.open(out) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("L"))
    assert out.is_file() and w > 2 * h > 300 and pixels.std() > 10


def test_demo_data_only_donor_has_a_lesion():
    cases = softcp.demo_cases(0)
    assert cases["main_label"].max() == 0 and set(np.unique(cases["donor_label"])) == {0, 2, 4}
    assert cases["reference"][cases["donor_label"] > 0].all()


def test_partial_file_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="--main-image"):
        softcp.run(_args("--main-label", str(tmp_path / "x.nii.gz"), "--output", str(tmp_path / "p.png")))


def test_unpastable_configuration_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="no_lesion_in_donor"):
        softcp.run(_args("--label-values", "9", "--output", str(tmp_path / "p.png")))


def test_preview_on_brats2015(brats2015_dir, tmp_path):
    main, donor = brats2015_dir / "train" / "brats_2013_pat0005_1", brats2015_dir / "test" / "brats_2013_pat0001_1"
    if not (main.is_dir() and donor.is_dir()):
        pytest.skip(f"expected BraTS cases {main.name} and {donor.name} under {brats2015_dir}")
    files = ["Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"]
    out = softcp.run(
        _args(
            "--main-image",
            *[str(main / f) for f in files],
            "--main-label",
            str(main / "OTMultiClass.nii.gz"),
            "--main-reference",
            str(main / "brainmask.nii.gz"),
            "--donor-image",
            *[str(donor / f) for f in files],
            "--donor-label",
            str(donor / "OTMultiClass.nii.gz"),
            "--channel-names",
            "FLAIR",
            "T1c",
            "--downsample",
            "3",
            "--num-rings",
            "2",
            "--ring-width",
            "1",
            "--min-lesion-voxels",
            "20",
            "--output",
            str(tmp_path / "brats.png"),
        )
    )
    assert out.is_file() and out.stat().st_size < 300_000

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_hsmix.data import cardiac_phantom, cardiac_volume
from monai_hsmix.preview.__main__ import main


def _is_png(path):
    with Image.open(path) as img:
        return img.format == "PNG" and img.size[0] > 400


def test_preview_on_demo_phantoms(tmp_path):
    out = tmp_path / "demo.png"
    assert (
        main(["hsmix", "--output", str(out), "--size", "48", "--n-segments", "10", "20", "--backend", "reference"]) == 0
    )
    assert _is_png(out)


def test_preview_from_nifti_volumes_and_pngs(tmp_path):
    paths = {}
    for i in range(2):
        vol, lab = cardiac_volume(32, 5, seed=i)
        for kind, arr in (("image", vol[0]), ("label", lab[0].astype(np.uint8))):
            paths[f"{kind}{i}"] = tmp_path / f"{kind}{i}.nii.gz"
            nib.save(nib.Nifti1Image(arr, np.eye(4)), str(paths[f"{kind}{i}"]))
    out = tmp_path / "nifti.png"
    main(
        [
            "hsmix",
            "--image1",
            str(paths["image0"]),
            "--label1",
            str(paths["label0"]),
            "--image2",
            str(paths["image1"]),
            "--label2",
            str(paths["label1"]),
            "--preset",
            "synapse",
            "--n-segments",
            "8",
            "16",
            "--output",
            str(out),
        ]
    )
    assert _is_png(out)
    for i in range(2):
        img, lab = cardiac_phantom(32, seed=i)
        Image.fromarray((img[0] * 255).astype(np.uint8)).save(tmp_path / f"i{i}.png")
        Image.fromarray(lab[0].astype(np.uint8)).save(tmp_path / f"l{i}.png")
    main(
        [
            "hsmix",
            "--image1",
            str(tmp_path / "i0.png"),
            "--label1",
            str(tmp_path / "l0.png"),
            "--image2",
            str(tmp_path / "i1.png"),
            "--label2",
            str(tmp_path / "l1.png"),
            "--n-segments",
            "8",
            "12",
            "--output",
            str(tmp_path / "png.png"),
        ]
    )
    assert _is_png(tmp_path / "png.png")


def test_preview_rejects_partial_or_mismatched_input(tmp_path):
    with pytest.raises(ValueError, match="give all of"):
        main(["hsmix", "--image1", "a.png", "--output", str(tmp_path / "x.png")])
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(
            [
                "hsmix",
                "--image1",
                "a.png",
                "--label1",
                "b.png",
                "--image2",
                "c.png",
                "--label2",
                "d.png",
                "--output",
                str(tmp_path / "x.png"),
            ]
        )

"""Superpixels of every HSMix preset on real data of its modality: count, boundary recall, regularity.

For each preset, the same crops and the same per-image counts (drawn from the preset's range) go
through scikit-image run as the paper ran it (Lab for RGB images), both backends of this package,
and a square grid of the same count. Data: ``../shared/data`` (or ``$MONAI_HSMIX_DATA``):
MoNuSeg H&E crops for the RGB presets, ACDC cine-MRI slices for ``synapse`` (one grey channel),
BraTS 2015 FLAIR + T1c slices with tumour for ``brats2018``.

    python benchmarks/superpixel_quality.py            # the table of docs/superpixels.md
    python benchmarks/superpixel_quality.py --quick    # fewer crops
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monai_hsmix.backends.quality import boundary_recall, regularity  # noqa: E402
from monai_hsmix.backends.reference import skimage_slic  # noqa: E402
from monai_hsmix.backends.torch_slic import torch_slic  # noqa: E402
from monai_hsmix.transforms.hsmix_presets import HSMIX_PRESETS  # noqa: E402

CROP = 224


def data_root() -> Path:
    env = os.environ.get("MONAI_HSMIX_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def _centre(a: np.ndarray, size: int, offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    h0 = max(0, (a.shape[-2] - size) // 2 + offset[0])
    w0 = max(0, (a.shape[-1] - size) // 2 + offset[1])
    out = a[..., h0 : h0 + size, w0 : w0 + size]
    pad = [(0, 0)] * (a.ndim - 2) + [(0, size - out.shape[-2]), (0, size - out.shape[-1])]
    return np.pad(out, pad)


def monuseg_crops(root: Path, n: int) -> Tuple[torch.Tensor, np.ndarray]:
    from monai_hsmix.data.nuclei_data import list_monuseg_pairs, read_monuseg_pair

    images, truths = [], []
    for image_path, mask_path in list_monuseg_pairs(root / "monuseg_subset"):
        image, instances = read_monuseg_pair(image_path, mask_path)
        for offset in ((-250, -250), (250, 250)):
            images.append(_centre(image, CROP, offset))
            truths.append(_centre(instances, CROP, offset))
        if len(images) >= n:
            break
    return torch.from_numpy(np.stack(images[:n]).astype(np.float32)), np.stack(truths[:n])


def acdc_slices(root: Path, n: int) -> Tuple[torch.Tensor, np.ndarray]:
    import nibabel as nib

    images, truths = [], []
    for f in sorted((root / "acdc" / "imagesTr").glob("*.nii.gz"))[: 2 * n : 2]:
        vol = np.asarray(nib.load(str(f)).dataobj, dtype=np.float32)
        lab = np.asarray(nib.load(str(root / "acdc" / "labelsTr" / f.name)).dataobj).astype(np.int64)
        z = vol.shape[2] // 2
        images.append(_centre(vol[:, :, z], CROP)[None])
        truths.append(_centre(lab[:, :, z], CROP))
    return torch.from_numpy(np.stack(images)), np.stack(truths)


def brats_slices(root: Path, n: int) -> Tuple[torch.Tensor, np.ndarray]:
    import nibabel as nib

    images, truths = [], []
    cases = sorted(
        p for split in ("train", "validation", "test") for p in (root / "brats2015_subset" / split).iterdir()
    )
    per_case = max(1, -(-n // len(cases)))
    for case in cases:
        flair = np.asarray(nib.load(str(case / "Flair_subtrMeanDivStd.nii.gz")).dataobj, dtype=np.float32)
        t1c = np.asarray(nib.load(str(case / "T1c_subtrMeanDivStd.nii.gz")).dataobj, dtype=np.float32)
        lab = np.asarray(nib.load(str(case / "OTMultiClass.nii.gz")).dataobj).astype(np.int64)
        with_tumour = np.nonzero((lab > 0).sum(axis=(0, 1)))[0]
        for z in with_tumour[np.linspace(0, len(with_tumour) - 1, per_case + 2).astype(int)[1:-1]]:
            images.append(_centre(np.stack([flair[:, :, z], t1c[:, :, z]]), CROP))
            truths.append(_centre(lab[:, :, z], CROP))
    return torch.from_numpy(np.stack(images[:n])), np.stack(truths[:n])


def square_grid(shape: Tuple[int, int], count: int) -> np.ndarray:
    side = max(1.0, (shape[0] * shape[1] / count) ** 0.5)
    rows = (np.arange(shape[0]) / side).astype(int)
    cols = (np.arange(shape[1]) / side).astype(int)
    return rows[:, None] * (cols.max() + 1) + cols[None, :]


def evaluate(images: torch.Tensor, truths: np.ndarray, preset: str, seed: int) -> Dict[str, List[float]]:
    settings = HSMIX_PRESETS[preset]
    rng = np.random.RandomState(seed)
    counts = torch.as_tensor(rng.randint(settings.n_segments[0], settings.n_segments[1] + 1, size=len(images)))
    space = settings.slic_space
    # the reference backend is scikit-image run as the paper ran it: its row is the first one
    maps = {
        "scikit-image (paper)": skimage_slic(images, counts, settings.compactness, slic_space=space).numpy(),
        # the CPU default (numba kernels) and the torch operations a GPU runs
        "torch backend, numba engine": torch_slic(
            images, counts, settings.compactness, slic_space=space, engine="numba"
        ).numpy(),
        "torch backend, torch engine": torch_slic(
            images, counts, settings.compactness, slic_space=space, engine="torch"
        ).numpy(),
        "square grid": np.stack([square_grid(truths.shape[1:], int(c)) for c in counts]),
    }
    if space == "lab":  # what this package did before the feature space was explicit
        maps["torch, no Lab (old)"] = torch_slic(images, counts, settings.compactness).numpy()
    rows = {}
    for name, segs in maps.items():
        rows[name] = [
            float(np.mean([len(np.unique(s)) for s in segs])),
            float(np.mean([boundary_recall(s, t) for s, t in zip(segs, truths)])),
            float(np.mean([regularity(s) for s in segs])),
        ]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 crops per dataset instead of 16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = data_root()
    if not root.is_dir():
        print(f"no data at {root}: set MONAI_HSMIX_DATA to the folder holding monuseg_subset, acdc, brats2015_subset")
        return 1
    n = 4 if args.quick else 16
    data = {
        "monuseg": monuseg_crops(root, n),
        "acdc": acdc_slices(root, n),
        "brats": brats_slices(root, n),
    }
    studies = [
        ("glas", "monuseg"),
        ("monuseg", "monuseg"),
        ("isic2017", "monuseg"),
        ("synapse", "acdc"),
        ("brats2018", "brats"),
    ]
    print(
        f"{n} crops of {CROP} x {CROP} per dataset; boundary recall with a 2-pixel tolerance; "
        "regularity = area-weighted 4 pi A / P^2"
    )
    print("| preset (space, compactness) | data | method | segments | boundary recall | regularity |")
    print("| --- | --- | --- | --- | --- | --- |")
    for preset, dataset in studies:
        settings = HSMIX_PRESETS[preset]
        images, truths = data[dataset]
        for method, (count, recall, regular) in evaluate(images, truths, preset, args.seed).items():
            print(
                f"| {preset} ({settings.slic_space}, {settings.compactness:g}) | {dataset} | {method} | "
                f"{count:.0f} | {recall:.3f} | {regular:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

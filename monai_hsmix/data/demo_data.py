"""Small deterministic synthetic datasets in the real layouts, so the bundles run without downloads.

* ``synapse``: abdominal "CT" in Hounsfield units with organ-shaped ellipsoids carrying BTCV's labels
  (including organs Synapse drops), written as raw BTCV NIfTI (``RawData/Training``) and converted to
  TransUNet's layout by :func:`monai_hsmix.data.synapse.convert_btcv` in the same folder.
* ``brats2018``: four-modality "MRI" (T1, T1Gd, T2, FLAIR) of a brain with a tumour made of oedema
  (2), a necrotic core (1) and an enhancing rim (4), in BraTS2018 naming.

The images are not anatomy; they only have the structure the pipelines rely on (intensity contrast
per class, nested tumour regions, background zero outside the brain).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from monai_hsmix.data.io import PathLike
from monai_hsmix.optional import require

__all__ = ["DEMO_DATASETS", "make_demo_dataset", "resolve_dataset_dir", "synthetic_abdomen", "synthetic_brain"]

_logger = logging.getLogger(__name__)

DEMO_DATASETS = ("synapse", "brats2018")
_COMPLETE = ".demo_complete"

# BTCV id -> (centre x, y, z in [-1, 1], radii x, y, z, HU); painted in this order (later wins)
_ABDOMEN = {
    6: ((-0.35, -0.05, 0.1), (0.38, 0.45, 0.9), 60.0),  # liver
    1: ((0.45, 0.15, 0.2), (0.18, 0.22, 0.6), 45.0),  # spleen
    7: ((0.25, -0.3, 0.0), (0.22, 0.16, 0.6), 15.0),  # stomach
    2: ((-0.3, 0.4, -0.2), (0.12, 0.15, 0.5), 160.0),  # right kidney
    3: ((0.3, 0.4, -0.2), (0.12, 0.15, 0.5), 160.0),  # left kidney
    4: ((-0.2, -0.25, -0.1), (0.08, 0.08, 0.35), -5.0),  # gallbladder
    11: ((0.05, 0.1, -0.1), (0.25, 0.06, 0.35), 100.0),  # pancreas
    8: ((0.0, 0.35, 0.0), (0.07, 0.07, 1.2), 230.0),  # aorta
    9: ((-0.12, 0.33, 0.0), (0.06, 0.06, 1.2), 130.0),  # inferior vena cava (dropped by Synapse)
    5: ((0.07, 0.22, 0.3), (0.04, 0.04, 0.8), 30.0),  # oesophagus (dropped by Synapse)
}
# per modality (t1, t1ce, t2, flair): brain, oedema, necrosis, enhancing
_MRI_LEVELS = {
    "t1": (400.0, 330.0, 250.0, 380.0),
    "t1ce": (420.0, 350.0, 260.0, 900.0),
    "t2": (300.0, 700.0, 800.0, 550.0),
    "flair": (350.0, 750.0, 400.0, 600.0),
}


def _grid(shape: Tuple[int, int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def _ellipsoid(grid, centre, radii) -> np.ndarray:
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / max(float(np.abs(field).max()), 1e-6)


def synthetic_abdomen(rng: np.random.Generator, size: int = 64, depth: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """One synthetic CT case: ``(hu int16, btcv_label uint8)``, both ``(size, size, depth)`` as (x, y, z)."""
    shape = (size, size, depth)
    grid = _grid(shape)
    body = _ellipsoid(grid, (0.0, 0.0, 0.0), (0.92, 0.78, 10.0))
    hu = np.where(body, 40.0, -1000.0).astype(np.float32)
    hu[body & ~_ellipsoid(grid, (0.0, 0.0, 0.0), (0.85, 0.7, 10.0))] = -100.0  # subcutaneous fat
    label = np.zeros(shape, dtype=np.uint8)
    for btcv_id, (centre, radii, level) in _ABDOMEN.items():
        jitter_c = np.asarray(centre) + rng.uniform(-0.05, 0.05, 3)
        jitter_r = np.asarray(radii) * rng.uniform(0.85, 1.15, 3)
        organ = _ellipsoid(grid, jitter_c, jitter_r) & body
        label[organ] = btcv_id
        hu[organ] = level + rng.uniform(-10.0, 10.0)
    hu += 15.0 * _smooth_noise(rng, shape, 2.0) + rng.normal(0.0, 12.0, shape).astype(np.float32)
    return np.round(hu).astype(np.int16), label


def synthetic_brain(
    rng: np.random.Generator, size: int = 72, depth: int = 16, tumour_scale: float = 1.0
) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """One synthetic BraTS case: ``({modality: volume}, seg)``, ``(size, size, depth)``, labels 0/1/2/4."""
    shape = (size, size, depth)
    grid = _grid(shape)
    brain = _ellipsoid(grid, (0.0, 0.0, 0.0), (0.8, 0.9, 0.95))
    centre = rng.uniform(-0.3, 0.3, 3) * np.array([1.0, 1.0, 0.3])
    r_oedema = np.array([0.35, 0.35, 0.6]) * rng.uniform(0.8, 1.2, 3) * tumour_scale
    oedema = _ellipsoid(grid, centre, r_oedema) & brain
    core = _ellipsoid(grid, centre + rng.uniform(-0.03, 0.03, 3), r_oedema * 0.6) & brain
    necrosis = _ellipsoid(grid, centre, r_oedema * 0.3) & brain
    seg = np.zeros(shape, dtype=np.uint8)
    seg[oedema] = 2
    seg[core] = 4
    seg[necrosis] = 1
    texture = _smooth_noise(rng, shape, 3.0)
    images = {}
    for modality, (b, o, n, e) in _MRI_LEVELS.items():
        vol = np.where(brain, b * (1.0 + 0.1 * texture), 0.0).astype(np.float32)
        vol[seg == 2], vol[seg == 1], vol[seg == 4] = o, n, e
        vol += np.where(brain, rng.normal(0.0, 25.0, shape), 0.0).astype(np.float32)
        images[modality] = np.clip(np.round(vol), 1, None).astype(np.int16) * brain
    return images, seg


def _save_nifti(array: np.ndarray, path: Path) -> None:
    require("nibabel")  # MONAI's writer needs it; this names the extra to install
    from monai.data import NibabelWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = NibabelWriter(output_dtype=array.dtype)  # its default would store float32
    writer.set_data_array(array, channel_dim=None)
    writer.set_metadata({"affine": np.eye(4), "original_affine": np.eye(4)}, resample=False)
    writer.write(str(path))


def _write_synapse(
    out: Path, rng: np.random.Generator, size: int, depth: int, train_cases: Sequence[int], test_cases: Sequence[int]
) -> None:
    from monai_hsmix.data.synapse import convert_btcv

    raw = out / "RawData" / "Training"
    for case in list(train_cases) + list(test_cases):
        hu, label = synthetic_abdomen(rng, size, depth)
        _save_nifti(hu, raw / "img" / f"img{case:04d}.nii.gz")
        _save_nifti(label, raw / "label" / f"label{case:04d}.nii.gz")
    convert_btcv(out, out, train_cases, test_cases, progress=False)


def _write_brats(out: Path, rng: np.random.Generator, size: int, depth: int, n_hgg: int, n_lgg: int) -> None:
    for i in range(n_hgg + n_lgg):
        grade = "HGG" if i < n_hgg else "LGG"
        case = f"Brats18_DEMO_{i + 1:04d}_1"
        images, seg = synthetic_brain(rng, size, depth, tumour_scale=1.0 if grade == "HGG" else 0.8)
        for modality, vol in images.items():
            _save_nifti(vol, out / grade / case / f"{case}_{modality}.nii.gz")
        _save_nifti(seg, out / grade / case / f"{case}_seg.nii.gz")


def make_demo_dataset(
    dataset: str,
    out_dir: PathLike,
    seed: int = 0,
    size: Optional[int] = None,
    depth: Optional[int] = None,
    overwrite: bool = False,
) -> Path:
    """Write a demo dataset (deterministic for a given ``seed``) and return its folder.

    Parameters
    ----------
    dataset : str
        ``"synapse"`` (4 training and 2 test cases, TransUNet layout plus raw BTCV NIfTI) or
        ``"brats2018"`` (6 HGG and 2 LGG cases, BraTS2018 layout).
    out_dir : path
        Target folder; it must be absent or empty unless ``overwrite``. Writing goes to a temporary
        sibling renamed at the end, so an interrupted or concurrent run never leaves a partial dataset.
    size, depth : int, optional
        In-plane side and number of slices (defaults 64 x 10 for synapse, 72 x 16 for brats2018).
    """
    if dataset not in DEMO_DATASETS:
        raise ValueError(f"unknown demo dataset {dataset!r}; expected one of {DEMO_DATASETS}")
    out = Path(out_dir)
    size = int(size or (64 if dataset == "synapse" else 72))
    depth = int(depth or (10 if dataset == "synapse" else 16))
    if size < 16 or depth < 2:
        raise ValueError(f"demo volumes need size >= 16 and depth >= 2, got size={size}, depth={depth}")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty (pass overwrite=True / --overwrite to replace it)")
        shutil.rmtree(out)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rng = np.random.default_rng(seed)
        if dataset == "synapse":
            _write_synapse(tmp, rng, size, depth, train_cases=(5, 6, 7, 9), test_cases=(1, 2))
        else:
            _write_brats(tmp, rng, size, depth, n_hgg=6, n_lgg=2)
        (tmp / _COMPLETE).write_text(f"{dataset} seed={seed} size={size} depth={depth}\n")
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except OSError:
        if not (out / _COMPLETE).is_file():  # a concurrent process finishing first is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def resolve_dataset_dir(
    dataset_dir: Optional[PathLike],
    dataset: str,
    demo_dir: PathLike,
    seed: int = 0,
    size: Optional[int] = None,
    depth: Optional[int] = None,
) -> str:
    """The dataset folder a bundle should read: ``dataset_dir`` when given, else the demo dataset.

    The demo dataset is generated into ``demo_dir`` on first use and reused afterwards.
    """
    if dataset_dir:
        if not Path(dataset_dir).is_dir():
            raise FileNotFoundError(f"dataset_dir {dataset_dir} does not exist")
        return str(dataset_dir)
    demo = Path(demo_dir)
    if not (demo / _COMPLETE).is_file():
        _logger.warning(
            f"no dataset_dir given: generating a small synthetic {dataset} demo dataset in {demo} "
            "(results on it say nothing about real data; pass --dataset_dir to use yours)"
        )
        make_demo_dataset(dataset, demo, seed=seed, size=size, depth=depth, overwrite=demo.exists())
    else:
        _logger.warning(
            f"no dataset_dir given: using the synthetic {dataset} demo dataset in {demo} "
            "(pass --dataset_dir to use yours)"
        )
    return str(demo)

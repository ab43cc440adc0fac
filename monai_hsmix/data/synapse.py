"""Synapse multi-organ CT in TransUNet's preprocessed layout, and the BTCV -> Synapse conversion.

Layout (as published with TransUNet)::

    train_npz/case0005_slice000.npz      image (H, W) float in [0, 1], label (H, W)
    test_vol_h5/case0001.npy.h5          image, label (D, H, W); attribute "affine" when written by convert_btcv
    lists/lists_Synapse/train.txt        one slice name per line (no extension)
    lists/lists_Synapse/test_vol.txt     one case name per line

``(D, H, W)`` is the NIfTI scan's ``(z, y, x)``: slices have rows = y, columns = x. Volumes are read
back (:class:`LoadSynapseVolumed`) in the scan's ``(x, y, z)`` order with its affine, so predictions
can be written over the scan they came from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_hsmix.data.io import DatasetError, PathLike, load_h5, load_nifti, read_list_file, require_file
from monai_hsmix.optional import require

__all__ = [
    "btcv_label_lut",
    "BTCV_NUM_LABELS",
    "BTCV_TO_SYNAPSE",
    "case_name",
    "convert_btcv",
    "ct_to_unit_range",
    "H5_AFFINE_ATTR",
    "HU_WINDOW",
    "LIST_DIR",
    "LoadSynapseVolumed",
    "map_btcv_labels",
    "NIFTI_SUFFIXES",
    "SYNAPSE_CLASSES",
    "SYNAPSE_TEST_CASES",
    "synapse_test_datalist",
    "SYNAPSE_TRAIN_CASES",
    "synapse_train_datalist",
]

tqdm = require("tqdm.auto", "tqdm")
_logger = logging.getLogger(__name__)

SYNAPSE_CLASSES = (
    "background",
    "spleen",
    "right_kidney",
    "left_kidney",
    "gallbladder",
    "liver",
    "stomach",
    "aorta",
    "pancreas",
)
# TransUNet's split of the 30 BTCV training scans
SYNAPSE_TRAIN_CASES = (5, 6, 7, 9, 10, 21, 23, 24, 26, 27, 28, 30, 31, 33, 34, 37, 39, 40)
SYNAPSE_TEST_CASES = (1, 2, 3, 4, 8, 22, 25, 29, 32, 35, 36, 38)
HU_WINDOW = (-125.0, 275.0)
# BTCV label -> Synapse label; BTCV has 13 organs, Synapse keeps 8 (others, e.g. 5 oesophagus, become 0)
BTCV_TO_SYNAPSE = {1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 7: 6, 8: 7, 11: 8}
BTCV_NUM_LABELS = 13

LIST_DIR = Path("lists") / "lists_Synapse"
H5_AFFINE_ATTR = "affine"
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def case_name(case: int) -> str:
    return f"case{int(case):04d}"


def btcv_label_lut() -> np.ndarray:
    """Lookup table ``lut[btcv_label] -> synapse_label`` for labels ``0..13``."""
    lut = np.zeros(BTCV_NUM_LABELS + 1, dtype=np.uint8)
    for src, dst in BTCV_TO_SYNAPSE.items():
        lut[src] = dst
    return lut


def ct_to_unit_range(hu: np.ndarray) -> np.ndarray:
    """Clip Hounsfield units to TransUNet's abdominal window and scale it to ``[0, 1]``."""
    lo, hi = HU_WINDOW
    return ((np.clip(hu.astype(np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def map_btcv_labels(label: np.ndarray, source: str = "label") -> np.ndarray:
    """Map a BTCV label volume to the 8 Synapse organs; values outside ``0..13`` raise."""
    lab = np.asarray(label)
    if np.issubdtype(lab.dtype, np.floating):
        if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
            raise DatasetError(f"{source}: labels must be whole numbers")
    lab = lab.astype(np.int64)
    bad = (lab < 0) | (lab > BTCV_NUM_LABELS)
    if bad.any():
        raise DatasetError(f"{source}: label values {np.unique(lab[bad]).tolist()} outside BTCV's 0..13")
    return btcv_label_lut()[lab]


def _btcv_case_files(raw_dir: Path, case: int) -> Tuple[Path, Path]:
    root = raw_dir / "RawData" / "Training" if (raw_dir / "RawData" / "Training").is_dir() else raw_dir
    img = root / "img" / f"img{int(case):04d}.nii.gz"
    lab = root / "label" / f"label{int(case):04d}.nii.gz"
    return require_file(img, f"BTCV image of case {case}"), require_file(lab, f"BTCV label of case {case}")


def _read_btcv_case(raw_dir: Path, case: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    img_path, lab_path = _btcv_case_files(raw_dir, case)
    hu, affine = load_nifti(img_path, f"BTCV image of case {case}")
    lab, _ = load_nifti(lab_path, f"BTCV label of case {case}")
    if hu.ndim != 3 or hu.shape != lab.shape:
        raise DatasetError(
            f"case {case}: image {img_path} shape {hu.shape} and label {lab_path} shape {lab.shape} differ"
        )
    # NIfTI (x, y, z) -> (z, y, x): axial slices as rows = y, columns = x, like TransUNet's (D, H, W) volumes
    image = ct_to_unit_range(hu).transpose(2, 1, 0)
    label = map_btcv_labels(lab, str(lab_path)).transpose(2, 1, 0)
    return np.ascontiguousarray(image), np.ascontiguousarray(label), affine


def convert_btcv(
    raw_dir: PathLike,
    out_dir: PathLike,
    train_cases: Sequence[int] = SYNAPSE_TRAIN_CASES,
    test_cases: Sequence[int] = SYNAPSE_TEST_CASES,
    progress: bool = True,
) -> Dict[str, int]:
    """Convert raw BTCV NIfTI scans into TransUNet's Synapse layout.

    Parameters
    ----------
    raw_dir : path
        Folder holding ``RawData/Training/{img,label}`` (or ``{img,label}`` directly) with
        ``imgXXXX.nii.gz`` / ``labelXXXX.nii.gz``.
    out_dir : path
        Output root; ``train_npz/``, ``test_vol_h5/`` and ``lists/lists_Synapse/`` are written.
    train_cases, test_cases : sequence of int
        Case numbers (TransUNet's 18 / 12 by default); they must not overlap.
    progress : bool
        Show a tqdm bar over the cases.

    Returns
    -------
    dict
        ``{"train_slices": n, "test_volumes": m}``.
    """
    h5py = require("h5py")

    raw, out = Path(raw_dir), Path(out_dir)
    if not raw.is_dir():
        raise DatasetError(f"BTCV folder not found: {raw}")
    overlap = sorted(set(map(int, train_cases)) & set(map(int, test_cases)))
    if overlap:
        raise ValueError(f"cases {overlap} are in both the training and the test split")
    if not train_cases and not test_cases:
        raise ValueError("no cases to convert")
    # check every input before writing anything, so a missing case does not leave half a dataset
    for case in list(train_cases) + list(test_cases):
        _btcv_case_files(raw, case)
    (out / "train_npz").mkdir(parents=True, exist_ok=True)
    (out / "test_vol_h5").mkdir(parents=True, exist_ok=True)
    (out / LIST_DIR).mkdir(parents=True, exist_ok=True)
    slice_names: List[str] = []
    bar = tqdm(total=len(train_cases) + len(test_cases), desc="converting BTCV", unit="case", disable=not progress)
    for case in train_cases:
        image, label, _ = _read_btcv_case(raw, case)
        for z in range(image.shape[0]):
            name = f"{case_name(case)}_slice{z:03d}"
            np.savez_compressed(out / "train_npz" / f"{name}.npz", image=image[z], label=label[z].astype(np.float32))
            slice_names.append(name)
        bar.update()
    for case in test_cases:
        image, label, affine = _read_btcv_case(raw, case)
        with h5py.File(out / "test_vol_h5" / f"{case_name(case)}.npy.h5", "w") as f:
            f.create_dataset("image", data=image, compression="gzip")
            f.create_dataset("label", data=label.astype(np.float32), compression="gzip")
            # the scan's (x, y, z) affine: inference writes its predictions back in the scan's space
            f.attrs[H5_AFFINE_ATTR] = affine.astype(np.float64)
        bar.update()
    bar.close()
    (out / LIST_DIR / "train.txt").write_text("".join(f"{n}\n" for n in slice_names))
    (out / LIST_DIR / "test_vol.txt").write_text("".join(f"{case_name(c)}\n" for c in test_cases))
    return {"train_slices": len(slice_names), "test_volumes": len(test_cases)}


def _listed_files(root: Path, list_file: str, folder: str, suffix: str, what: str) -> List[Dict[str, str]]:
    names = read_list_file(root / LIST_DIR / list_file)
    items = [{"path": str(root / folder / f"{n}{suffix}"), "name": n, "case": n.split("_slice")[0]} for n in names]
    for item in items:
        require_file(item["path"], f"{what} {item['case']} listed in {list_file}")
    return items


def synapse_train_datalist(dataset_dir: PathLike, list_file: str = "train.txt") -> List[Dict[str, str]]:
    """``[{"path": .../train_npz/<name>.npz, "name": <name>, "case": "caseXXXX"}]`` for every slice in the list file."""
    return _listed_files(Path(dataset_dir), list_file, "train_npz", ".npz", "training slice")


def synapse_test_datalist(dataset_dir: PathLike, list_file: str = "test_vol.txt") -> List[Dict[str, str]]:
    """``[{"path": .../test_vol_h5/<case>.npy.h5, "name": <case>, "case": <case>}]`` for every case in the list file."""
    return _listed_files(Path(dataset_dir), list_file, "test_vol_h5", ".npy.h5", "test volume")


def _h5_volume(path: str, keys: Sequence[str]) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """``(D, H, W)`` h5 arrays as ``(x, y, z)`` = ``(W, H, D)``, and the stored affine (identity when absent)."""
    h5py = require("h5py")

    arrays = load_h5(path, keys)
    shapes = {k: a.shape for k, a in arrays.items()}
    if len(set(shapes.values())) != 1 or any(len(s) != 3 for s in shapes.values()):
        raise DatasetError(f"h5 volume {path}: expected equal (D, H, W) arrays, got {shapes}")
    with h5py.File(path, "r") as f:  # readable: load_h5 opened it
        affine = np.asarray(f.attrs[H5_AFFINE_ATTR], dtype=np.float64) if H5_AFFINE_ATTR in f.attrs else np.eye(4)
    return {k: a.transpose(2, 1, 0) for k, a in arrays.items()}, affine


# what every abdominal CT in Hounsfield units holds: air (about -1000 HU; outside the body, bowel gas) below
# the low bound at the 1st percentile, and contrast-filled vessels or bone above the high one at the 99th
CT_AIR_BELOW = -500.0
CT_DENSE_ABOVE = 100.0


def ct_intensity_problem(volume: np.ndarray) -> Optional[str]:
    """Why ``volume`` does not look like CT in Hounsfield units, or None when it does.

    The 1st percentile must lie below :data:`CT_AIR_BELOW` (air) and the 99th above
    :data:`CT_DENSE_ABOVE` (contrast, bone); MRI, or CT already scaled to ``[0, 1]``, fails both.
    """
    values = np.asarray(volume, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "it holds no finite value"
    low, high = (float(v) for v in np.percentile(finite, [1, 99]))
    if low < CT_AIR_BELOW and high > CT_DENSE_ABOVE:
        return None
    return (
        f"its 1st-99th percentile intensities are {low:.4g} .. {high:.4g}, while CT in Hounsfield units has air "
        f"below {CT_AIR_BELOW:g} and contrast or bone above {CT_DENSE_ABOVE:g}"
    )


def _nifti_volume(path: str, keys: Sequence[str], hu_window: bool) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    if len(keys) != 1:
        raise DatasetError(f"NIfTI volume {path}: only an image can be read from one file, got keys {list(keys)}")
    arr, affine = load_nifti(path, "NIfTI volume")
    if arr.ndim != 3:
        raise DatasetError(f"NIfTI volume {path}: shape {arr.shape}, expected a 3D (x, y, z) scan")
    problem = ct_intensity_problem(arr) if hu_window else None
    if problem:
        _logger.warning(
            f"{path} does not look like CT in Hounsfield units: {problem}. The network was trained on "
            f"abdominal CT windowed to {list(HU_WINDOW)} HU; on other scans (MRI, normalised "
            "intensities) its organ labels mean nothing"
        )
    return {keys[0]: ct_to_unit_range(arr) if hu_window else arr}, affine


class LoadSynapseVolumed(MapTransform):
    """Load a whole scan as channel-first ``(1, x, y, z)`` MetaTensors with the scan's affine.

    Reads TransUNet's ``test_vol_h5`` volumes (``(D, H, W)`` = ``(z, y, x)``, affine from the ``affine``
    attribute that :func:`convert_btcv` writes, identity otherwise) and NIfTI scans (``.nii``,
    ``.nii.gz``, an image only; CT in Hounsfield units is windowed like the training data). The
    network was trained on slices with rows = y: put ``Rotate90d(k=1, spatial_axes=(0, 1))`` and
    ``Flipd(spatial_axis=0)`` after this loader (together a transposition of x and y that ``Invertd``
    can undo), as the bundle configs do.

    Parameters
    ----------
    keys : str or sequence of str
        Arrays to read (h5 dataset names; one key for a NIfTI file).
    path_key : str
        Key of the file path in the input dictionary.
    hu_window : bool
        Window NIfTI intensities from Hounsfield units to ``[0, 1]`` (:func:`ct_to_unit_range`).
    """

    def __init__(
        self, keys: KeysCollection = ("image", "label"), path_key: str = "path", hu_window: bool = True
    ) -> None:
        super().__init__(keys)
        self.path_key = path_key
        self.hu_window = bool(hu_window)

    def __call__(self, data):
        d = dict(data)
        path = str(d[self.path_key])
        keys = [str(k) for k in self.keys]
        if path.endswith(NIFTI_SUFFIXES):
            arrays, affine = _nifti_volume(path, keys, self.hu_window)
        else:
            arrays, affine = _h5_volume(path, keys)
        for key in self.keys:
            vol = np.ascontiguousarray(arrays[str(key)][None].astype(np.float32))
            d[key] = MetaTensor(
                torch.from_numpy(vol),
                affine=torch.as_tensor(affine),
                meta={"filename_or_obj": path, "original_affine": affine},
            )
        return d

"""BraTS glioma MRI: case discovery for two folder layouts, the paper's 2D slice preparation, and loaders.

Layouts (``layout=``):

``"brats2018"``
    ``HGG|LGG/Brats18_*/Brats18_*_{t1,t1ce,t2,flair,seg}.nii.gz``; labels 1 necrotic / non-enhancing
    core, 2 oedema, 4 enhancing: WT = {1, 2, 4}, TC = {1, 4}, ET = {4}; the brain is every voxel that
    is non-zero in some modality. No official split: a seeded ``val_fraction`` of cases is held out.
``"brats2015_deepmedic"``
    ``train|validation|test/<case>/{Flair,T1c,T1,T2}_subtrMeanDivStd.nii.gz``, ``brainmask.nii.gz``,
    ``OTMultiClass.nii.gz`` (DeepMedic's redistribution); 2015 labels, where 3 (non-enhancing) merges
    into the core: WT = {1, 2, 3, 4}, TC = {1, 3, 4}, ET = {4}. The split is the folder.

Region channels are always ordered WT, TC, ET.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
import torch

from monai.data import MetaTensor
from monai.transforms import ClipIntensityPercentiles, MapTransform, NormalizeIntensity, ResizeWithPadOrCrop
from monai.utils import convert_to_numpy

from monai_hsmix.data.io import DatasetError, PathLike, load_nifti
from monai_hsmix.engines.reporting import is_main_process
from monai_hsmix.optional import require

__all__ = [
    "brats2015_to_2018_labels",
    "BRATS2018_MODALITIES",
    "BRATS_REGIONS",
    "brats_volume_datalist",
    "BratsLayout",
    "crop_in_plane",
    "find_brats_cases",
    "get_layout",
    "labels_to_regions",
    "LAYOUTS",
    "load_brats_case",
    "LoadBratsCased",
    "normalize_modality",
    "prepare_brats_slices",
    "regions_to_labels",
]

tqdm = require("tqdm.auto", "tqdm")

BRATS_REGIONS = ("WT", "TC", "ET")
BRATS2018_MODALITIES = ("t1", "t1ce", "t2", "flair")


@dataclass(frozen=True)
class BratsLayout:
    """File naming and label convention of one BraTS distribution."""

    name: str
    modality_files: Dict[str, str]  # modality -> file name pattern, ``{case}`` is the case folder name
    label_file: str
    brainmask_file: Optional[str]
    region_labels: Tuple[FrozenSet[int], FrozenSet[int], FrozenSet[int]]  # WT, TC, ET
    valid_labels: FrozenSet[int]
    split_folders: Dict[str, Tuple[str, ...]]  # split -> sub-folders holding its cases

    def modality_path(self, case_dir: Path, modality: str) -> Path:
        if modality not in self.modality_files:
            raise ValueError(
                f"modality {modality!r} does not exist in layout {self.name!r}; "
                f"choose from {sorted(self.modality_files)}"
            )
        return case_dir / self.modality_files[modality].format(case=case_dir.name)


LAYOUTS: Dict[str, BratsLayout] = {
    "brats2018": BratsLayout(
        name="brats2018",
        modality_files={m: "{case}_" + m + ".nii.gz" for m in BRATS2018_MODALITIES},
        label_file="{case}_seg.nii.gz",
        brainmask_file=None,
        region_labels=(frozenset({1, 2, 4}), frozenset({1, 4}), frozenset({4})),
        valid_labels=frozenset({0, 1, 2, 4}),
        split_folders={"all": ("HGG", "LGG")},
    ),
    "brats2015_deepmedic": BratsLayout(
        name="brats2015_deepmedic",
        modality_files={
            "flair": "Flair_subtrMeanDivStd.nii.gz",
            "t1ce": "T1c_subtrMeanDivStd.nii.gz",
            "t1": "T1_subtrMeanDivStd.nii.gz",
            "t2": "T2_subtrMeanDivStd.nii.gz",
        },
        label_file="OTMultiClass.nii.gz",
        brainmask_file="brainmask.nii.gz",
        region_labels=(frozenset({1, 2, 3, 4}), frozenset({1, 3, 4}), frozenset({4})),
        valid_labels=frozenset({0, 1, 2, 3, 4}),
        split_folders={"train": ("train",), "val": ("validation",), "test": ("test",)},
    ),
}


def get_layout(layout: str) -> BratsLayout:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown BraTS layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[layout]


def _check_modalities(modalities: Sequence[str], layout: BratsLayout) -> Tuple[str, ...]:
    mods = tuple(modalities) if not isinstance(modalities, str) else (modalities,)
    if not mods:
        raise ValueError("at least one modality is needed")
    if len(set(mods)) != len(mods):
        raise ValueError(f"modalities repeat: {mods}")
    for m in mods:
        if m not in layout.modality_files:
            raise ValueError(
                f"modality {m!r} does not exist in layout {layout.name!r}; choose from {sorted(layout.modality_files)}"
            )
    return mods


def _layout_hint(root: Path, layout: BratsLayout) -> str:
    """A sentence naming the layout whose folders ``root`` does have, when that is another one."""
    for other in LAYOUTS.values():
        if other.name == layout.name:
            continue
        found = sorted({f for fs in other.split_folders.values() for f in fs if (root / f).is_dir()})
        if found:
            extra = " --modalities \"['flair','t1ce']\"" if other.name == "brats2015_deepmedic" else ""
            return (
                f"; it holds {found}, the folders of layout {other.name!r}: pass --layout {other.name}{extra} "
                f"(layout={other.name!r} in Python)"
            )
    return ""


def find_brats_cases(
    dataset_dir: PathLike, layout: str = "brats2018", split: str = "all", val_fraction: float = 0.2, seed: int = 0
) -> List[Path]:
    """Case folders of ``split``, sorted by name.

    Parameters
    ----------
    dataset_dir : path
        Dataset root (the folder holding ``HGG``/``LGG``, or ``train``/``validation``/``test``).
    layout : str
        ``"brats2018"`` or ``"brats2015_deepmedic"``.
    split : str
        ``"all"``, ``"train"``, ``"val"`` (and ``"test"`` for ``brats2015_deepmedic``). For
        ``brats2018`` the validation cases are a seeded random ``val_fraction`` of all cases (at least one
        when there are two or more).
    """
    lay = get_layout(layout)
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"BraTS dataset folder not found: {root}")
    folders = dict(lay.split_folders)
    if "all" not in folders:
        folders["all"] = tuple(f for v in lay.split_folders.values() for f in v)
    if lay.name == "brats2018":
        if split not in ("all", "train", "val"):
            raise ValueError(f"split {split!r} is not one of 'all', 'train', 'val' for layout 'brats2018'")
    elif split not in folders:
        raise ValueError(f"split {split!r} is not one of {sorted(folders)} for layout {layout!r}")
    sub = folders["all"] if lay.name == "brats2018" else folders[split]
    cases = sorted(
        (c for f in sub if (root / f).is_dir() for c in (root / f).iterdir() if c.is_dir()), key=lambda p: p.name
    )
    if not cases:
        raise DatasetError(f"no BraTS cases under {root} in {list(sub)} (layout {layout!r})" + _layout_hint(root, lay))
    if lay.name == "brats2018" and split != "all":
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        order = np.random.default_rng(seed).permutation(len(cases))
        n_val = max(1, int(round(val_fraction * len(cases)))) if len(cases) > 1 else 0
        chosen = set(order[:n_val].tolist()) if split == "val" else set(order[n_val:].tolist())
        cases = [c for i, c in enumerate(cases) if i in chosen]
        if not cases:
            raise DatasetError(f"split {split!r} of {root} is empty ({len(order)} cases, val_fraction {val_fraction})")
    return cases


def labels_to_regions(label: np.ndarray, layout: str = "brats2018", source: str = "label") -> np.ndarray:
    """Label map ``(*spatial)`` -> ``(3, *spatial)`` uint8 WT, TC, ET masks; unknown labels raise."""
    lay = get_layout(layout)
    lab = np.asarray(label)
    if np.issubdtype(lab.dtype, np.floating) and not np.all(lab == np.round(lab)):
        raise DatasetError(f"{source}: labels must be whole numbers")
    lab = lab.astype(np.int64)
    present = set(np.unique(lab).tolist())
    unknown = sorted(present - lay.valid_labels)
    if unknown:
        raise DatasetError(
            f"{source}: label values {unknown} are not in layout {lay.name!r} ({sorted(lay.valid_labels)})"
        )
    return np.stack([np.isin(lab, sorted(r)) for r in lay.region_labels]).astype(np.uint8)


def normalize_modality(volume: np.ndarray, brain: np.ndarray, source: str = "volume") -> np.ndarray:
    """Clip to the brain's 1st-99th percentile, z-score over the brain, zero outside it.

    MONAI's ``ClipIntensityPercentiles`` and ``NormalizeIntensity`` applied to the brain's voxels only.
    Applied to the whole volume (with ``nonzero=True``) they would give other numbers: the percentiles
    would count the background, which is most of a BraTS volume, and a brain voxel whose intensity is
    exactly 0 would be left out of the z-score (tests/data/test_brats.py pins both).
    """
    inside = volume[brain].astype(np.float64)
    if inside.size == 0:
        raise DatasetError(f"{source}: the brain mask is empty")
    if not np.all(np.isfinite(inside)):
        raise DatasetError(f"{source}: contains NaN or infinite values inside the brain")
    clipped = convert_to_numpy(ClipIntensityPercentiles(1.0, 99.0, dtype=np.float64)(inside[None]))
    # MONAI's NormalizeIntensity divides by 1 when the spread is 0; a constant modality is a broken file
    if clipped.std() <= 0:
        raise DatasetError(f"{source}: intensity is constant inside the brain (cannot z-score)")
    out = np.zeros(volume.shape, dtype=np.float32)
    out[brain] = convert_to_numpy(NormalizeIntensity(dtype=np.float32)(clipped))[0]
    return out


def crop_in_plane(array: np.ndarray, size: int) -> np.ndarray:
    """Centre crop (or zero-pad) the two in-plane axes of a ``(C, X, Y, Z)`` array to ``size`` (the paper: 240 -> 224).

    MONAI's ``ResizeWithPadOrCrop``, the crop the bundles' inference applies to whole volumes, so a
    training slice and an inferred volume agree voxel for voxel.
    """
    return convert_to_numpy(ResizeWithPadOrCrop((int(size), int(size), -1))(array))


def _read_modalities(paths: Sequence[Path], mods: Sequence[str], name: str) -> Tuple[List[np.ndarray], np.ndarray]:
    """The 3D volumes of one case's modality files (equal shapes) as float32, and the first one's affine."""
    vols, affine = [], None
    for path, m in zip(paths, mods):
        arr, aff = load_nifti(path, f"case {name} modality {m!r}")
        if arr.ndim != 3:
            raise DatasetError(f"case {name}: {path} has shape {arr.shape}, expected a 3D volume")
        if vols and arr.shape != vols[0].shape:
            raise DatasetError(f"case {name}: {path} shape {arr.shape} differs from {vols[0].shape}")
        vols.append(arr.astype(np.float32))
        affine = aff if affine is None else affine
    return vols, np.asarray(affine)


def files_case_name(files: Sequence[PathLike], modalities: Sequence[str]) -> str:
    """A case name for modality files given one by one: the first file's name without its extension and
    a trailing ``_<modality>`` (``Brats18_X_t1.nii.gz`` -> ``Brats18_X``)."""
    first = Path(str(files[0])).name
    stem = first[: -len(".nii.gz")] if first.endswith(".nii.gz") else Path(first).stem
    suffix = f"_{modalities[0]}"
    return stem[: -len(suffix)] if stem.lower().endswith(suffix.lower()) and len(stem) > len(suffix) else stem


def load_brats_files(
    files: Sequence[PathLike], modalities: Sequence[str] = BRATS2018_MODALITIES, name: Optional[str] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Read and normalise one case given as one NIfTI file per modality, in the order of ``modalities``.

    The normalisation is that of :func:`load_brats_case`, with the brain taken as every voxel that is
    non-zero in some modality (give skull-stripped scans, as BraTS distributes them).

    Returns
    -------
    image : ndarray
        ``(C, X, Y, Z)`` float32.
    affine : ndarray
        The first file's affine.
    """
    if isinstance(files, (str, Path)) or not files:
        raise DatasetError(f"expected a list of {len(modalities)} NIfTI files ({', '.join(modalities)}), got {files!r}")
    if len(files) != len(modalities):
        raise DatasetError(
            f"{len(files)} files given for {len(modalities)} modalities {list(modalities)} "
            f"(one file per modality, in that order): {[str(f) for f in files]}"
        )
    case = name or files_case_name(files, modalities)
    paths = []
    for f, m in zip(files, modalities):
        path = Path(str(f))
        if not path.is_file():
            raise DatasetError(f"case {case}: modality {m!r} file not found: {path}")
        paths.append(path)
    vols, affine = _read_modalities(paths, modalities, case)
    brain = np.any(np.stack(vols) != 0, axis=0)
    image = np.stack([normalize_modality(v, brain, f"case {case} modality {m!r}") for v, m in zip(vols, modalities)])
    return image, affine


def load_brats_case(
    case_dir: PathLike,
    layout: str = "brats2018",
    modalities: Sequence[str] = BRATS2018_MODALITIES,
    with_label: bool = True,
) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """Read and normalise one case.

    Returns
    -------
    image : ndarray
        ``(C, X, Y, Z)`` float32, each modality normalised by :func:`normalize_modality`.
    regions : ndarray or None
        ``(3, X, Y, Z)`` uint8 WT, TC, ET masks (None when ``with_label`` is False).
    affine : ndarray
        The first modality's affine.
    """
    lay = get_layout(layout)
    mods = _check_modalities(modalities, lay)
    case = Path(case_dir)
    paths = []
    for m in mods:
        path = lay.modality_path(case, m)
        if not path.is_file():
            raise DatasetError(f"case {case.name}: modality {m!r} missing, expected file {path}")
        paths.append(path)
    vols, affine = _read_modalities(paths, mods, case.name)
    if lay.brainmask_file:
        mask_path = case / lay.brainmask_file
        if not mask_path.is_file():
            raise DatasetError(f"case {case.name}: brain mask missing, expected file {mask_path}")
        brain = load_nifti(mask_path, f"case {case.name} brain mask")[0] > 0
        if brain.shape != vols[0].shape:
            raise DatasetError(f"case {case.name}: brain mask shape {brain.shape} differs from {vols[0].shape}")
    else:
        brain = np.any(np.stack(vols) != 0, axis=0)
    image = np.stack([normalize_modality(v, brain, f"case {case.name} modality {m!r}") for v, m in zip(vols, mods)])
    regions = None
    if with_label:
        lab_path = case / lay.label_file.format(case=case.name)
        if not lab_path.is_file():
            raise DatasetError(f"case {case.name}: segmentation missing, expected file {lab_path}")
        lab = load_nifti(lab_path, f"case {case.name} segmentation")[0]
        if lab.shape != vols[0].shape:
            raise DatasetError(
                f"case {case.name}: segmentation {lab_path} shape {lab.shape} differs from {vols[0].shape}"
            )
        regions = labels_to_regions(lab, layout, str(lab_path))
    return image, regions, affine


def _cache_key(
    dataset_dir: Path,
    layout: str,
    modalities: Sequence[str],
    crop_size: int,
    split: str,
    val_fraction: float,
    seed: int,
) -> str:
    spec = json.dumps(
        [str(dataset_dir.resolve()), layout, list(modalities), int(crop_size), split, float(val_fraction), int(seed), 2]
    )  # 2: MONAI's crop (odd sizes moved)
    return hashlib.sha1(spec.encode()).hexdigest()[:12]


def prepare_brats_slices(
    dataset_dir: PathLike,
    cache_dir: PathLike,
    split: str = "train",
    layout: str = "brats2018",
    modalities: Sequence[str] = BRATS2018_MODALITIES,
    crop_size: int = 224,
    val_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = True,
) -> List[Dict[str, object]]:
    """Prepare the paper's 2D training slices once and return their datalist.

    Every case of ``split`` is normalised (:func:`load_brats_case`), centre-cropped to ``crop_size``
    in-plane, and its axial slices that contain tumour are saved as ``.npz`` (``image`` (C, S, S)
    float16, ``label`` (3, S, S) uint8 WT/TC/ET). The folder is keyed by every setting and written
    atomically, so concurrent processes (``torchrun``) and changed settings never see partial data.
    ``progress`` shows a tqdm bar over the cases while they are prepared (rank 0 only).

    Returns
    -------
    list of dict
        ``{"path": npz file, "name": "<case>_sliceZZZ", "case": case name, "slice": z}`` per kept slice.
    """
    root = Path(dataset_dir)
    mods = _check_modalities(modalities, get_layout(layout))
    if int(crop_size) < 1:
        raise ValueError(f"crop_size must be positive, got {crop_size}")
    target = Path(cache_dir) / f"{split}_{_cache_key(root, layout, mods, crop_size, split, val_fraction, seed)}"
    manifest = target / "manifest.json"
    if not manifest.is_file():
        cases = find_brats_cases(root, layout, split, val_fraction, seed)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        entries = []
        try:
            bar = tqdm(
                cases, desc=f"preparing {split} slices", unit="case", disable=not (progress and is_main_process())
            )
            for case in bar:
                image, regions, _ = load_brats_case(case, layout, mods)
                image = crop_in_plane(image, crop_size)
                regions = crop_in_plane(regions, crop_size)
                for z in np.flatnonzero(regions.reshape(-1, regions.shape[-1]).any(axis=0)):
                    name = f"{case.name}_slice{int(z):03d}.npz"
                    np.savez_compressed(tmp / name, image=image[..., z].astype(np.float16), label=regions[..., z])
                    entries.append({"file": name, "case": case.name, "slice": int(z)})
            if not entries:
                raise DatasetError(f"no slice with tumour in split {split!r} of {root}")
            (tmp / "manifest.json").write_text(
                json.dumps({"layout": layout, "modalities": list(mods), "crop_size": int(crop_size), "slices": entries})
            )
            try:
                os.rename(tmp, target)
            except OSError:
                if not manifest.is_file():  # lost the race to a process whose result is not there: ours is
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    slices = json.loads(manifest.read_text())["slices"]
    return [
        {"path": str(target / s["file"]), "name": s["file"][: -len(".npz")], "case": s["case"], "slice": s["slice"]}
        for s in slices
    ]


def brats_volume_datalist(
    dataset_dir: PathLike, split: str = "val", layout: str = "brats2018", val_fraction: float = 0.2, seed: int = 0
) -> List[Dict[str, str]]:
    """``[{"case_dir": folder, "name": case, "case": case}]`` of whole volumes, for volume inference."""
    return [
        {"case_dir": str(c), "name": c.name, "case": c.name}
        for c in find_brats_cases(dataset_dir, layout, split, val_fraction, seed)
    ]


class LoadBratsCased(MapTransform):
    """Load a whole case as ``image`` ``(C, X, Y, Z)`` (and ``label`` ``(3, X, Y, Z)``) MetaTensors with its affine.

    Normalisation is that of :func:`prepare_brats_slices`. With ``crop_size=None`` (the default) the
    volume keeps the source's grid: put MONAI's ``ResizeWithPadOrCropd(spatial_size=(S, S, -1))``
    after it for the network and ``Invertd`` on the prediction to write it over the source (the
    bundle's ``inference.yaml`` does). An integer ``crop_size`` centre-crops here instead, as the
    prepared slices are, and the result is no longer in the source's space.

    A case is either a folder of the layout (``data[case_key]``) or, for inference, a list of NIfTI files,
    one per modality in the order of ``modalities``, in ``data[keys[0]]`` (e.g. ``{"image": [t1, t1ce,
    t2, flair]}``, optionally with a ``"name"``); such a case has no label.
    """

    def __init__(
        self,
        keys=("image", "label"),
        case_key: str = "case_dir",
        layout: str = "brats2018",
        modalities: Sequence[str] = BRATS2018_MODALITIES,
        crop_size: Optional[int] = None,
    ) -> None:
        super().__init__(keys)
        self.case_key, self.layout = case_key, layout
        self.crop_size = None if crop_size is None else int(crop_size)
        self.modalities = _check_modalities(modalities, get_layout(layout))
        if len(self.keys) not in (1, 2):
            raise ValueError(f"LoadBratsCased takes an image key and an optional label key, got {self.keys}")

    def __call__(self, data):
        d = dict(data)
        with_label = len(self.keys) == 2
        files = d.get(self.keys[0])
        if self.case_key not in d and isinstance(files, (list, tuple)):
            if with_label:
                raise DatasetError(
                    f"case given as files {[str(f) for f in files]} has no label: load it with "
                    "keys=['image'] (inference), or give its case folder"
                )
            name = str(d.get("name") or files_case_name(files, self.modalities))
            image, affine = load_brats_files(files, self.modalities, name)
            regions, source = None, Path(str(files[0])).parent / name
        else:
            if self.case_key not in d:
                raise DatasetError(
                    f"a BraTS case needs its folder ({self.case_key!r}) or a list of modality files "
                    f"({self.keys[0]!r}: {list(self.modalities)}), got keys {sorted(map(str, d))}"
                )
            case_dir = d[self.case_key]
            image, regions, affine = load_brats_case(case_dir, self.layout, self.modalities, with_label)
            source = Path(case_dir) / Path(case_dir).name
        # the case's name names the output (<case>_seg.nii.gz); the affine is the first modality's
        meta = {"filename_or_obj": str(source), "original_affine": affine}
        arrays = [image] + ([regions.astype(np.float32)] if with_label else [])
        if self.crop_size is not None:
            arrays = [crop_in_plane(a, self.crop_size) for a in arrays]
        for key, arr in zip(self.keys, arrays):
            d[key] = MetaTensor(
                torch.from_numpy(np.ascontiguousarray(arr)), affine=torch.as_tensor(affine), meta=dict(meta)
            )
        return d


def brats2015_to_2018_labels(label):
    """BraTS 2015 labels -> BraTS 2018 labels: 3 (non-enhancing tumour) merges into 1 (core), others stay.

    A network trained on WT/TC/ET regions cannot tell 2015's 1 and 3 apart (both are TC but not ET),
    so its written label maps use the 2018 convention; compare them with this mapping of a 2015 truth.
    """
    lab = np.asarray(label)
    return np.where(lab == 3, 1, lab).astype(lab.dtype)


def regions_to_labels(regions):
    """``(3, *spatial)`` WT, TC, ET masks -> ``(1, *spatial)`` BraTS2018 labels (2 oedema, 1 core, 4 enhancing).

    For either layout the written convention is 2018's: 2015's labels 1 and 3 both come out as 1
    (:func:`brats2015_to_2018_labels`).

    Nested by construction: ET inside TC inside WT wins in that order, so a voxel predicted ET but
    not WT still becomes 4. Works on numpy arrays and (Meta)Tensors.
    """
    if regions.shape[0] != 3:
        raise ValueError(f"expected 3 region channels (WT, TC, ET), got shape {tuple(regions.shape)}")
    wt, tc, et = ((regions[i : i + 1] > 0.5) * 1 for i in range(3))
    out = wt * 2
    out = out + tc * (1 - out)  # TC -> 1 (overrides 2)
    out = out * (1 - et) + et * 4  # ET -> 4
    return out

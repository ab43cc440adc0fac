"""File readers shared by the dataset modules, each failing with the offending path in its message."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Hashable, Mapping, Sequence, Tuple, Union

import numpy as np

from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_hsmix.optional import require

PathLike = Union[str, "os.PathLike[str]"]


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable or inconsistent; the message names it."""


def require_file(path: PathLike, what: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` or raise :class:`DatasetError` naming ``what``."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{what}: file not found: {p}")
    return p


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsynced and renamed.

    Readers see the old file or the new one, never a partial write.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_list_file(path: PathLike) -> list:
    """Non-empty, stripped lines of a list file (TransUNet's ``lists/*.txt``); empty lists raise."""
    p = require_file(path, "list file")
    names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"list file is empty: {p}")
    return names


def read_nifti(path: PathLike, what: str = "NIfTI volume"):
    """Read a NIfTI file fully into memory as ``(array, image)``; ``image`` keeps header and affine.

    nibabel reads lazily, so a truncated ``.nii.gz`` only fails when its data is touched: the data are
    read here, and any failure is reported with the path.
    """
    nib = require("nibabel")

    p = require_file(path, what)
    try:
        img = nib.load(str(p))
        arr = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises several types (ImageFileError, EOFError, zlib.error, OSError)
        raise DatasetError(f"{what}: cannot read {p}: {type(exc).__name__}: {exc}") from exc
    if not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(f"{what}: non-numeric data in {p}")
    return arr, img


def load_nifti(path: PathLike, what: str = "NIfTI volume") -> Tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file fully into memory as ``(array, affine)`` (see :func:`read_nifti`)."""
    arr, img = read_nifti(path, what)
    return arr, np.asarray(img.affine)


def load_npz(path: PathLike, keys: Sequence[str]) -> Dict[str, np.ndarray]:
    """Arrays ``keys`` from an ``.npz`` file; a missing file, a corrupt archive or a missing key raises."""
    p = require_file(path, "npz slice")
    try:
        with np.load(str(p)) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DatasetError(f"npz slice {p} lacks keys {missing} (has {archive.files})")
            return {k: np.asarray(archive[k]) for k in keys}
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"npz slice: cannot read {p}: {exc}") from exc


def load_h5(path: PathLike, keys: Sequence[str]) -> Dict[str, np.ndarray]:
    """Datasets ``keys`` from an HDF5 file (TransUNet's ``test_vol_h5``), with the path in every error."""
    h5py = require("h5py")

    p = require_file(path, "h5 volume")
    try:
        with h5py.File(str(p), "r") as f:
            missing = [k for k in keys if k not in f]
            if missing:
                raise DatasetError(f"h5 volume {p} lacks datasets {missing} (has {list(f.keys())})")
            return {k: np.asarray(f[k][()]) for k in keys}
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"h5 volume: cannot read {p}: {exc}") from exc


class LoadNpzd(MapTransform):
    """Load arrays from the ``.npz`` file named by ``data[path_key]`` into ``data[key]`` (channel first).

    Arrays without a channel axis (``ndim == spatial_ndim``) get one, so a TransUNet slice ``(H, W)``
    becomes ``(1, H, W)`` while a prepared BraTS slice ``(C, H, W)`` is kept.

    Parameters
    ----------
    keys : str or sequence of str
        Keys to fill; each is also the array's name inside the archive.
    path_key : str
        Key of the file path in the input dictionary.
    spatial_ndim : int
        Number of spatial dimensions of the stored arrays.
    dtypes : mapping, optional
        numpy dtype per key (default float32 for every key).
    """

    def __init__(
        self,
        keys: KeysCollection,
        path_key: str = "path",
        spatial_ndim: int = 2,
        dtypes: Mapping[Hashable, object] | None = None,
    ) -> None:
        super().__init__(keys)
        self.path_key = path_key
        self.spatial_ndim = spatial_ndim
        self.dtypes = dict(dtypes or {})

    def __call__(self, data):
        d = dict(data)
        if self.path_key not in d:
            raise KeyError(f"LoadNpzd: input has no {self.path_key!r} entry (keys: {list(d)})")
        arrays = load_npz(d[self.path_key], [str(k) for k in self.keys])
        for key in self.keys:
            arr = arrays[str(key)]
            if arr.ndim == self.spatial_ndim:
                arr = arr[None]
            if arr.ndim != self.spatial_ndim + 1:
                raise DatasetError(
                    f"{d[self.path_key]}: {key!r} has shape {arr.shape}, expected {self.spatial_ndim} spatial dims"
                    " with an optional channel axis"
                )
            d[key] = arr.astype(self.dtypes.get(key, np.float32), copy=False)
        return d

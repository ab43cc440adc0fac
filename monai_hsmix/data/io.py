"""File readers shared by the dataset modules, each failing with the offending path in its message."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Hashable, Iterator, List, Mapping, Sequence, Tuple, Union

import numpy as np

from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_hsmix.optional import require

__all__ = [
    "atomic_path",
    "DatasetError",
    "load_h5",
    "load_image_channels",
    "load_label_map",
    "load_nifti",
    "load_npz",
    "LoadNpzd",
    "PARTIAL_PREFIX",
    "PathLike",
    "read_list_file",
    "read_nifti",
    "remove_stale_partials",
    "require_file",
    "save_nifti_like",
    "write_bytes_atomic",
    "write_json_atomic",
]

PathLike = Union[str, "os.PathLike[str]"]


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable or inconsistent; the message names it."""


def require_file(path: PathLike, what: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` or raise :class:`DatasetError` naming ``what``."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{what}: file not found: {p}")
    return p


PARTIAL_PREFIX = ".partial-"


def _fsync_dir(folder: Path) -> None:
    # makes the rename itself durable; not every platform can open a folder for this
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; afterwards it is fsynced and renamed onto ``path``.

    Readers see the old file or the complete new one, never a partial write; an error while writing
    removes the temporary file and leaves ``path`` as it was. The temporary name starts with
    ``.partial-`` and ends with ``path``'s own name, so writers that choose the format from the suffix
    (``.nii.gz``) still see it, and a cleanup can find what an interrupted process left.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{PARTIAL_PREFIX}{os.getpid()}.{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's process, or not a process id
    return True


def remove_stale_partials(folder: PathLike) -> List[Path]:
    """Delete the temporary files of :func:`atomic_path` that interrupted processes left in ``folder``.

    A kill while writing leaves ``.partial-<pid>.<id>-<name>``; the ones whose process no longer runs
    are removed (those of running processes, this one included, may still be renamed into place).

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    directory = Path(folder)
    if not directory.is_dir():
        return removed
    for path in directory.glob(f"{PARTIAL_PREFIX}*"):
        pid = path.name[len(PARTIAL_PREFIX) :].split(".", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    # a plain exclusive open, not mkstemp: mkstemp makes the file private to its owner, a plain write does not
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(data)


def write_json_atomic(path: PathLike, obj: Any, indent: int = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`atomic_path`)."""
    write_bytes_atomic(path, json.dumps(obj, indent=indent).encode())


def read_list_file(path: PathLike) -> list:
    """Non-empty, stripped lines of a list file (TransUNet's ``lists/*.txt``); empty lists raise."""
    p = require_file(path, "list file")
    names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"list file is empty: {p}")
    return names


def read_nifti(path: PathLike, what: str = "NIfTI volume"):
    """Read a NIfTI file fully into memory as ``(array, image)``; ``image`` keeps header and affine.

    MONAI's ``NibabelReader`` opens the file; it reads lazily, so a truncated ``.nii.gz`` only fails
    when its data is touched: the data are read here (in their stored type, which ``LoadImage`` would
    turn into float32), and any failure is reported with the path.
    """
    require("nibabel")  # MONAI's reader needs it; this names the extra to install
    from monai.data import NibabelReader

    p = require_file(path, what)
    try:
        img = NibabelReader().read(str(p))
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


def load_image_channels(paths: Union[str, List[str]], root: Path = Path(".")) -> Tuple[np.ndarray, List[Any]]:
    """``(C, X, Y, Z)`` float32 and the NIfTI objects it came from."""
    files = paths if isinstance(paths, list) else [paths]
    arrays, nifti = [], []
    for p in files:
        data, img = read_nifti(root / p, "image")  # a truncated file fails here, naming itself
        data = data.astype(np.float32, copy=False)
        nifti.append(img)
        # a single 4D file keeps channels last, as the Decathlon does
        arrays.extend([data[..., c] for c in range(data.shape[-1])] if data.ndim == 4 else [data])
    return np.ascontiguousarray(np.stack(arrays)), nifti


def load_label_map(path: str, root: Path = Path(".")) -> Tuple[np.ndarray, Any]:
    """Whole-number label map as int64 and the NIfTI image it came from."""
    data, img = read_nifti(root / path, "label map")
    # NIfTI data come Fortran-ordered; C order avoids a copy at every later tensor conversion
    return np.ascontiguousarray(data.round().astype(np.int64)), img


def save_nifti_like(array: np.ndarray, like, path: PathLike, dtype) -> None:
    """Write ``array`` as NIfTI with the header and affine of ``like`` (a nibabel image), atomically.

    nibabel rather than MONAI's ``NibabelWriter``: that writer builds a new header from the affine
    and drops the source's other header fields, and a synthesized case should carry its source's.
    """
    nib = require("nibabel")

    header = like.header.copy()
    header.set_data_dtype(dtype)
    out = nib.Nifti1Image(np.asarray(array).astype(dtype), like.affine, header)
    out.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path) as partial:  # a file either is complete or is not there
        nib.save(out, str(partial))


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

"""A fingerprint of the files an ablation run trained and tested on.

A run's settings record file names; the fingerprint records their contents, so that editing a mask
and rerunning the sweep retrains the runs that used it instead of reporting the old numbers.
Contents, not sizes and modification times, so that a copied or re-downloaded dataset keeps its
fingerprint (hashing the 81 MB of ACDC takes well under a second).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["data_fingerprint"]

_CHUNK = 1 << 20


def data_fingerprint(files: Iterable[Path], root: Optional[Path] = None) -> str:
    """BLAKE2b hex digest of every file's name (relative to ``root`` when given) and bytes, in name order.

    Raises
    ------
    FileNotFoundError
        When a file is missing (named in the message).
    """
    digest = hashlib.blake2b(digest_size=16)
    root = None if root is None else Path(root).resolve()
    paths = sorted({Path(f).resolve() for f in files}, key=str)
    for path in paths:
        name = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name
        digest.update(name.encode() + b"\0")
        try:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(chunk)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{path}: data file not found") from err
        digest.update(b"\0")
    return digest.hexdigest()

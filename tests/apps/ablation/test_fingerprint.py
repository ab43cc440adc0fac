"""The data fingerprint of an ablation run: contents and relative names, not locations or times."""

from __future__ import annotations

import os
import shutil

import pytest

from monai_hsmix.apps.ablation.fingerprint import data_fingerprint


def _folder(root):
    (root / "images").mkdir(parents=True)
    for name, data in (("a.png", b"\x89PNG a"), ("b.png", b"\x89PNG b")):
        (root / "images" / name).write_bytes(data)
    return sorted((root / "images").iterdir())


def test_a_copy_elsewhere_keeps_it_and_any_edit_or_rename_changes_it(tmp_path):
    files = _folder(tmp_path / "one")
    first = data_fingerprint(files, tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    copy = sorted((tmp_path / "two" / "images").iterdir())
    os.utime(copy[0], (1, 1))
    assert data_fingerprint(copy, tmp_path / "two") == first
    assert data_fingerprint(reversed(copy), tmp_path / "two") == first  # order of the list does not matter
    copy[1].write_bytes(b"\x89PNG c")
    assert data_fingerprint(copy, tmp_path / "two") != first
    copy[1].write_bytes(b"\x89PNG b")
    copy[1].rename(tmp_path / "two" / "images" / "c.png")
    assert data_fingerprint([copy[0], tmp_path / "two" / "images" / "c.png"], tmp_path / "two") != first


def test_a_missing_file_is_named(tmp_path):
    files = _folder(tmp_path)
    files[0].unlink()
    with pytest.raises(FileNotFoundError, match="a.png: data file not found"):
        data_fingerprint(files, tmp_path)

"""npz loading for the slice datasets: channel handling and errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from monai_hsmix.data.io import DatasetError, LoadNpzd, read_list_file


def test_load_npzd_adds_a_channel_only_when_missing(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, image=np.ones((2, 5, 6), np.float16), label=np.arange(30).reshape(5, 6))
    out = LoadNpzd(["image", "label"], dtypes={"label": np.int64})({"path": str(path), "case": "x"})
    assert out["image"].shape == (2, 5, 6) and out["image"].dtype == np.float32
    assert out["label"].shape == (1, 5, 6) and out["label"].dtype == np.int64
    assert out["case"] == "x"


def test_load_npzd_errors_name_the_file(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, image=np.ones((5, 6)))
    with pytest.raises(DatasetError, match=r"s\.npz lacks keys \['label'\]"):
        LoadNpzd(["image", "label"])({"path": str(path)})
    np.savez(path, image=np.ones((1, 1, 5, 6)))
    with pytest.raises(DatasetError, match=r"s\.npz.*shape"):
        LoadNpzd("image")({"path": str(path)})
    path.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"cannot read .*s\.npz"):
        LoadNpzd("image")({"path": str(path)})
    with pytest.raises(DatasetError, match=r"missing\.npz"):
        LoadNpzd("image")({"path": str(tmp_path / "missing.npz")})
    with pytest.raises(KeyError, match="path"):
        LoadNpzd("image")({"image": 1})


def test_read_list_file_strips_blank_lines(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("a\n\n b \n")
    assert read_list_file(path) == ["a", "b"]


def test_atomic_writes_leave_the_old_file_on_error_and_no_partial_file(tmp_path):
    import json

    from monai_hsmix.data.io import atomic_path, write_json_atomic

    target = tmp_path / "sub" / "x.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp.name.endswith("-x.json")  # keeps the suffix for writers
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_load_npzd_stays_because_monai_load_imaged_silently_loads_the_wrong_arrays(tmp_path):
    """Why the slice datasets keep LoadNpzd rather than MONAI's LoadImaged(reader=NumpyReader(npz_keys=...)).

    When the named array is missing, LoadImage falls back to its default readers, and the default
    NumpyReader loads every array of the archive, stacked: the sample silently gets other data (here
    the label stacked with the image). LoadNpzd raises, naming the file and the key, which is right:
    a slice file without its image is a broken cache, not something to train on.
    """
    from monai.data import NumpyReader
    from monai.transforms import LoadImaged

    path = tmp_path / "s.npz"
    np.savez(path, image=np.zeros((3, 4), np.float32), label=np.ones((3, 4), np.uint8))
    monai_out = LoadImaged("img", reader=NumpyReader(npz_keys=["img"]), image_only=True)({"img": str(path)})["img"]
    assert tuple(monai_out.shape) == (2, 3, 4)  # both arrays, no error
    with pytest.raises(DatasetError, match=r"s\.npz.*img"):
        LoadNpzd("img")({"path": str(path)})

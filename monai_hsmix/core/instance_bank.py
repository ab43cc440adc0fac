"""Nucleus instances (pixels + mask) collected from labelled images, the template pool of InsMix.

Labels may be instance maps (0 background, one positive id per nucleus) or binary masks, which are
split into instances by 8-connected components (MoNuSeg ships binary masks: touching nuclei merge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch
from scipy import ndimage

__all__ = [
    "NucleusTemplate",
    "InstanceBank",
    "to_instance_labels",
    "to_channel_first_image",
    "check_image_and_label",
    "check_intensity_scale",
    "intensity_range",
]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _as_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


def to_instance_labels(label, name: str = "label") -> np.ndarray:
    """Return an ``int32`` (H, W) instance map from an instance map or a binary mask.

    Parameters
    ----------
    label
        (H, W) or (1, H, W) array/tensor: bool, integer, or float holding whole numbers >= 0. A label
        with a single positive value ({0, 1}, or {0, 255} as masks are often saved) is treated as binary
        and split into 8-connected components; otherwise each positive value is one instance.
    name
        Name used in error messages.
    """
    arr = _as_numpy(label, name)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W) or (1, H, W), got {tuple(arr.shape)}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise TypeError(
                f"{name} has dtype {arr.dtype} with non-integer or non-finite values; "
                "instance labels must be whole numbers"
            )
    elif not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be bool, integer or whole-number float, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(
            f"{name} has negative values (min {arr.min()}); use 0 for background and positive instance ids"
        )
    if arr.size and arr.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{name} has ids above int32 range (max {arr.max()})")
    arr = arr.astype(np.int32)
    top = arr.max() if arr.size else 0
    if top <= 1 or np.all((arr == 0) | (arr == top)):
        arr, _ = ndimage.label(arr, structure=_EIGHT_CONNECTED)
        arr = arr.astype(np.int32)
    return arr


def to_channel_first_image(image, name: str = "image") -> np.ndarray:
    """Return a (C, H, W) real-valued numpy view of ``image``; raise a clear error otherwise."""
    arr = _as_numpy(image, name)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be channel-first (C, H, W), got shape {tuple(arr.shape)}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must have an integer or floating dtype, got {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and arr.size and not np.isfinite([arr.min(), arr.max()]).all():
        # NaN propagates through min/max, so two reductions see every non-finite value
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# intensity magnitudes further apart than this are different scales: [0, 1] against [0, 255] is 255x,
# while images of one scale differ by a few times at most (a dim tile against a bright one)
_MAX_SCALE_RATIO = 10.0


def intensity_range(image: np.ndarray) -> Tuple[float, float]:
    """``(min, max)`` of an image as floats (``(0, 0)`` for an empty one)."""
    return (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)


def check_intensity_scale(have: Tuple[float, float], new: Tuple[float, float], have_name: str, new_name: str) -> None:
    """Raise ``ValueError`` when two intensity ranges are on different scales (e.g. 0-255 against 0-1).

    The scale of a range is its largest magnitude; a constant zero image has none and is accepted.
    """
    a, b = max(abs(have[0]), abs(have[1])), max(abs(new[0]), abs(new[1]))
    if a > 0 and b > 0 and max(a, b) / min(a, b) > _MAX_SCALE_RATIO:
        raise ValueError(
            f"intensities of {have_name} lie in [{have[0]:.4g}, {have[1]:.4g}] but those of {new_name} in "
            f"[{new[0]:.4g}, {new[1]:.4g}]: different scales (e.g. uint8 0-255 against [0, 1]); pasted nuclei "
            "would keep the wrong intensities. Scale both the same way."
        )


def check_image_and_label(image, label) -> Tuple[np.ndarray, np.ndarray]:
    """Validate a pair and return ``(image (C, H, W), instance labels (H, W) int32)``."""
    img = to_channel_first_image(image)
    lab = to_instance_labels(label)
    if img.shape[1:] != lab.shape:
        raise ValueError(f"image spatial shape {tuple(img.shape[1:])} does not match label shape {tuple(lab.shape)}")
    return img, lab


@dataclass(frozen=True)
class NucleusTemplate:
    """One nucleus cut from its bounding box.

    Attributes
    ----------
    image
        (C, h, w) float32 pixels of the bounding box (background pixels included, use ``mask``).
    mask
        (h, w) bool nucleus mask.
    """

    image: np.ndarray
    mask: np.ndarray
    area: int = field(init=False)
    centroid: Tuple[float, float] = field(init=False)

    def __post_init__(self):
        if self.image.shape[1:] != self.mask.shape:
            raise ValueError(f"template image {self.image.shape} and mask {self.mask.shape} disagree")
        rows, cols = np.nonzero(self.mask)
        if rows.size == 0:
            raise ValueError("template mask is empty")
        object.__setattr__(self, "area", int(rows.size))
        object.__setattr__(self, "centroid", (float(rows.mean()), float(cols.mean())))


def extract_instances(
    image, label, min_area: int = 10, max_area: Optional[int] = None, exclude_border: bool = True
) -> List[NucleusTemplate]:
    """Cut every instance of ``label`` out of ``image``.

    Parameters
    ----------
    min_area, max_area
        Instances outside this pixel-area range are skipped (tiny fragments and merged clumps).
    exclude_border
        Skip instances touching the image border: they are truncated, so their shape is not a nucleus's.
    """
    img, lab = check_image_and_label(image, label)
    img = img.astype(np.float32, copy=False)
    height, width = lab.shape
    out = []
    for idx, box in enumerate(ndimage.find_objects(lab), start=1):
        if box is None:
            continue
        rs, cs = box
        if exclude_border and (rs.start == 0 or cs.start == 0 or rs.stop == height or cs.stop == width):
            continue
        mask = lab[box] == idx
        area = int(mask.sum())
        if area < min_area or (max_area is not None and area > max_area):
            continue
        out.append(NucleusTemplate(image=img[:, rs, cs].copy(), mask=mask))
    return out


class InstanceBank:
    """A pool of nucleus templates gathered from one or more labelled images.

    Parameters
    ----------
    min_area, max_area, exclude_border
        Passed to :func:`extract_instances` for every :meth:`add`.
    """

    def __init__(self, min_area: int = 10, max_area: Optional[int] = None, exclude_border: bool = True):
        if min_area < 1:
            raise ValueError(f"min_area must be >= 1, got {min_area}")
        if max_area is not None and max_area < min_area:
            raise ValueError(f"max_area ({max_area}) must be >= min_area ({min_area})")
        self.min_area = int(min_area)
        self.max_area = max_area
        self.exclude_border = exclude_border
        self._templates: List[NucleusTemplate] = []
        self._channels: Optional[int] = None
        self._value_range: Optional[Tuple[float, float]] = None

    def add(self, image, label) -> int:
        """Add the instances of one labelled image; return how many were added."""
        found = extract_instances(image, label, self.min_area, self.max_area, self.exclude_border)
        arr = to_channel_first_image(image)
        channels, value_range = arr.shape[0], intensity_range(arr)
        if self._channels is not None and channels != self._channels:
            raise ValueError(f"bank holds {self._channels}-channel templates, image has {channels} channels")
        if self._value_range is not None:
            check_intensity_scale(self._value_range, value_range, "the bank's images", "the added image")
        if found:
            self._channels = channels
            lo, hi = value_range if self._value_range is None else self._value_range
            self._value_range = (min(lo, value_range[0]), max(hi, value_range[1]))
        self._templates.extend(found)
        return len(found)

    @classmethod
    def from_pairs(cls, pairs, **kwargs) -> "InstanceBank":
        """Build a bank from an iterable of ``(image, label)`` pairs."""
        bank = cls(**kwargs)
        for image, label in pairs:
            bank.add(image, label)
        return bank

    @property
    def channels(self) -> Optional[int]:
        return self._channels

    @property
    def value_range(self) -> Optional[Tuple[float, float]]:
        """``(min, max)`` intensity of the images the templates came from (None while empty)."""
        return self._value_range

    @property
    def areas(self) -> np.ndarray:
        return np.fromiter((t.area for t in self._templates), dtype=np.int64, count=len(self._templates))

    def __len__(self) -> int:
        return len(self._templates)

    def __getitem__(self, index: int) -> NucleusTemplate:
        return self._templates[index]

    def __iter__(self) -> Iterator[NucleusTemplate]:
        return iter(self._templates)

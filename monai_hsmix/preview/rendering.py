"""Small matplotlib helpers shared by the preview figures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from monai_hsmix.optional import require

__all__ = ["grey", "outline", "save_grid", "soft_label_rgb"]

# background black, then distinct colours; soft labels are rendered as probability-weighted colours
_CLASS_COLOURS = (
    np.array(
        [
            [0, 0, 0],
            [230, 25, 75],
            [60, 180, 75],
            [255, 225, 25],
            [0, 130, 200],
            [245, 130, 48],
            [145, 30, 180],
            [70, 240, 240],
            [240, 50, 230],
            [210, 245, 60],
            [250, 190, 212],
        ],
        dtype=np.float32,
    )
    / 255.0
)


def soft_label_rgb(channels: np.ndarray, multilabel: bool = False) -> np.ndarray:
    """``(K, H, W)`` label channels -> ``(H, W, 3)`` colours (one-hot: channel 0 is background)."""
    k = channels.shape[0]
    colours = np.resize(_CLASS_COLOURS[1:], (k, 3)) if multilabel else np.resize(_CLASS_COLOURS, (k, 3))
    rgb = np.tensordot(np.moveaxis(channels, 0, -1), colours, axes=1)
    return np.clip(rgb, 0.0, 1.0)


def grey(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W)`` or ``(H, W, 3)`` display image scaled to ``[0, 1]``."""
    img = image[:3] if image.shape[0] == 3 else image[:1]
    lo, hi = np.percentile(img, [0.5, 99.5])
    img = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return np.moveaxis(img, 0, -1) if img.shape[0] == 3 else img[0]


def outline(display: np.ndarray, segments: Optional[np.ndarray], colour=(1.0, 0.85, 0.0)) -> np.ndarray:
    """Draw segment boundaries over a display image."""
    from skimage.segmentation import find_boundaries

    rgb = np.repeat(display[..., None], 3, -1) if display.ndim == 2 else display.copy()
    if segments is not None:
        rgb[find_boundaries(segments, mode="inner")] = colour
    return rgb


def save_grid(panels: Sequence[Sequence[tuple]], path: Path, title: str = "") -> Path:
    """Save rows of ``(title, image, cmap_or_None)`` panels as one PNG."""
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    rows, cols = len(panels), max(len(r) for r in panels)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.75 * rows), squeeze=False)
    for r, row in enumerate(panels):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                name, img, cmap = row[c]
                ax.imshow(img, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None, interpolation="nearest")
                ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""``python -m monai_hsmix.preview hsmix``: X1, X2, Mh, Xh, Yh / Y1, Y2, Ms, Xs, Ys in one PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from monai_hsmix.core import labels_to_channels
from monai_hsmix.data.io import read_nifti
from monai_hsmix.data.sample_images import cardiac_phantom
from monai_hsmix.optional import require
from monai_hsmix.preview.rendering import grey, outline, save_grid, soft_label_rgb
from monai_hsmix.transforms import HSMIX_PRESETS, RandHSMixd

__all__ = ["add_arguments", "load_pair", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image1", type=Path, help="first image (NIfTI or PNG/JPEG/TIFF); demo phantoms when omitted")
    parser.add_argument("--label1", type=Path, help="label map (class indices) of the first image")
    parser.add_argument("--image2", type=Path, help="second image")
    parser.add_argument("--label2", type=Path, help="label map of the second image")
    parser.add_argument(
        "--slice",
        type=int,
        default=None,
        help="slice index along the last axis of 3D volumes (default: the slice of image 1 with the most foreground)",
    )
    parser.add_argument(
        "--crop",
        type=int,
        default=None,
        metavar="N",
        help="centre-crop (or zero-pad) both slices to N x N, for images of different sizes",
    )
    parser.add_argument(
        "--zscore",
        action="store_true",
        help="z-score each image over its non-zero pixels first, as the BraTS pipeline prepares "
        "its slices (display and saliency then match what training sees)",
    )
    parser.add_argument("--num-classes", type=int, default=None, help="number of classes (default: from the labels)")
    parser.add_argument(
        "--preset", choices=sorted(HSMIX_PRESETS), default=None, help="the paper's settings for a dataset"
    )
    parser.add_argument("--n-segments", type=int, nargs=2, metavar=("LMIN", "LMAX"), default=None)
    parser.add_argument("--compactness", type=float, default=None)
    parser.add_argument("--p", type=float, default=None, help="superpixel selection probability")
    parser.add_argument("--backend", default="auto", help="auto, torch or reference")
    parser.add_argument("--size", type=int, default=160, help="side of the demo phantoms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("hsmix_preview.png"))


def _read(path: Path) -> np.ndarray:
    """Read a 2D image / 3D volume as channel-first ``(C, H, W[, D])`` without index reversal."""
    name = path.name.lower()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if name.endswith((".nii", ".nii.gz")):
        data = read_nifti(path, "image")[0].astype(np.float32)
        return data[None] if data.ndim in (2, 3) else np.moveaxis(data, -1, 0)
    Image = require("PIL.Image")

    data = np.asarray(Image.open(path), dtype=np.float32)
    return data[None] if data.ndim == 2 else np.moveaxis(data[..., :3], -1, 0)


def _to_slice(image: np.ndarray, label: np.ndarray, index: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    if image.ndim == 3:
        return image, label
    if index is None:
        index = int(np.argmax((label[0] > 0).reshape(-1, label.shape[-1]).sum(0)))
    if not 0 <= index < image.shape[-1]:
        raise ValueError(f"--slice {index} is outside 0..{image.shape[-1] - 1}")
    return image[..., index], label[..., index]


def load_pair(args: argparse.Namespace) -> Tuple[np.ndarray, np.ndarray]:
    """The two images ``(2, C, H, W)`` and index labels ``(2, 1, H, W)`` the preview shows."""
    given = [args.image1, args.label1, args.image2, args.label2]
    if not any(given):
        a, b = cardiac_phantom(args.size, args.seed), cardiac_phantom(args.size, args.seed + 1)
        return np.stack([a[0], b[0]]), np.stack([a[1], b[1]])
    if not all(given):
        raise ValueError("give all of --image1 --label1 --image2 --label2, or none for the demo phantoms")
    pairs = []
    for img_path, lab_path in ((args.image1, args.label1), (args.image2, args.label2)):
        img, lab = _read(img_path), _read(lab_path)[:1]
        if img.shape[1:] != lab.shape[1:]:
            raise ValueError(f"{img_path} has spatial shape {img.shape[1:]} but {lab_path} has {lab.shape[1:]}")
        img, lab = _to_slice(img, np.round(lab), args.slice)
        if args.crop:
            from monai.transforms import ResizeWithPadOrCrop

            fit = ResizeWithPadOrCrop((args.crop, args.crop))
            img, lab = np.asarray(fit(img)), np.asarray(fit(lab))
        pairs.append((img, lab))
    if pairs[0][0].shape != pairs[1][0].shape:
        raise ValueError(
            f"the two images differ in shape: {pairs[0][0].shape} vs {pairs[1][0].shape}; "
            "pass --crop N or resample them first"
        )
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]).astype(np.int64)


def _zscore(images: np.ndarray) -> np.ndarray:
    out = np.zeros_like(images, dtype=np.float32)
    for i, img in enumerate(images):
        inside = img != 0
        if inside.any():
            vals = img[inside]
            out[i][inside] = (vals - vals.mean()) / (vals.std() if vals.std() > 0 else 1.0)
    return out


def run(args: argparse.Namespace) -> Path:
    images, labels = load_pair(args)
    if args.zscore:
        images = _zscore(images)
    num_classes = args.num_classes or max(int(labels.max()) + 1, 2)
    settings = (
        dict(HSMIX_PRESETS[args.preset].as_kwargs())
        if args.preset
        else {"n_segments": (60, 120), "compactness": 0.1, "p": 0.3}
    )
    for key, value in (("n_segments", args.n_segments), ("compactness", args.compactness), ("p", args.p)):
        if value is not None:
            settings[key] = tuple(value) if key == "n_segments" else value
    mix = RandHSMixd(
        ["image", "label"], "label", num_classes=num_classes, backend=args.backend, return_masks=True, **settings
    )
    mix.set_random_state(args.seed)
    out = mix({"image": torch.from_numpy(images), "label": torch.from_numpy(labels)})
    b = 0
    x1, x2 = images[0], images[1]
    channels = labels_to_channels(torch.from_numpy(labels), num_classes)
    y1, y2 = channels[0].numpy(), channels[1].numpy()
    sp1 = out["hsmix_segments"][b, 0].numpy()
    sp2 = out["hsmix_partner_segments"][b, 0].numpy()
    spm = out["hsmix_mixed_segments"][b, 0].numpy()
    mh = out["hsmix_hard_mask"][b, 0].numpy()
    ms = out["hsmix_soft_mask"][b, 0].numpy()
    xh, xs = out["image"][b].numpy(), out["image"][2 + b].numpy()
    yh, ys = out["label"][b].numpy(), out["label"][2 + b].numpy()
    panels = [
        [
            ("X1 + SP1", outline(grey(x1), sp1), None),
            ("X2 + SP2", outline(grey(x2), sp2), None),
            ("Mh (hard mask)", outline(mh, spm), None),
            ("Xh (hard)", grey(xh), "gray"),
            ("Yh", soft_label_rgb(yh), None),
        ],
        [
            ("Y1", soft_label_rgb(y1), None),
            ("Y2", soft_label_rgb(y2), None),
            ("Ms (soft ratio, 0-1) + SPm", outline(ms, spm), None),
            ("Xs (soft)", grey(xs), "gray"),
            ("Ys (soft labels)", soft_label_rgb(ys), None),
        ],
    ]
    n_sp = (int(sp1.max()) + 1, int(sp2.max()) + 1)
    title = (
        f"HSMix  superpixels {n_sp[0]} / {n_sp[1]}, compactness {mix.mixer.compactness:g}, p {mix.mixer.p:g}, "
        f"pasted area {mh.mean():.0%}, mean Ms {ms.mean():.2f}"
    )
    return save_grid(panels, args.output, title)

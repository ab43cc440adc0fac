"""``python -m monai_hsmix.preview insmix``: original, pasted, perturbed, harmonised and instance overlay.

From a MoNuSeg image and mask (``--image`` and ``--mask``, or ``--monuseg-dir`` with ``--index``), cropped
to ``--crop-size``; from synthetic nuclei when no data is given. The harmonised panel uses
``--checkpoint`` (a trained Smooth-GAN) or, without one, a generator trained here for ``--gan-steps``
steps on the shown tile (a quick CPU fit, enough to show where it acts, not a trained harmoniser).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Tuple

import numpy as np
import torch

from monai_hsmix.core.background_shuffle import shuffle_background_patches
from monai_hsmix.core.instance_bank import InstanceBank, to_instance_labels
from monai_hsmix.core.instance_paste import paste_instances
from monai_hsmix.data.nuclei_data import list_monuseg_pairs, read_monuseg_pair, synthetic_nuclei
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.networks.smooth_gan import harmonize, load_generator
from monai_hsmix.optional import require

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", type=Path, default=None, help="RGB tile (.tif/.png)")
    parser.add_argument("--mask", type=Path, default=None, help="binary or instance mask for --image")
    parser.add_argument("--monuseg-dir", type=Path, default=None, help="MoNuSeg folder (images/, masks/); uses --index")
    parser.add_argument("--index", type=int, default=0, help="image index in --monuseg-dir")
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--crop-top", type=int, default=None, help="crop origin (default: centre)")
    parser.add_argument("--crop-left", type=int, default=None)
    parser.add_argument("--checkpoint", type=Path, default=None, help="trained Smooth-GAN checkpoint (local path)")
    parser.add_argument("--gan-steps", type=int, default=20, help="quick generator fit when no --checkpoint")
    parser.add_argument("--max-paste-ratio", type=float, default=0.5)
    parser.add_argument("--patch-size", type=int, default=20)
    parser.add_argument("--shuffle-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("insmix_preview.png"))


def _load(args) -> Tuple[np.ndarray, np.ndarray, str]:
    if args.image is not None or args.mask is not None:
        if args.image is None or args.mask is None:
            raise ValueError("--image and --mask go together")
        image, instances = read_monuseg_pair(args.image, args.mask)
        source = args.image.name
    elif args.monuseg_dir is not None:
        pairs = list_monuseg_pairs(args.monuseg_dir)
        if not 0 <= args.index < len(pairs):
            raise ValueError(f"--index {args.index} out of range: {len(pairs)} images in {args.monuseg_dir}")
        image, instances = read_monuseg_pair(*pairs[args.index])
        source = pairs[args.index][0].name
    else:
        image, instances = synthetic_nuclei(args.crop_size, max(8, args.crop_size // 6), seed=args.seed)
        return image, instances, "synthetic nuclei"
    size = min(args.crop_size, *image.shape[1:])
    top = (image.shape[1] - size) // 2 if args.crop_top is None else args.crop_top
    left = (image.shape[2] - size) // 2 if args.crop_left is None else args.crop_left
    if not (0 <= top <= image.shape[1] - size and 0 <= left <= image.shape[2] - size):
        raise ValueError(f"crop {size}x{size} at ({top}, {left}) leaves the {image.shape[1:]} image")
    window = (slice(top, top + size), slice(left, left + size))
    # relabel: a crop cuts nuclei, and connected components of the crop are its instances
    return (
        image[(slice(None), *window)].copy(),
        to_instance_labels(instances[window] > 0),
        f"{source} [{top}:{top + size}, {left}:{left + size}]",
    )


def _generator(args, image: np.ndarray, instances: np.ndarray):
    if args.checkpoint is not None:
        return load_generator(args.checkpoint)[0], f"Smooth-GAN {args.checkpoint.name}"
    from monai_hsmix.apps.train_smooth_gan import SmoothGANTrainConfig, train

    crop = min(64, *image.shape[1:])
    with tempfile.TemporaryDirectory() as tmp:
        fit = SmoothGANTrainConfig(
            steps=args.gan_steps, batch_size=2, crop_size=crop, channels=image.shape[0], base_features=8,
            disc_features=8, device="auto", seed=args.seed, num_synthetic=0, log_every=max(1, args.gan_steps),
            save_every=10**9, output=Path(tmp) / "g.pt",
        )  # fmt: skip
        path, _ = train(fit, tiles=[(image, instances)])
        generator = load_generator(path)[0]
    return generator, f"G fitted {args.gan_steps} steps here"


def _overlay(image: np.ndarray, instances: np.ndarray, pasted: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image.copy()
    rgb = rgb.transpose(1, 2, 0).astype(np.float32) / 255.0
    edges = find_boundaries(instances, mode="inner")
    rgb[edges & ~pasted] = (0.1, 0.9, 0.2)
    rgb[edges & pasted] = (1.0, 0.85, 0.0)
    return rgb


def run(args: argparse.Namespace) -> Path:
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    image, instances, source = _load(args)
    rng = np.random.RandomState(args.seed)
    bank = InstanceBank.from_pairs([(image, instances)])
    if len(bank) == 0:
        bank = InstanceBank.from_pairs([(image, instances)], min_area=1, exclude_border=False)
    result = paste_instances(image, instances, bank, SSDConstraints(), rng, args.max_paste_ratio)
    foreground = torch.from_numpy(result.instances > 0)
    shuffle_seed = rng.randint(2**31 - 1)

    def perturb(x: np.ndarray) -> np.ndarray:
        shuffled = shuffle_background_patches(
            torch.from_numpy(x), foreground, args.patch_size, args.shuffle_fraction, np.random.RandomState(shuffle_seed)
        )
        return shuffled.numpy()

    perturbed = perturb(result.image)
    generator, g_name = _generator(args, image, instances)
    harmonised = harmonize(
        generator,
        torch.from_numpy(result.image),
        torch.from_numpy(instances > 0),
        torch.from_numpy(result.pasted),
        (0, 255),
    ).numpy()
    final = perturb(harmonised)
    change = (
        np.abs(harmonised[:, result.pasted].astype(np.float64) - result.image[:, result.pasted]).mean()
        if result.pasted.any()
        else 0.0
    )

    def show(x):
        return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)

    panels = [
        (show(image), f"original ({int(instances.max())} nuclei)"),
        (show(result.image), f"pasted (+{len(result.records)} nuclei)"),
        (show(perturbed), f"perturbed (bg shuffle {args.shuffle_fraction:g})"),
        (show(final), f"harmonised + perturbed\n({g_name}; mean |G-x| {change:.2f})"),
        (_overlay(final, result.instances, result.pasted), "instances (green orig., yellow pasted)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), dpi=100)
    for ax, (data, title) in zip(axes, panels):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, vmin=0, vmax=255 if data.dtype == np.uint8 else None)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"InsMix on {source}", fontsize=10)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output)
    plt.close(fig)
    return args.output

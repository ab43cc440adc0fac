"""Preview of Soft-CP: ``python -m monai_hsmix.preview softcp [options]``.

With ``--main-image/--main-label`` and ``--donor-image/--donor-label`` (NIfTI; several image files are
channels) it pastes a lesion of the donor into the main case, inside ``--main-reference`` if given;
without them it uses built-in synthetic 3D data. The PNG shows, on the axial slice through the pasted
lesion, per channel: main, donor (through its lesion), the blending weight, the result and the labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from monai_hsmix.apps.softcp_synthesize import add_paste_arguments, paste_kwargs, paster_from_settings
from monai_hsmix.data.io import load_image_channels, load_label_map
from monai_hsmix.core.paste_placement import paste_region
from monai_hsmix.optional import require

__all__ = ["add_arguments", "run", "demo_cases", "weight_map"]

LABEL_COLOURS = np.array(
    [[0, 0, 0], [0.85, 0.1, 0.1], [0.1, 0.75, 0.2], [0.95, 0.85, 0.1], [0.2, 0.4, 1.0]], dtype=np.float32
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--main-image", nargs="+", type=Path, help="main case image file(s), one per channel")
    parser.add_argument("--main-label", type=Path)
    parser.add_argument("--main-reference", type=Path, help="mask the lesion must lie in (e.g. brainmask.nii.gz)")
    parser.add_argument("--donor-image", nargs="+", type=Path)
    parser.add_argument("--donor-label", type=Path)
    parser.add_argument("--channel-names", nargs="+", help="names shown for the channels")
    # defaults sized for 1 mm brain MRI: a 12-voxel soft rim, lesions well inside the reference
    add_paste_arguments(
        parser,
        label_values=[1, 2, 3, 4],
        num_rings=6,
        ring_width=2,
        s1=0.9,
        s2=0.05,
        min_lesion_voxels=200,
        flip_prob=0.5,
    )
    parser.add_argument("--downsample", type=int, default=1, help="keep every n-th voxel per axis (speed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpi", type=int, default=80)
    parser.add_argument("--output", type=Path, default=Path("softcp_preview.png"))


def demo_cases(seed: int = 0, shape: Tuple[int, int, int] = (72, 72, 24)) -> Dict[str, np.ndarray]:
    """Two synthetic two-channel 'brains' (ellipsoids with texture); only the donor has a lesion."""
    rng = np.random.RandomState(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    brain = ((grid / np.array([0.85, 0.75, 0.9])[:, None, None, None]) ** 2).sum(0) < 1

    def case(with_lesion: bool):
        texture = rng.normal(0, 0.15, (2, *shape)) + np.stack([np.full(shape, 0.3), 0.2 * grid[0]])
        img = np.where(brain, 1.0 + texture, 0.0)
        label = np.zeros(shape, dtype=np.int64)
        if with_lesion:
            r = np.sqrt(((grid - np.array([0.2, -0.15, 0.0])[:, None, None, None]) ** 2 / 0.05).sum(0))
            label[r < 1.0] = 2  # oedema shell
            label[r < 0.5] = 4  # enhancing core
            img[0] += np.where(label > 0, 1.2, 0.0)
            img[1] += np.where(label == 4, 1.5, 0.0)
        return img.astype(np.float32), label

    main_img, main_lbl = case(False)
    donor_img, donor_lbl = case(True)
    return {
        "main_image": main_img,
        "main_label": main_lbl,
        "reference": brain,
        "donor_image": donor_img,
        "donor_label": donor_lbl,
    }


def _load_cases(args) -> Dict[str, np.ndarray]:
    needed = [args.main_image, args.main_label, args.donor_image, args.donor_label]
    if all(v is None for v in needed) and args.main_reference is None:
        return demo_cases(args.seed)
    if any(v is None for v in needed):
        raise ValueError("give all of --main-image, --main-label, --donor-image and --donor-label, or none of them")
    step = (slice(None, None, args.downsample),) * 3
    cases = {
        "main_image": load_image_channels([str(p) for p in args.main_image])[0][(slice(None),) + step],
        "main_label": load_label_map(str(args.main_label))[0][step],
        "donor_image": load_image_channels([str(p) for p in args.donor_image])[0][(slice(None),) + step],
        "donor_label": load_label_map(str(args.donor_label))[0][step],
        "reference": None,
    }
    if args.main_reference is not None:
        cases["reference"] = load_label_map(str(args.main_reference))[0][step] != 0
    return cases


def weight_map(info: dict, shape) -> np.ndarray:
    """The blending weights of the accepted pastes of one call, drawn into an image-sized map."""
    out = np.zeros(shape, dtype=np.float32)
    for placement, weight in zip(info["placements"], info["weights"]):
        region = paste_region(placement.offset, weight.shape, shape)
        if region is not None:
            image_sl, patch_sl = region
            out[image_sl] = np.maximum(out[image_sl], weight[patch_sl].cpu().numpy())
    return out


def _overlay(gray: np.ndarray, label: np.ndarray, lo: float, hi: float) -> np.ndarray:
    g = np.clip((gray - lo) / max(hi - lo, 1e-6), 0, 1)[..., None].repeat(3, -1)
    colours = LABEL_COLOURS[np.clip(label, 0, len(LABEL_COLOURS) - 1)]
    return np.clip(np.where(label[..., None] > 0, 0.45 * g + 0.55 * colours, g), 0, 1)


def run(args: argparse.Namespace) -> Path:
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    cases = _load_cases(args)
    paster = paster_from_settings(paste_kwargs(args), cases["main_image"].ndim - 1).set_random_state(args.seed)
    out_img, out_lbl = paster(
        cases["main_image"], cases["main_label"], cases["donor_image"], cases["donor_label"], cases["reference"]
    )
    info = paster.last_info
    if info["pasted"] == 0:
        raise RuntimeError(f"no lesion was pasted ({', '.join(info['skip_reasons'])}); try another --seed")
    weight = weight_map(info, out_lbl.shape)
    pasted = out_lbl != cases["main_label"]
    z = int(np.argmax(pasted.sum((0, 1))))
    donor_lesion = np.isin(cases["donor_label"], args.label_values)
    dz = int(np.argmax(donor_lesion.sum((0, 1))))
    n_ch = out_img.shape[0]
    names = args.channel_names or [f"channel {c}" for c in range(n_ch)]
    if len(names) != n_ch:
        raise ValueError(f"{len(names)} --channel-names for {n_ch} channels")

    fig, axes = plt.subplots(n_ch, 5, figsize=(12.5, 2.75 * n_ch + 0.5), squeeze=False)
    for c in range(n_ch):
        brain = cases["main_image"][c]
        lo, hi = np.percentile(brain[brain != 0], [1, 99.5]) if np.any(brain != 0) else (0.0, 1.0)
        show = lambda ax, im, **kw: ax.imshow(np.rot90(im), **kw)  # noqa: E731  (radiological view)
        show(axes[c, 0], cases["main_image"][c][..., z], cmap="gray", vmin=lo, vmax=hi)
        axes[c, 0].set_title(f"main, {names[c]}")
        show(axes[c, 1], _overlay(cases["donor_image"][c][..., dz], cases["donor_label"][..., dz], lo, hi))
        axes[c, 1].set_title(f"donor + label, {names[c]}")
        if c == 0:
            show(axes[c, 2], weight[..., z], cmap="magma", vmin=0, vmax=1)
            axes[c, 2].set_title(f"{args.mode} mask (weight)")
        else:
            show(axes[c, 2], np.abs(out_img[c] - cases["main_image"][c])[..., z], cmap="viridis")
            axes[c, 2].set_title("|result - main|")
        show(axes[c, 3], out_img[c][..., z], cmap="gray", vmin=lo, vmax=hi)
        axes[c, 3].set_title(f"result, {names[c]}")
        if c == 0:
            show(axes[c, 4], _overlay(out_img[c][..., z], out_lbl[..., z], lo, hi))
            axes[c, 4].set_title("result label")
        else:
            show(axes[c, 4], _overlay(cases["main_image"][c][..., z], cases["main_label"][..., z], lo, hi))
            axes[c, 4].set_title("main label (before)")
        if cases["reference"] is not None:
            axes[c, 3].contour(np.rot90(cases["reference"][..., z]), levels=[0.5], colors="c", linewidths=0.6)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(
        f"Soft-CP ({args.mode}, alpha={args.alpha}, {args.num_rings} rings x {args.ring_width}): "
        f"axial slice {z} (donor slice {dz}); cyan = reference",
        fontsize=10,
    )
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=args.dpi)
    plt.close(fig)
    return args.output

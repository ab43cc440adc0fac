"""Train the InsMix Smooth-GAN harmoniser.

    python -m monai_hsmix.apps.train_smooth_gan --data-dir ../shared/data/monuseg_subset \\
        --steps 3000 --crop-size 128 --batch-size 8 --output runs/smooth_gan/smooth_gan.pt

Without ``--data-dir`` it trains on synthetic nuclei tiles (useful as a smoke test). Each step draws
random crops, pastes morphology-matched nuclei from an instance bank of all training tiles (the InsMix
copy-paste, without background shuffle), and trains the generator to make the pasted nuclei pass the
triplet discriminator (see :mod:`monai_hsmix.networks.smooth_gan` for the exact losses). The device is
CUDA when available unless ``--device`` says otherwise. The checkpoint is a dict with ``config`` and the
state dicts; load it with :func:`monai_hsmix.networks.smooth_gan.load_generator` or pass its path to
``RandInsMixd(harmonizer=...)``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from monai_hsmix.apps.config import parse_config
from monai_hsmix.core.instance_bank import InstanceBank
from monai_hsmix.core.instance_paste import paste_instances
from monai_hsmix.data.nuclei_data import list_monuseg_pairs, read_monuseg_pair, synthetic_nuclei
from monai_hsmix.core.ssd_constraints import SSDConstraints
from monai_hsmix.networks.smooth_gan import (
    PatchDiscriminator,
    SmoothGANGenerator,
    compose,
    generator_loss,
    save_checkpoint,
    to_unit_range,
    triplet_discriminator_loss,
)

__all__ = [
    "add_arguments",
    "build_parser",
    "load_tiles",
    "main",
    "parse_args",
    "resolve_device",
    "SmoothGANTrainConfig",
    "Tile",
    "train",
    "TripletBatchSampler",
]

Tile = Tuple[np.ndarray, np.ndarray]


@dataclass
class SmoothGANTrainConfig:
    """One Smooth-GAN training run; the command-line options have the same names (``--crop-size`` is ``crop_size``)."""

    data_dir: Optional[Path] = None
    max_images: int = 0
    num_synthetic: int = 8
    output: Path = Path("runs/smooth_gan/smooth_gan.pt")
    steps: int = 2000
    batch_size: int = 8
    crop_size: int = 128
    channels: int = 3
    base_features: int = 32
    disc_features: int = 32
    no_residual: bool = False
    lr: float = 2e-4
    margin: float = 1.0
    lambda_l1: float = 10.0
    l1_region: str = "all"
    device: str = "auto"
    seed: int = 0
    log_every: int = 50
    save_every: int = 500

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.data_dir = None if self.data_dir is None else Path(self.data_dir)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--data-dir", type=Path, help="MoNuSeg-style folder (images/*.tif, masks/*.png); synthetic tiles when omitted"
    )
    parser.add_argument("--max-images", type=int, help="use at most this many images (0: all)")
    parser.add_argument("--num-synthetic", type=int, help="synthetic tiles when no --data-dir")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--crop-size", type=int)
    parser.add_argument("--channels", type=int, choices=(1, 3), help="3: RGB; 1: grey (mean of RGB)")
    parser.add_argument("--base-features", type=int, help="generator width")
    parser.add_argument("--disc-features", type=int, help="discriminator width")
    parser.add_argument(
        "--no-residual", action="store_true", help="plain tanh generator output (the paper's), not input + correction"
    )
    parser.add_argument("--lr", type=float)
    parser.add_argument("--margin", type=float, help="triplet margin m (Eq. 3)")
    parser.add_argument("--lambda-l1", type=float, help="weight of the L1 term (Eq. 5)")
    parser.add_argument(
        "--l1-region", choices=("all", "outside"),
        help="L1 of Eq. 5 over the whole image (authors' code) or only outside the pasted nuclei",
    )  # fmt: skip
    parser.add_argument("--device", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--log-every", type=int)
    parser.add_argument("--save-every", type=int)
    return parser


def load_tiles(
    data_dir: Optional[Path], channels: int, max_images: int = 0, num_synthetic: int = 8, seed: int = 0
) -> List[Tile]:
    """``(image uint8 (C, H, W), instances)`` pairs from a MoNuSeg folder, or synthetic tiles."""
    if data_dir is None:
        tiles = [synthetic_nuclei(256, 60, channels=3, seed=seed + i) for i in range(num_synthetic)]
    else:
        pairs = list_monuseg_pairs(data_dir)
        tiles = [read_monuseg_pair(*p) for p in (pairs[:max_images] if max_images > 0 else pairs)]
    if channels == 1:
        tiles = [(np.round(img.mean(axis=0, keepdims=True)).astype(np.uint8), inst) for img, inst in tiles]
    return tiles


class TripletBatchSampler:
    """Draws (composite, masks, anchor, positive) batches from tiles with InsMix pasting.

    Anchor and positive are two further real crops (with nuclei) of random tiles, so the discriminator
    learns to put real tissue close together and composites away from it. (An anchor equal to the crop
    before pasting made the triplet degenerate: composite and anchor differ in a few pixels only, and
    the discriminator collapsed to a constant with L_D stuck at the margin.)
    """

    def __init__(
        self,
        tiles: Sequence[Tile],
        crop_size: int,
        rng: np.random.RandomState,
        constraints: Optional[SSDConstraints] = None,
    ):
        small = [t[0].shape[1:] for t in tiles if min(t[0].shape[1:]) < crop_size]
        if not tiles or small:
            raise ValueError(f"need tiles at least {crop_size}x{crop_size}; got none or smaller ones {small[:3]}")
        self.tiles = list(tiles)
        self.crop = crop_size
        self.rng = rng
        self.constraints = constraints or SSDConstraints()
        self.bank = InstanceBank.from_pairs(self.tiles)
        if len(self.bank) == 0:
            raise ValueError("the training tiles hold no usable nucleus instances")

    def _crop(self, require_nuclei: bool) -> Tile:
        for _ in range(20):
            image, inst = self.tiles[self.rng.randint(len(self.tiles))]
            top = self.rng.randint(image.shape[1] - self.crop + 1)
            left = self.rng.randint(image.shape[2] - self.crop + 1)
            window = (slice(top, top + self.crop), slice(left, left + self.crop))
            crop_inst = inst[window]
            if crop_inst.any() or not require_nuclei:
                return image[(slice(None), *window)], crop_inst
        return image[(slice(None), *window)], crop_inst

    def sample(self, batch_size: int) -> Dict[str, torch.Tensor]:
        out: Dict[str, list] = {"image": [], "mask_ori": [], "mask_add": [], "anchor": [], "positive": []}
        for _ in range(batch_size):
            image, inst = self._crop(require_nuclei=True)
            if inst.any():
                pasted = paste_instances(image, inst, self.bank, self.constraints, self.rng)
                composite, added = pasted.image, pasted.pasted
            else:
                composite, added = image, np.zeros(inst.shape, dtype=bool)
            out["image"].append(composite)
            out["mask_ori"].append((inst > 0)[None])
            out["mask_add"].append(added[None])
            out["anchor"].append(self._crop(require_nuclei=True)[0])
            out["positive"].append(self._crop(require_nuclei=True)[0])
        batch = {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}
        for key in ("image", "anchor", "positive"):
            batch[key] = to_unit_range(batch[key], (0.0, 255.0))
        batch["mask_ori"] = batch["mask_ori"].float()
        batch["mask_add"] = batch["mask_add"].float()
        return batch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name} requested but CUDA is not available")
    return device


def train(args: SmoothGANTrainConfig, tiles: Optional[Sequence[Tile]] = None) -> Tuple[Path, List[Dict[str, float]]]:
    """Run the training described by ``args``; return the checkpoint path and the logged losses.

    ``tiles`` (``(uint8 image, instances)`` pairs) replaces ``--data-dir`` when given.
    """
    if args.steps < 1 or args.batch_size < 1:
        raise ValueError(f"--steps and --batch-size must be >= 1, got {args.steps}, {args.batch_size}")
    if args.crop_size < 32:
        raise ValueError(f"--crop-size must be >= 32 (the discriminator downsamples 8x), got {args.crop_size}")
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    if tiles is None:
        tiles = load_tiles(args.data_dir, args.channels, args.max_images, args.num_synthetic, args.seed)
    sampler = TripletBatchSampler(tiles, args.crop_size, rng)
    residual = not args.no_residual
    generator = SmoothGANGenerator(args.channels, args.base_features, residual=residual).to(device)
    discriminator = PatchDiscriminator(args.channels, args.disc_features).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    config = {
        "channels": args.channels,
        "base_features": args.base_features,
        "disc_features": args.disc_features,
        "softmax_scale": 10.0,
        "residual": residual,
        "value_range": [0.0, 255.0],
        "crop_size": args.crop_size,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "margin": args.margin,
        "lambda_l1": args.lambda_l1,
        "l1_region": args.l1_region,
        "seed": args.seed,
        "data_dir": None if args.data_dir is None else str(args.data_dir),
        "num_tiles": len(tiles),
        "num_templates": len(sampler.bank),
        "device": str(device),
    }
    history: List[Dict[str, float]] = []
    start = time.time()
    for step in range(1, args.steps + 1):
        batch = {k: v.to(device) for k, v in sampler.sample(args.batch_size).items()}
        generated = generator(batch["image"], batch["mask_ori"], batch["mask_add"])
        composite = compose(generated, batch["image"], batch["mask_add"])

        discriminator.requires_grad_(True)
        d_anchor, d_positive = discriminator(batch["anchor"]), discriminator(batch["positive"])
        loss_d = triplet_discriminator_loss(d_anchor, d_positive, discriminator(composite.detach()), args.margin)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        discriminator.requires_grad_(False)
        with torch.no_grad():
            d_anchor, d_positive = discriminator(batch["anchor"]), discriminator(batch["positive"])
        l1_weight = 1.0 - batch["mask_add"] if args.l1_region == "outside" else None
        loss_g, parts = generator_loss(
            d_anchor, d_positive, discriminator(composite), generated, batch["image"], args.lambda_l1, l1_weight
        )
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        record = {"step": step, "d": float(loss_d.detach()), "g": float(loss_g.detach()), **parts}
        if not all(math.isfinite(v) for v in record.values()):
            raise RuntimeError(f"non-finite Smooth-GAN loss at step {step}: {record}")
        if step % args.log_every == 0 or step == 1 or step == args.steps:
            history.append(record)
            print(
                f"step {step}/{args.steps}  L_D {record['d']:.4f}  L_G {record['g']:.4f}  "
                f"(adv {record['g_adv']:.4f}, L1 {record['g_l1']:.4f})  {time.time() - start:.1f}s",
                flush=True,
            )
        if step % args.save_every == 0 and step != args.steps:
            save_checkpoint(args.output, generator, discriminator, config, step, history)
    path = save_checkpoint(args.output, generator, discriminator, config, args.steps, history)
    print(f"checkpoint written to {path}")
    return path, history


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.train_smooth_gan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return add_arguments(parser)


def parse_args(argv: Optional[Sequence[str]] = None) -> SmoothGANTrainConfig:
    """The command line ``argv`` as a :class:`SmoothGANTrainConfig`."""
    return parse_config(SmoothGANTrainConfig, build_parser(), argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

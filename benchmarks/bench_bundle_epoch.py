"""Epoch time of the BraTS2018 bundle without HSMix, with HSMix on the training device, and in the loader.

Trains ``bundles/brats2018_hsmix/configs/train.yaml`` on generated demo data (8 cases, 224 x 224 x 48 by
default) for a few epochs four ways, in one process, on the same data, and prints the median epoch
time (first epoch left out: it pays cuDNN autotuning and kernel compilation) and the ratios:

- ``none``: ``use_hsmix False``;
- ``none_2b``: ``use_hsmix False`` with twice the batch: as many samples per step as HSMix's hard + soft
  batch, so ``device`` and ``workers`` against it is the cost of mixing, not of the doubled batch;
- ``device``: HSMix in ``BatchTransformPrepareBatch`` on the training device (the bundle's default);
- ``workers``: HSMix in the DataLoader's workers (``BatchTransformCollate``, CPU), the device only trains.

Validation is left out (``val_interval`` beyond the last epoch) so the figures are training time.

    python benchmarks/bench_bundle_epoch.py --device cuda --epochs 4 --workers 4
    python benchmarks/bench_bundle_epoch.py --device cpu --epochs 2 --img-size 64 --quick   # a dry run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_common import host_note, load_note
from monai_hsmix.bundle.utils import bundle_dir

MODES = ("none", "none_2b", "device", "workers")


def run_mode(mode: str, args, work: Path) -> list:
    from ignite.engine import Events
    from monai.bundle import ConfigParser

    configs = bundle_dir("brats2018_hsmix") / "configs"
    parser = ConfigParser()
    parser.read_config(str(configs / "train.yaml"))
    parser.read_meta(str(configs / "metadata.json"))
    overrides = {
        "bundle_root": str(bundle_dir("brats2018_hsmix")),
        "output_dir": str(work / mode),
        "dataset_dir": str(work / "demo"),
        "prepared_dir": str(work / "prepared"),
        "img_size": args.img_size,
        "max_epochs": args.epochs,
        "val_interval": args.epochs + 1,
        "batch_size": args.batch_size * (2 if mode == "none_2b" else 1),
        "num_workers": args.workers,
        "resume": False,
        "progress": False,
        "log_every": 0,
        "num_threads": 1,
        "device": f"$torch.device('{args.device}')",
        "use_hsmix": not mode.startswith("none"),
    }
    if args.quick:
        overrides["network_kwargs"] = {"channels": [8, 16, 32, 64, 128], "num_res_units": 1}
    for key, value in overrides.items():
        parser[key] = value
    if mode == "workers":
        parser["train#dataloader#collate_fn"] = "$monai_hsmix.engines.BatchTransformCollate(@hsmix)"
        parser["train#prepare_batch"] = "$monai_hsmix.engines.BatchTransformPrepareBatch(None)"
    parser.get_parsed_content("initialize")
    trainer = parser.get_parsed_content("train#trainer")
    stamps = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: stamps.append(time.perf_counter()))

    def done(engine):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    # before the bundle's own epoch handlers (checkpoint saving): training time only
    trainer._event_handlers[Events.EPOCH_COMPLETED].insert(0, (done, (trainer,), {}))
    trainer.run()
    return [stamps[i + 1] - stamps[i] for i in range(0, len(stamps) - 1, 2)], trainer.state.epoch_length


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers in every mode")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--demo-size", type=int, default=224, help="in-plane side of the generated demo volumes")
    p.add_argument("--demo-depth", type=int, default=48, help="slices of the generated demo volumes")
    p.add_argument("--quick", action="store_true", help="a small UNet (dry run on a CPU)")
    args = p.parse_args(argv)
    print(host_note())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        from monai_hsmix.data.demo_data import make_demo_dataset

        make_demo_dataset("brats2018", Path(tmp) / "demo", seed=0, size=args.demo_size, depth=args.demo_depth)
        for mode in args.modes:
            epochs, steps = run_mode(mode, args, Path(tmp))
            steady = statistics.median(epochs[1:] or epochs)
            results[mode] = (steady, steady / steps)
            print(
                f"{mode:8s} epochs (s): {', '.join(f'{e:.2f}' for e in epochs)}; median after the first "
                f"{steady:.2f} s, {steps} steps of {args.batch_size * (1 if mode == 'none' else 2)} samples "
                f"({load_note()})",
                flush=True,
            )
    # per step: none_2b trains as many samples per step as HSMix (hard + soft), on half the steps per epoch
    print(f"\n  {'mode':8s} {'s/epoch':>8s} {'ms/step':>8s}  step vs none  step vs none_2b (the cost of mixing)")
    for mode, (epoch, step) in results.items():
        vs = [f"{step / results[ref][1]:11.2f}x" if ref in results else f"{'':12s}" for ref in ("none", "none_2b")]
        print(f"  {mode:8s} {epoch:8.2f} {1000 * step:8.1f}  {vs[0]}  {vs[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

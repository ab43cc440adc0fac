"""``python -m monai_hsmix.apps.demo`` (``make demo``): train the BraTS2018 bundle with HSMix on a CPU in minutes.

Generates the synthetic BraTS2018 demo dataset (unless it exists), writes an HSMix preview of two
demo slices, trains a small 2D UNet at 64 x 64 with HSMix through the bundle's ``train.yaml``,
evaluates the best checkpoint with ``evaluate.yaml`` and prints Dice / IoU / HD95 per region (WT, TC,
ET) and where the checkpoint, logs and preview are. Everything goes under ``--output-dir``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from monai_hsmix.bundle.utils import REGION_NAMES, bundle_dir, read_metric_summary

__all__ = ["BUNDLE", "main", "METRICS", "run_demo", "write_preview"]

BUNDLE = "brats2018_hsmix"
METRICS = {"val_mean_dice": "Dice", "val_mean_iou": "IoU (Jaccard)", "val_hd95": "HD95 (mm)"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--network", default="unet", choices=("unet", "swinunetr", "transunet"))
    p.add_argument("--img-size", type=int, default=64, help="centre-crop side of the training slices")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=3e-3)
    p.add_argument("--no-hsmix", action="store_true", help="train the baseline without mixing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-preview", action="store_true", help="skip the HSMix preview PNG")
    p.add_argument(
        "--restart",
        action="store_true",
        help="train from scratch even if --output-dir holds a checkpoint of an earlier demo (by default "
        "the demo resumes it; with other settings it stops and says which)",
    )
    p.add_argument(
        "--num-threads",
        type=int,
        default=None,
        help="CPU threads (default: from the usable cores and the machine's load, or OMP_NUM_THREADS; "
        "see monai_hsmix.engines.threads)",
    )
    return p


def _network_kwargs(name: str) -> dict:
    # small enough to train in a few minutes on two CPU cores
    return {
        "unet": {"channels": [16, 32, 64, 128, 256], "num_res_units": 1},
        "swinunetr": {"feature_size": 12, "depths": [1, 1, 1, 1], "num_heads": [3, 6, 12, 24]},
        "transunet": {"hidden_size": 96, "num_layers": 2, "num_heads": 4, "mlp_dim": 192, "resnet_layers": [1, 1, 1]},
    }[name]


def write_preview(data_dir: Path, out_png: Path, seed: int) -> Path:
    """HSMix of the middle tumour slices of two demo cases (FLAIR), via ``python -m monai_hsmix.preview hsmix``."""
    from monai_hsmix.preview.__main__ import main as preview_main

    cases = sorted((data_dir / "HGG").iterdir())[:2]
    files = [(c / f"{c.name}_flair.nii.gz", c / f"{c.name}_seg.nii.gz") for c in cases]
    import numpy as np

    from monai_hsmix.data.io import read_nifti

    seg = read_nifti(files[0][1], "demo segmentation")[0]
    z = int(np.argmax((seg > 0).sum(axis=(0, 1))))
    out_png.parent.mkdir(parents=True, exist_ok=True)
    preview_main(
        [
            "hsmix",
            "--image1",
            str(files[0][0]),
            "--label1",
            str(files[0][1]),
            "--image2",
            str(files[1][0]),
            "--label2",
            str(files[1][1]),
            "--slice",
            str(z),
            "--num-classes",
            "5",
            "--preset",
            "brats2018",
            "--zscore",
            "--seed",
            str(seed),
            "--output",
            str(out_png),
        ]
    )
    return out_png


def run_demo(
    output_dir: Path = Path("demo_output"),
    epochs: int = 30,
    network: str = "unet",
    img_size: int = 64,
    batch_size: int = 8,
    learning_rate: float = 3e-3,
    use_hsmix: bool = True,
    seed: int = 0,
    preview: bool = True,
    restart: bool = False,
    num_threads: Optional[int] = None,
) -> Dict[str, Dict[str, float]]:
    """Run the demo and return ``{metric: {"WT": v, "TC": v, "ET": v, "mean": v}}``.

    A rerun in the same ``output_dir`` resumes the saved training state (``--epochs`` higher trains on);
    one with other settings stops with :class:`~monai_hsmix.engines.checkpoint.RunSettingsMismatchError`;
    ``restart=True`` trains from scratch. ``num_threads`` None chooses CPU threads with
    :func:`monai_hsmix.engines.threads.default_num_threads` (one thread per core on a busy machine
    oversubscribes it and runs several times slower).
    """
    from monai.bundle import run as bundle_run

    from monai_hsmix.data.demo_data import resolve_dataset_dir
    from monai_hsmix.engines.threads import set_num_threads, usable_cores
    from monai_hsmix.engines.checkpoint import latest_checkpoint

    out = Path(output_dir).resolve()
    bundle = bundle_dir(BUNDLE)
    configs = bundle / "configs"
    start = time.perf_counter()
    threads = set_num_threads(num_threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"[demo] {threads} CPU thread(s) of {usable_cores()} usable cores (1-min load {load:.2f} at start)", flush=True
    )
    data_dir = Path(resolve_dataset_dir(None, "brats2018", out / "data" / "brats2018", seed=seed))
    print(f"[demo] BraTS2018-layout demo data: {data_dir}", flush=True)
    png = write_preview(data_dir, out / "hsmix_preview.png", seed) if preview else None
    run_dir = out / ("brats2018_hsmix" if use_hsmix else "brats2018_baseline")
    previous = None if restart else latest_checkpoint(run_dir / "models")
    overrides = dict(
        bundle_root=str(bundle),
        output_dir=str(run_dir),
        dataset_dir=str(data_dir),
        prepared_dir=str(out / "prepared"),
        img_size=img_size,
        network_name=network,
        network_kwargs=_network_kwargs(network),
        use_hsmix=use_hsmix,
        max_epochs=epochs,
        val_interval=1,
        batch_size=batch_size,
        val_batch_size=32,
        num_workers=0,
        learning_rate=learning_rate,
        log_every=5,
        seed=seed,
        val_fraction=0.25,
        resume=not restart,
        num_threads=threads,
    )
    if previous is not None:
        print(f"[demo] resuming the earlier demo run from {previous} (--restart trains from scratch)", flush=True)
    print(
        f"[demo] training {network} with{'' if use_hsmix else 'out'} HSMix for {epochs} epochs "
        f"({img_size}x{img_size} slices) ...",
        flush=True,
    )
    bundle_run(config_file=[str(configs / "train.yaml")], logging_file=str(configs / "logging.conf"), **overrides)
    print("[demo] evaluating the best checkpoint on the validation cases ...", flush=True)
    bundle_run(
        config_file=[str(configs / "train.yaml"), str(configs / "evaluate.yaml")],
        logging_file=str(configs / "logging.conf"),
        **overrides,
    )
    elapsed = time.perf_counter() - start
    eval_dir = run_dir / "eval"
    results = {m: read_metric_summary(eval_dir / f"{m}_summary.csv", REGION_NAMES[BUNDLE]) for m in METRICS}
    print(f"\n[demo] finished in {elapsed / 60:.1f} min; validation cases (whole volumes), per region:")
    print(f"  {'metric':<15}" + "".join(f"{r:>9}" for r in (*REGION_NAMES[BUNDLE], "mean")))
    for m, label in METRICS.items():
        print(f"  {label:<15}" + "".join(f"{results[m][r]:>9.3f}" for r in (*REGION_NAMES[BUNDLE], "mean")))
    print(f"  best checkpoint : {run_dir / 'models' / 'model.pt'}")
    print(f"  training state  : {run_dir / 'models'} (last_checkpoint_epoch=N.pt, resumed on the next run)")
    print(f"  TensorBoard logs: {run_dir / 'logs'}  (tensorboard --logdir {run_dir / 'logs'})")
    print(f"  metric tables   : {eval_dir}")
    if png is not None:
        print(f"  HSMix preview   : {png}")
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    from monai_hsmix.bundle.errors import find_in_chain
    from monai_hsmix.engines.checkpoint import RunSettingsMismatchError

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        run_demo(
            args.output_dir,
            args.epochs,
            args.network,
            args.img_size,
            args.batch_size,
            args.learning_rate,
            not args.no_hsmix,
            args.seed,
            not args.no_preview,
            args.restart,
            args.num_threads,
        )
    except Exception as e:
        # the bundle wraps errors in config-evaluation errors: report the settings conflict itself
        err = find_in_chain(e, RunSettingsMismatchError)
        if err is None:
            raise
        print(
            f"[demo] error: {err}\n[demo] for the demo: pass another --output-dir, or --restart to train from scratch",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

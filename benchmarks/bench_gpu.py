"""HSMix on a GPU: the figures issue 29 asks for, and where the time goes.

Prints, on one device, in one run:

- whole ``RandHSMix(mode="both")`` per pair in 2D (B=8, 4 x 224 x 224, synapse preset) and 3D
  (B=2, 4 x 128^3, brats2018 preset), and each stage (SLIC, saliency, everything else);
- HSMix as a share of one MONAI UNet training step (forward, backward, AdamW) on (8, 4, 224, 224);
- the reference backend (scikit-image + OpenCV on the CPU) on the same 2D batch, as the ratio;
- the host synchronisations of one call (``torch.cuda.set_sync_debug_mode``), grouped by the source
  line that caused them, and the kernel launches of one call (``torch.profiler``).

Targets (issue 29): HSMix at most 5% of a UNet step; a 3D pair at most 50 ms.

    python benchmarks/bench_gpu.py --device cuda
    python benchmarks/bench_gpu.py --device cpu --quick     # a dry run of the script on a CPU
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import warnings

import torch

from bench_common import batch_2d, batch_3d, best_time, host_note, load_note
from monai_hsmix.backends.torch_saliency import torch_fine_grained_saliency
from monai_hsmix.backends.torch_slic import torch_slic
from monai_hsmix.transforms import RandHSMix

SETTINGS_2D = dict(n_segments=(200, 400), compactness=0.1, p=0.3)
SETTINGS_3D = dict(n_segments=(50, 150), compactness=0.003, p=0.3)


def _mix(backend: str, settings: dict) -> RandHSMix:
    return RandHSMix(num_classes=4, mode="both", backend=backend, **settings)


def _whole(mix: RandHSMix, images, labels):
    def call():
        mix.set_random_state(seed=0)
        return mix(images, labels)

    return call


def stage_times(name, images, labels, settings, device, repeats, out):
    lmin, lmax = settings["n_segments"]
    counts = torch.linspace(lmin, lmax, images.shape[0]).round().long()
    stages = {
        "SLIC": lambda: torch_slic(images, counts, settings["compactness"], max_segments=lmax),
        "saliency": lambda: torch_fine_grained_saliency(images),
        "whole RandHSMix": _whole(_mix("torch", settings), images, labels),
    }
    pairs = images.shape[0]
    times = {k: best_time(fn, device, repeats) for k, fn in stages.items()}
    times["rest (masks, blends)"] = times["whole RandHSMix"] - times["SLIC"] - times["saliency"]
    print(f"\n{name} on {device} ({load_note()}): ms per batch / per pair")
    for k, t in times.items():
        print(f"  {k:22s} {1000 * t:9.2f} {1000 * t / pairs:9.2f}")
    out[name] = {k: 1000 * t for k, t in times.items()}
    return times["whole RandHSMix"]


def sync_sites(images, labels, settings, out, name):
    """Host synchronisations of one HSMix call, by the source line that asked for them."""
    mix = _mix("torch", settings)
    call = _whole(mix, images, labels)
    call()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            call()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    sites = collections.Counter(
        f"{w.filename.split('monai_hsmix/')[-1]}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)
    )
    total = sum(sites.values())
    print(f"\n{name}: {total} host synchronisations in one call; top sites:")
    for site, n in sites.most_common(25):
        print(f"  {n:6d}  {site}")
    out[f"{name} syncs"] = {"total": total, "sites": dict(sites.most_common(60))}


def kernel_profile(images, labels, settings, out, name):
    from torch.profiler import ProfilerActivity, profile

    call = _whole(_mix("torch", settings), images, labels)
    call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    print(f"\n{name}: {launches} kernel launches in one call; top ops by GPU time:")
    print(events.table(sort_by="cuda_time_total", row_limit=15, max_name_column_width=48))
    print(events.table(sort_by="count", row_limit=12, max_name_column_width=48))
    out[f"{name} launches"] = launches


def unet_step_time(device, repeats):
    from monai.networks.nets import UNet

    net = UNet(
        spatial_dims=2,
        in_channels=4,
        out_channels=4,
        channels=(32, 64, 128, 256, 512),
        strides=(2, 2, 2, 2),
        num_res_units=2,
    ).to(device)
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = batch_2d(8, 4, 224)
    images, labels = images.to(device), labels.to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(images), labels[:, 0])
        loss.backward()
        opt.step()

    return best_time(step, device, repeats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (a dry run)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    repeats = 2 if args.quick else 10
    size2, size3 = (96, 32) if args.quick else (224, 128)
    print(host_note())
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    out = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    images2, labels2 = (t.to(device) for t in batch_2d(8, 4, size2))
    images3, labels3 = (t.to(device) for t in batch_3d(2, 4, size3))
    t2 = stage_times(f"2D B8 C4 {size2}", images2, labels2, SETTINGS_2D, device, repeats, out)
    t3 = stage_times(f"3D B2 C4 {size3}^3", images3, labels3, SETTINGS_3D, device, max(1, repeats // 3), out)
    step = unet_step_time(device, repeats)
    share = t2 / step
    print(
        f"\nUNet step (8, 4, {224}, {224}) on {device}: {1000 * step:.2f} ms; HSMix on (8, 4, {size2}, {size2}): "
        f"{1000 * t2:.2f} ms = {100 * share:.1f}% of a step (target <= 5%)"
    )
    print(f"3D pair: {1000 * t3 / 2:.1f} ms (target <= 50 ms)")
    out.update(unet_step_ms=1000 * step, hsmix_share_of_step=share, pair_3d_ms=1000 * t3 / 2)
    ref_images, ref_labels = images2.cpu(), labels2.cpu()
    t_ref = best_time(_whole(_mix("reference", SETTINGS_2D), ref_images, ref_labels), torch.device("cpu"), 1)
    print(
        f"reference backend (CPU) on the 2D batch: {1000 * t_ref / 8:.2f} ms per pair; the {device} torch backend is "
        f"{t_ref / t2:.1f}x faster"
    )
    out["reference_2d_ms_per_pair"] = 1000 * t_ref / 8
    if device.type == "cuda":
        sync_sites(images2, labels2, SETTINGS_2D, out, "2D")
        sync_sites(images3, labels3, SETTINGS_3D, out, "3D")
        kernel_profile(images2, labels2, SETTINGS_2D, out, "2D")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

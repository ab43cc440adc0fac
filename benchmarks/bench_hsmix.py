"""Whole-HSMix cost: RandHSMix with the reference backends against the torch backends.

Times ``RandHSMix(backend="reference")`` and ``RandHSMix(backend="torch")`` on the same batches
with the same random draws and prints milliseconds per pair (every image of the batch is the
``X1`` of one pair; the best of 3 interleaved rounds of 10 calls per backend), the speed-up and
the extra peak memory relative to the input batch (measured in a fresh process). With
CUDA it also relates HSMix to one MONAI UNet training step on an (8, 4, 224, 224) batch.

    python benchmarks/bench_hsmix.py                 # CPU: 2D on 1 and 2 threads, then 3D
    python benchmarks/bench_hsmix.py --quick         # small 3D volume, fewer repeats
    python benchmarks/bench_hsmix.py --busy          # plus 1 thread beside a busy second process
    python benchmarks/bench_hsmix.py --device cuda   # plus the UNet comparison
"""

from __future__ import annotations

import sys

import cv2
import torch

from bench_common import (
    BusyProcess,
    parse_args,
    batch_2d,
    batch_3d,
    best_time,
    best_times,
    extra_peak_memory_fresh,
    host_note,
    load_note,
    mib,
)
from monai_hsmix.transforms import RandHSMix

# paper presets: synapse-like slices (200-400 segments, compactness 0.1), brats2018 volumes
SETTINGS_2D = dict(n_segments=(200, 400), compactness=0.1, p=0.3)
SETTINGS_3D = dict(n_segments=(50, 150), compactness=0.003, p=0.3)


def _mixer(backend: str, settings: dict) -> RandHSMix:
    mix = RandHSMix(num_classes=4, mode="both", backend=backend, **settings)
    return mix


def hsmix_call(backend: str, settings: dict, maker, shape, device: str, threads: int):
    """A call of HSMix on a fresh batch; module level so a fresh process can build it (memory)."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)  # the reference's OpenCV would otherwise use every core
    images, labels = maker(*shape)
    images, labels = images.to(device), labels.to(device)
    mix = _mixer(backend, settings)

    def call():
        mix.set_random_state(seed=0)  # the same draws for both backends
        return mix(images, labels)

    return call


def time_hsmix(name, maker, shape, settings, device, threads, repeats, backends=("reference", "torch")):
    images, _ = maker(*shape)
    pairs = images.shape[0]
    input_bytes = images.element_size() * images.numel()
    print(f"\n{name}, {threads} thread(s), device {device}, {load_note()}")
    # every timing before any memory run: a memory run spawns a process, which must not share
    # the cores with a timing
    seconds = best_times(
        {b: hsmix_call(b, settings, maker, shape, str(device), threads) for b in backends}, device, repeats
    )
    for backend in backends:
        extra = extra_peak_memory_fresh(
            hsmix_call, backend, settings, maker, shape, str(device), threads, device=device
        )
        ratio = "" if extra is None else f" ({extra / input_bytes:.1f}x the input)"
        print(f"  {backend:9s} {1000 * seconds[backend] / pairs:9.2f} ms/pair   extra peak {mib(extra)}{ratio}")
    if len(seconds) == 2:
        print(f"  speed-up torch vs reference: {seconds['reference'] / seconds['torch']:.1f}x")
    return seconds


def busy_vs_idle(repeats: int) -> None:
    """The (4, 4, 224, 224) 1-thread case idle and with a busy second process, interleaved."""
    shape, backends = (4, 4, 224), ("reference", "torch")
    calls = {b: hsmix_call(b, SETTINGS_2D, batch_2d, shape, "cpu", 1) for b in backends}
    idle, busy = {b: float("inf") for b in backends}, {b: float("inf") for b in backends}
    for _ in range(3):  # rounds: idle and busy spells meet the machine's same drifts
        for b in backends:
            idle[b] = min(idle[b], best_time(calls[b], torch.device("cpu"), repeats))
        with BusyProcess():
            for b in backends:
                busy[b] = min(busy[b], best_time(calls[b], torch.device("cpu"), repeats))
    print(f"\n2D B4 C4 224, 1 thread, idle against one busy single-threaded process on the other core ({load_note()})")
    for b in backends:
        print(f"  {b:9s} {250 * idle[b]:9.2f} -> {250 * busy[b]:9.2f} ms/pair   slowdown {busy[b] / idle[b]:.2f}x")
    print(f"  speed-up torch vs reference with the busy process: {busy['reference'] / busy['torch']:.1f}x")


def unet_fraction(device: torch.device, repeats: int) -> None:
    """HSMix (torch backend) time as a fraction of one UNet forward + backward + step."""
    from monai.networks.nets import UNet

    net = UNet(
        spatial_dims=2,
        in_channels=4,
        out_channels=4,
        channels=(32, 64, 128, 256, 512),
        strides=(2, 2, 2, 2),
        num_res_units=2,
    ).to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = batch_2d(8, 4, 224)
    images, labels = images.to(device), labels.to(device)
    mix = _mixer("torch", SETTINGS_2D)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(images), labels[:, 0])
        loss.backward()
        opt.step()

    def hsmix():
        mix.set_random_state(seed=0)
        return mix(images, labels)

    t_step = best_time(step, device, repeats)
    t_mix = best_time(hsmix, device, repeats)
    print(
        f"\nUNet step (8, 4, 224, 224) on {device}: {1000 * t_step:.2f} ms; "
        f"HSMix on the same batch: {1000 * t_mix:.2f} ms ({100 * t_mix / t_step:.1f}% of a step)"
    )


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    device = torch.device(args.device)
    repeats = 2 if args.quick else 10
    print(host_note())
    thread_counts = (1, 2) if device.type == "cpu" else (torch.get_num_threads(),)
    for threads in thread_counts:
        for channels in (4, 1):
            time_hsmix(f"2D B4 C{channels} 224", batch_2d, (4, channels, 224), SETTINGS_2D, device, threads, repeats)
    if args.busy and device.type == "cpu":
        busy_vs_idle(repeats)
    if not args.no_3d:
        size = 64 if args.quick else 128
        time_hsmix(f"3D B2 C4 {size}^3", batch_3d, (2, 4, size), SETTINGS_3D, device, args.threads_3d, 1)
    if device.type == "cuda":
        unet_fraction(device, repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())

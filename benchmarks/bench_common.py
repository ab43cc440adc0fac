"""Shared pieces of the benchmark scripts: test batches, timing and peak-memory measurement."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

# benchmark the checkout these scripts live in, whatever is installed in the environment
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monai_hsmix.data.sample_images import cardiac_batch, cardiac_volume  # noqa: E402


def modalities(image: np.ndarray, channels: int) -> np.ndarray:
    """``(B, 1, ...)`` phantom -> ``(B, channels, ...)`` with differently contrasted copies, like MRI sequences."""
    maps = [image, image**2, np.sqrt(image), 1.0 - image]
    return np.concatenate(maps[:channels], axis=1).astype(np.float32)


def batch_2d(batch: int, channels: int, size: int, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    images, labels = cardiac_batch(batch, size, seed)
    return torch.from_numpy(modalities(images, channels)), torch.from_numpy(labels)


def batch_3d(batch: int, channels: int, size: int, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    pairs = [cardiac_volume(size, size, seed + i) for i in range(batch)]
    images = np.stack([p[0] for p in pairs])
    labels = np.stack([p[1] for p in pairs])
    return torch.from_numpy(modalities(images, channels)), torch.from_numpy(labels)


def host_note() -> str:
    """Where a benchmark ran: CPU model, cache sizes, torch's CPU capability and the load average.

    Machines of one kind differ (the same 2-core AMD EPYC kind has hosts with 8 and with 32 MiB of
    L3, and timings differed 4x between them), so every figure is printed with this line.
    """
    cpu, caches = "unknown CPU", []
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        cpu = fields.get("Model name", cpu).strip()
        caches = [f"{name} {fields[name].strip()}" for name in ("L1d cache", "L2 cache", "L3 cache") if name in fields]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        capability = "unknown"
    gpu = f"; GPU {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})" if torch.cuda.is_available() else ""
    caches_note = ", ".join(caches) or "caches unknown"
    return f"host: {cpu}; {caches_note}; torch {torch.__version__} CPU capability {capability}{gpu}; {load_note()}"


class BusyProcess:
    """A second single-threaded process that keeps one core busy (matrix products), while in use.

    What a training job's data-loader worker or another user's job does to a benchmark on a
    2-core machine: it competes for the shared caches and memory bandwidth, not for the core.
    """

    _LOOP = "import numpy as np\na = np.random.rand(600, 600)\nwhile True:\n    a = a @ a; a /= a.max()\n"

    def __enter__(self) -> "BusyProcess":
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-c", self._LOOP], env=env)
        time.sleep(1.0)  # let it start spinning
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()


def load_note() -> str:
    """The 1-minute load average against the core count: timings on a shared machine need it."""
    try:
        one, _, _ = os.getloadavg()
        return f"load average {one:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeats: int, warm_up: bool = True) -> float:
    """Smallest wall time of ``repeats`` calls after one warm-up call (seconds).

    The allocator keeps glibc's adaptive defaults, as in a training process: fixing the mmap
    threshold (as an earlier version did, at 32 MiB) also freezes the trim threshold at 128 KiB,
    so freed heap tops go back to the OS and every call pays their page faults again (8% slower
    here).
    """
    if warm_up:
        fn()
        _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def best_times(
    fns: Dict[str, Callable[[], object]], device: torch.device, repeats: int, rounds: int = 3
) -> Dict[str, float]:
    """:func:`best_time` of several calls, interleaved: ``rounds`` rounds of ``repeats`` calls each.

    On a shared machine the speed drifts over seconds to minutes (by up to 20% here); timing every
    call in each round lets all of them meet the machine's good and bad spells, so their ratio
    does not depend on which ran first.
    """
    best = {name: float("inf") for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, device, repeats, warm_up=r == 0))
    return best


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RssSampler:
    """Peak resident memory of this process while a call runs, sampled every millisecond."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __enter__(self) -> "_RssSampler":
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _mmap_threshold(nbytes: int) -> None:
    """Set glibc's mmap threshold (allocations above it get their own mapping, freed to the OS).

    Memory runs use a low one so the sampled RSS follows live memory instead of everything the
    heap has kept; timing runs leave glibc's adaptive default alone.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS, so that reused memory shows up in the RSS again."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def extra_peak_memory(fn: Callable[[], object], device: torch.device) -> Optional[int]:
    """Bytes the call needs above what was allocated before it (CUDA allocator or process RSS).

    On the CPU this samples the resident set size every millisecond, with glibc serving large
    blocks by mmap and freed heap pages handed back first: it counts every allocator (torch,
    numpy, OpenCV); peaks shorter than a millisecond can be missed.
    """
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    if not os.path.exists("/proc/self/statm"):
        return None
    _mmap_threshold(128 * 2**10)
    _release_free_heap()
    with _RssSampler() as sampler:
        before = sampler.peak
        fn()
    return max(sampler.peak - before, 0)


def extra_peak_memory_fresh(factory: Callable[..., Callable[[], object]], *args, device: torch.device) -> Optional[int]:
    """:func:`extra_peak_memory` of ``factory(*args)()``, on the CPU in a fresh interpreter.

    The resident set size depends on what the heap already holds: once glibc has raised its mmap
    threshold (it does after the first large free), freed temporaries stay in a fragmented heap
    and the same call measured 30-50% more. A spawned
    process serves every block of 128 KiB or more by mmap from the start (so the RSS follows the
    live arrays, as CUDA's allocator statistics do), builds the call from ``factory`` (a
    module-level function, so it can be pickled), makes it once to load libraries and caches,
    and measures the second call. CUDA allocator statistics are exact, so CUDA stays in process.
    """
    if device.type == "cuda":
        fn = factory(*args)
        fn()
        return extra_peak_memory(fn, device)
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_fresh, (factory, args, str(device)))


def _measure_fresh(factory, args, device: str) -> Optional[int]:
    _mmap_threshold(128 * 2**10)
    fn = factory(*args)
    fn()
    return extra_peak_memory(fn, torch.device(device))


def mib(nbytes: Optional[int]) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:.1f} MiB"


def parse_args(description: str, argv=None) -> argparse.Namespace:
    """Command line shared by the benchmark scripts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="torch device of the batches (default cpu)")
    parser.add_argument("--quick", action="store_true", help="small 3D volume and fewer repeats")
    parser.add_argument("--no-3d", action="store_true", help="skip the 3D configuration")
    parser.add_argument("--threads-3d", type=int, default=1, help="torch/OpenCV threads for the 3D run (default 1)")
    parser.add_argument("--busy", action="store_true", help="also time the 1-thread 2D case with a busy second process")
    return parser.parse_args(argv)

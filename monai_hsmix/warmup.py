"""Compile the numba kernels into numba's on-disk cache now, so the first HSMix call does not wait.

On a CPU, HSMix runs kernels compiled by numba on first use (SLIC, saliency, the label blends and
segment means). numba caches them on disk, so only the first process of an install compiles; that
first call otherwise takes tens of seconds (figures in ``docs/performance.md``). ``make install``
runs this module; after a plain ``pip install`` run it once::

    python -m monai_hsmix.warmup

It mixes a small 2D batch with every CPU kernel (``engine="numba"``), in float32 and float64: the
kernels take one dtype each at their boundary (float32 features, saliency levels and label blends,
int64 labels; the segment means take float32 or float64), so this compiles the versions every later
call uses, 2D or 3D, whatever the input dtype (half precision goes through torch operations). It
compiles into the cache the running process would use: set ``NUMBA_CACHE_DIR`` the same way as for
training if you set it at all.
"""

from __future__ import annotations

import argparse
import time
from typing import Optional, Sequence

__all__ = ["warm_up"]


def warm_up() -> float:
    """Run every CPU kernel once on a small batch; returns the seconds it took."""
    import torch

    from monai_hsmix.transforms import RandHSMix

    start = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (2, 1, 24, 24), generator=g)
    # float64 images add only the float64 segment means (saliency is float32 whatever the input)
    for dtype in (torch.float32, torch.float64):
        images = torch.rand(2, 1, 24, 24, generator=g, dtype=dtype)
        mix = RandHSMix(
            num_classes=3, n_segments=(4, 6), compactness=0.1, mode="both", engine="numba"
        ).set_random_state(0)
        images_out, labels_out = mix(images, labels)
        if images_out.shape[0] != 4 or not bool(torch.isfinite(images_out).all()) or labels_out.shape[1] != 3:
            raise RuntimeError("the warm-up batch did not mix as expected")
    return time.perf_counter() - start


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monai_hsmix.warmup", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    import numba

    seconds = warm_up()
    where = numba.config.CACHE_DIR or "next to the package's modules (numba's default)"
    print(f"monai_hsmix: numba kernels compiled and cached in {seconds:.1f} s ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

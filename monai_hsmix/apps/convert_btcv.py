"""Convert raw BTCV NIfTI scans to TransUNet's Synapse layout.

``python -m monai_hsmix.apps.convert_btcv --raw-dir /data/BTCV --out /data/Synapse``

``--raw-dir`` holds ``RawData/Training/{img,label}/{img,label}XXXX.nii.gz``. CT is clipped to
[-125, 275] HU and scaled to [0, 1]; BTCV's 13 labels map to Synapse's 8 organs; TransUNet's 18
training cases become ``train_npz`` slices and its 12 test cases ``test_vol_h5`` volumes.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from monai_hsmix.data.synapse import SYNAPSE_TEST_CASES, SYNAPSE_TRAIN_CASES, convert_btcv

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.convert_btcv",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--raw-dir", required=True, help="BTCV root (with RawData/Training) or the Training folder")
    parser.add_argument("--out", required=True, help="output root of the Synapse layout")
    parser.add_argument("--train-cases", type=int, nargs="*", default=list(SYNAPSE_TRAIN_CASES))
    parser.add_argument("--test-cases", type=int, nargs="*", default=list(SYNAPSE_TEST_CASES))
    args = parser.parse_args(argv)
    counts = convert_btcv(args.raw_dir, args.out, args.train_cases, args.test_cases)
    print(f"wrote {counts['train_slices']} training slices and {counts['test_volumes']} test volumes to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

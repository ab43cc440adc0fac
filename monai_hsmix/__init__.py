"""monai_hsmix: HSMix, Soft-CP and InsMix mixing augmentations as MONAI transforms and bundles."""

__version__ = "0.1.0"

from monai_hsmix.engines import BatchTransformCollate, BatchTransformPrepareBatch, HSMixCollate, HSMixPrepareBatch  # noqa: E402
from monai_hsmix.transforms import (  # noqa: E402
    HSMIX_PRESETS,
    RandHSMix,
    RandHSMixd,
    RandHSMixD,
    RandHSMixDict,
    RandInsMix,
    RandInsMixd,
    RandInsMixD,
    RandInsMixDict,
    RandSoftCopyPaste,
    RandSoftCopyPasted,
    RandSoftCopyPasteD,
    RandSoftCopyPasteDict,
)

__all__ = [
    "BatchTransformCollate",
    "BatchTransformPrepareBatch",
    "HSMIX_PRESETS",
    "HSMixCollate",
    "HSMixPrepareBatch",
    "RandHSMix",
    "RandHSMixD",
    "RandHSMixDict",
    "RandHSMixd",
    "RandInsMix",
    "RandInsMixD",
    "RandInsMixDict",
    "RandInsMixd",
    "RandSoftCopyPaste",
    "RandSoftCopyPasteD",
    "RandSoftCopyPasteDict",
    "RandSoftCopyPasted",
    "__version__",
]

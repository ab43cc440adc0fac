"""MONAI transforms of this package (array and dictionary versions)."""

from monai_hsmix.transforms.hsmix import RandHSMix, RandHSMixd, RandHSMixD, RandHSMixDict
from monai_hsmix.transforms.insmix import RandInsMix, RandInsMixd, RandInsMixD, RandInsMixDict
from monai_hsmix.transforms.hsmix_presets import HSMIX_PRESETS, HSMixPreset, get_preset
from monai_hsmix.transforms.soft_copy_paste import (
    RandSoftCopyPaste,
    RandSoftCopyPasted,
    RandSoftCopyPasteD,
    RandSoftCopyPasteDict,
    object_augmentation,
    soft_copy_paste,
)

__all__ = [
    "HSMIX_PRESETS",
    "HSMixPreset",
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
    "get_preset",
    "object_augmentation",
    "soft_copy_paste",
]

"""MONAI transforms of this package."""

from monai_hsmix.transforms.hsmix import RandHSMix, RandHSMixd, RandHSMixD, RandHSMixDict
from monai_hsmix.transforms.hsmix_presets import HSMIX_PRESETS, HSMixPreset, get_preset

__all__ = ["HSMIX_PRESETS", "HSMixPreset", "RandHSMix", "RandHSMixD", "RandHSMixDict", "RandHSMixd", "get_preset"]

"""HSMix settings per dataset from the paper's Table 9."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

__all__ = ["get_preset", "HSMIX_PRESETS", "HSMixPreset"]


@dataclass(frozen=True)
class HSMixPreset:
    """Superpixel count range ``U(lmin, lmax)``, SLIC compactness, selection probability ``p``, and
    the feature space the compactness is meant in.

    The paper ran scikit-image's ``slic``, which converts colour images to CIELAB (0-100) and leaves
    intensity images in ``[0, 1]``: a compactness of 10 on Lab colours is about as regular as 0.1
    on intensities. The RGB datasets (GlaS, MoNuSeg, ISIC 2017) therefore use ``"lab"``, the CT and
    MRI ones ``"intensity"``.
    """

    n_segments: Tuple[int, int]
    compactness: float
    p: float
    slic_space: str

    def as_kwargs(self) -> Dict[str, object]:
        return asdict(self)


HSMIX_PRESETS: Dict[str, HSMixPreset] = {
    "glas": HSMixPreset(n_segments=(200, 400), compactness=10.0, p=0.3, slic_space="lab"),
    "monuseg": HSMixPreset(n_segments=(300, 500), compactness=10.0, p=0.3, slic_space="lab"),
    "isic2017": HSMixPreset(n_segments=(30, 80), compactness=10.0, p=0.3, slic_space="lab"),
    "brats2018": HSMixPreset(n_segments=(50, 150), compactness=0.003, p=0.3, slic_space="intensity"),
    "synapse": HSMixPreset(n_segments=(200, 400), compactness=0.1, p=0.3, slic_space="intensity"),
}


def get_preset(name: str) -> HSMixPreset:
    """Look up a preset by (case-insensitive) name, with an error listing the known ones."""
    key = name.lower() if isinstance(name, str) else None
    if key not in HSMIX_PRESETS:
        raise ValueError(f"unknown HSMix preset {name!r}; known presets: {sorted(HSMIX_PRESETS)}")
    return HSMIX_PRESETS[key]

"""HSMix settings per dataset from the paper's Table 9."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class HSMixPreset:
    """Superpixel count range ``U(lmin, lmax)``, SLIC compactness and selection probability ``p``."""

    n_segments: Tuple[int, int]
    compactness: float
    p: float

    def as_kwargs(self) -> Dict[str, object]:
        return asdict(self)


HSMIX_PRESETS: Dict[str, HSMixPreset] = {
    "glas": HSMixPreset(n_segments=(200, 400), compactness=10.0, p=0.3),
    "monuseg": HSMixPreset(n_segments=(300, 500), compactness=10.0, p=0.3),
    "isic2017": HSMixPreset(n_segments=(30, 80), compactness=10.0, p=0.3),
    "brats2018": HSMixPreset(n_segments=(50, 150), compactness=0.003, p=0.3),
    "synapse": HSMixPreset(n_segments=(200, 400), compactness=0.1, p=0.3),
}


def get_preset(name: str) -> HSMixPreset:
    """Look up a preset by (case-insensitive) name, with an error listing the known ones."""
    key = name.lower()
    if key not in HSMIX_PRESETS:
        raise ValueError(f"unknown HSMix preset {name!r}; known presets: {sorted(HSMIX_PRESETS)}")
    return HSMIX_PRESETS[key]

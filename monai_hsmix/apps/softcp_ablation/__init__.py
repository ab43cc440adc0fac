"""Soft-CP ablation on 2D slices of few training cases (run it with ``python -m monai_hsmix.apps.softcp_ablation``).

- :mod:`~monai_hsmix.apps.softcp_ablation.data`: cases, brain slices, the lesion-pasting sampler;
- :mod:`~monai_hsmix.apps.softcp_ablation.cli`: the arms and the command line (runner, resume, settings check
  and report shared with :mod:`monai_hsmix.apps.ablation`).
"""

from monai_hsmix.apps.softcp_ablation.cli import SOFTCP_ARMS, SoftCPAblationConfig, main, run

__all__ = ["SOFTCP_ARMS", "SoftCPAblationConfig", "main", "run"]

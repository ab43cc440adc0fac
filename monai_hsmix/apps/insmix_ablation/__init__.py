"""InsMix ablation on instance-annotated tiles (run it with ``python -m monai_hsmix.apps.insmix_ablation``).

- :mod:`~monai_hsmix.apps.insmix_ablation.data`: tiles, InsMix crops as three-class targets, instance evaluation;
- :mod:`~monai_hsmix.apps.insmix_ablation.report`: AJI / object Dice / pixel DSC tables with paired intervals;
- :mod:`~monai_hsmix.apps.insmix_ablation.cli`: the arms and the command line (runner, resume and settings
  check shared with :mod:`monai_hsmix.apps.ablation` through :mod:`monai_hsmix.apps.mix_sweep`).
"""

from monai_hsmix.apps.insmix_ablation.cli import INSMIX_ARMS, InsMixAblationConfig, main, run

__all__ = ["INSMIX_ARMS", "InsMixAblationConfig", "main", "run"]

"""Ablation of mixing augmentations on a Decathlon-layout dataset (run it with ``python -m monai_hsmix.apps.ablation``).

- :mod:`~monai_hsmix.apps.ablation.data2d`: patient-wise split, volumes, 2D slices;
- :mod:`~monai_hsmix.apps.ablation.augment`: the flip/rotation every arm shares;
- :mod:`~monai_hsmix.apps.ablation.arms`: the arms (none, MONAI MixUp/CutMix, HSMix variants);
- :mod:`~monai_hsmix.apps.ablation.train2d`: one run (train, then evaluate);
- :mod:`~monai_hsmix.apps.ablation.evaluate`: per-volume DSC, Jaccard, HD95;
- :mod:`~monai_hsmix.apps.ablation.report`: Markdown tables and plot over seeds.
"""

from monai_hsmix.apps.ablation.cli import AblationConfig, main, run

__all__ = ["AblationConfig", "main", "run"]

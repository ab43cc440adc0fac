"""Ablation of mixing augmentations on a Decathlon-layout dataset (run it with ``python -m monai_hsmix.apps.ablation``).

- :mod:`~monai_hsmix.experiments.data2d`: patient-wise split, volumes, 2D slices;
- :mod:`~monai_hsmix.experiments.augment`: the flip/rotation every arm shares;
- :mod:`~monai_hsmix.experiments.arms`: the arms (none, MONAI MixUp/CutMix, HSMix variants);
- :mod:`~monai_hsmix.experiments.train2d`: one run (train, then evaluate);
- :mod:`~monai_hsmix.experiments.evaluate`: per-volume DSC, Jaccard, HD95;
- :mod:`~monai_hsmix.experiments.report`: Markdown tables and plot over seeds.
"""

"""What runs around MONAI's engines (``SupervisedTrainer``, ``SupervisedEvaluator``) and DataLoaders.

- :mod:`~monai_hsmix.engines.batch_transform`: apply a batch transform (e.g. ``RandHSMixd``) in a
  DataLoader's ``collate_fn`` or a trainer's ``prepare_batch``;
- :mod:`~monai_hsmix.engines.checkpoint`: atomic, settings-checked training checkpoints that resume;
- :mod:`~monai_hsmix.engines.run_settings`: comparing the settings of a rerun with the saved ones;
- :mod:`~monai_hsmix.engines.reporting`: iteration-log filters, progress bars, HD95 in mm, per-class reports;
- :mod:`~monai_hsmix.engines.threads`: CPU thread counts chosen on purpose.

Only the batch-transform classes are imported here: the others need ignite (the bundles' stack).
"""

from monai_hsmix.engines.batch_transform import (
    BatchTransformCollate,
    BatchTransformPrepareBatch,
    HSMixCollate,
    HSMixPrepareBatch,
)

__all__ = ["BatchTransformCollate", "BatchTransformPrepareBatch", "HSMixCollate", "HSMixPrepareBatch"]

"""Data-side helpers: applying batch transforms in training, and built-in sample images."""

from monai_hsmix.data.batch_mixing import HSMixCollate, HSMixPrepareBatch
from monai_hsmix.data.sample_images import cardiac_batch, cardiac_phantom, cardiac_volume

__all__ = ["HSMixCollate", "HSMixPrepareBatch", "cardiac_batch", "cardiac_phantom", "cardiac_volume"]

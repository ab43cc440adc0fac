"""Datasets, readers and built-in sample images."""

from monai_hsmix.data.sample_images import cardiac_batch, cardiac_phantom, cardiac_volume

__all__ = ["cardiac_batch", "cardiac_phantom", "cardiac_volume"]

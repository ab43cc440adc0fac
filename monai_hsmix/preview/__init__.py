"""Preview figures: ``python -m monai_hsmix.preview {hsmix,softcp,insmix} ...`` writes a PNG grid."""

__all__ = []

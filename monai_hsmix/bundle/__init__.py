"""Support for the MONAI bundles in ``bundles/``: finding them, reading their output, readable config errors.

Kept free of imports so that a bundle config's ``$import monai_hsmix.bundle.errors`` stays cheap.
"""

__all__ = []

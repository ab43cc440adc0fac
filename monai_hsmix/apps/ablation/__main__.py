"""``python -m monai_hsmix.apps.ablation``: see :mod:`monai_hsmix.apps.ablation.cli`."""

from monai_hsmix.apps.ablation.cli import main

__all__ = []

if __name__ == "__main__":
    raise SystemExit(main())

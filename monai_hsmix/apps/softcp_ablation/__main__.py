"""``python -m monai_hsmix.apps.softcp_ablation``: see :mod:`monai_hsmix.apps.softcp_ablation.cli`."""

from monai_hsmix.apps.softcp_ablation.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

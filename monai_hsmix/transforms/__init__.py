"""MONAI array and dictionary transforms."""

"""MONAI transforms (array and dictionary) for the mixing augmentations."""

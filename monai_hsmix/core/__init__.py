"""Pure functional code on arrays and tensors (no MONAI transform state)."""

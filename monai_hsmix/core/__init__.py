"""Pure functional code on tensors: masks, placement and blending used by the MONAI transforms."""

"""The MONAI metric warnings are quiet inside the block only, and only those."""

from __future__ import annotations

import warnings

from monai_hsmix.metrics.known_warnings import quiet_monai_metric_warnings

MONAI_ONES = (
    ("the ground truth of class 3 is all 0, this may result in nan/inf distance.", UserWarning),
    ("monai.metrics.utils get_mask_edges:always_return_as_numpy: Argument ... deprecated", FutureWarning),
)


def _shown(block) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        block()
    return [str(w.message) for w in caught]


def test_inside_the_block_only_monais_are_quiet():
    def inside():
        with quiet_monai_metric_warnings():
            for message, category in MONAI_ONES:
                warnings.warn(message, category)
            warnings.warn("the prediction of class 3 looks odd", UserWarning)  # not MONAI's wording

    assert _shown(inside) == ["the prediction of class 3 looks odd"]


def test_after_the_block_the_filters_are_as_before():
    def after():
        with quiet_monai_metric_warnings():
            pass
        for message, category in MONAI_ONES:
            warnings.warn(message, category)

    assert _shown(after) == [message for message, _ in MONAI_ONES]

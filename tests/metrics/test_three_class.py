"""Three-class targets from instance maps and instances back from (predicted) interiors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monai_hsmix.metrics import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    aggregated_jaccard_index,
    instances_from_interior,
    instances_from_probabilities,
    instances_to_three_class,
)


def _touching_pair():
    inst = np.zeros((12, 16), dtype=np.int32)
    inst[2:9, 2:8] = 1
    inst[2:9, 8:14] = 4  # touches nucleus 1 along a whole side
    return inst


def test_three_class_target_by_hand():
    t = instances_to_three_class(_touching_pair())
    assert t.dtype == np.uint8
    assert (t[_touching_pair() == 0] == BACKGROUND).all()
    # the outer ring of each 7x6 box and the shared side are boundary; the rest interior
    assert (t[2, 2:14] == BOUNDARY).all() and (t[2:9, 7] == BOUNDARY).all() and (t[2:9, 8] == BOUNDARY).all()
    assert (t[3:8, 3:7] == INTERIOR).all() and (t[3:8, 9:13] == INTERIOR).all()
    assert int((t == INTERIOR).sum()) == 2 * 5 * 4


def test_wider_boundary_stays_inside_the_nuclei():
    inst = _touching_pair()
    t = instances_to_three_class(inst, boundary_width=2)
    assert (t[inst == 0] == BACKGROUND).all()
    assert int((t == INTERIOR).sum()) == 2 * 3 * 2
    with pytest.raises(ValueError, match="boundary_width"):
        instances_to_three_class(inst, boundary_width=0)


def test_round_trip_separates_touching_nuclei():
    inst = _touching_pair()
    t = instances_to_three_class(inst)
    # connected components of the foreground would merge them; the interior seeds do not
    back = instances_from_interior(t == INTERIOR, t != BACKGROUND)
    assert len(np.unique(back)) - 1 == 2
    assert aggregated_jaccard_index(inst, back) == 1.0
    # without the foreground only the interiors come back
    cores = instances_from_interior(t == INTERIOR)
    assert aggregated_jaccard_index(inst, cores) == pytest.approx(40 / 84)


def test_orphan_foreground_and_small_objects():
    interior = np.zeros((10, 10), bool)
    interior[1:4, 1:4] = True
    foreground = interior.copy()
    foreground[7:9, 7:9] = True  # a boundary-only blob with no seed: still a nucleus
    out = instances_from_interior(interior, foreground)
    assert len(np.unique(out)) == 3
    assert len(np.unique(instances_from_interior(interior, foreground, min_size=5))) == 2


def test_from_probabilities():
    inst = _touching_pair()
    t = instances_to_three_class(inst)
    probs = np.eye(3)[t].transpose(2, 0, 1) * 0.8 + 0.2 / 3
    out = instances_from_probabilities(probs, min_seed_size=1, min_size=1)
    assert aggregated_jaccard_index(inst, out) == 1.0
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        instances_from_probabilities(probs[:2])
    with pytest.raises(ValueError, match="NaN"):
        instances_from_probabilities(probs * np.nan)


def _box_map(boxes):
    inst = np.zeros((24, 24), dtype=np.int32)
    for ident, (r, c, h, w) in enumerate(boxes, start=1):
        region = inst[r : r + h, c : c + w]
        region[region == 0] = ident  # earlier boxes win where they overlap, like the rasterised polygons
    return inst


boxes = st.lists(st.tuples(st.integers(0, 18), st.integers(0, 18), st.integers(3, 6), st.integers(3, 6)), max_size=5)


@settings(max_examples=60, deadline=None)
@given(boxes)
def test_round_trip_recovers_convex_nuclei(bs):
    inst = _box_map(bs)
    # overlapping boxes leave non-convex remnants that may lose their interior: keep the maps of disjoint boxes
    ids = [i for i in np.unique(inst) if i]
    assume(all((inst == i).sum() == bs[i - 1][2] * bs[i - 1][3] for i in ids))
    t = instances_to_three_class(inst)
    back = instances_from_interior(t == INTERIOR, t != BACKGROUND)
    assert aggregated_jaccard_index(inst, back) == 1.0

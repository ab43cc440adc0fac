import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_hsmix.core import random_derangement


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 2**31 - 1))
def test_derangement_is_a_permutation_without_fixed_points(n, seed):
    perm = random_derangement(n, np.random.RandomState(seed))
    assert sorted(perm.tolist()) == list(range(n))
    assert not np.any(perm == np.arange(n))


def test_derangement_reaches_every_derangement_of_three():
    rng = np.random.RandomState(0)
    seen = {tuple(random_derangement(3, rng)) for _ in range(200)}
    assert seen == {(1, 2, 0), (2, 0, 1)}


def test_derangement_needs_two_elements():
    with pytest.raises(ValueError, match="at least 2"):
        random_derangement(1, np.random.RandomState(0))

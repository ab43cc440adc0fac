"""Paired differences: mean, Student-t interval and sign count on inputs whose answer is known."""

from __future__ import annotations

import math

import pytest

from monai_hsmix.apps.ablation.stats import pair, paired_difference, runs_needed


def test_interval_of_known_differences():
    # mean 3, sd sqrt(2.5); t(0.975, 4) = 2.7764451
    d = paired_difference([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert d.mean == pytest.approx(3.0) and d.sd == pytest.approx(math.sqrt(2.5))
    assert d.lo == pytest.approx(3.0 - half, abs=1e-6) and d.hi == pytest.approx(3.0 + half, abs=1e-6)
    assert d.n == 5 and d.positive == 5


def test_interval_covers_zero_when_signs_disagree_and_counts_positives():
    d = paired_difference([0.02, -0.01, 0.01, -0.02])
    assert d.lo < 0 < d.hi and d.positive == 2
    assert d.format() == f"+0.00 [{100 * d.lo:+.2f}, {100 * d.hi:+.2f}] (2/4 up)"


def test_one_pair_has_no_interval_and_bad_input_is_refused():
    d = paired_difference([0.5])
    assert math.isnan(d.lo) and "no interval" in d.format()
    with pytest.raises(ValueError, match="finite and non-empty"):
        paired_difference([])
    with pytest.raises(ValueError, match="finite and non-empty"):
        paired_difference([0.1, float("nan")])


def test_pairs_only_matching_keys():
    arm = {(0, 0): 0.7, (0, 1): 0.8, (1, 0): 0.9}
    ref = {(0, 0): 0.6, (0, 1): 0.7}
    d = pair(arm, ref)
    assert d.n == 2 and d.mean == pytest.approx(0.1)
    assert pair(arm, {(5, 5): 0.1}) is None


def test_runs_needed_is_the_smallest_n_that_reaches_the_half_width():
    from scipy import stats

    n = runs_needed(sd=1.5, half_width=1.0)

    assert stats.t.ppf(0.975, n - 1) * 1.5 / math.sqrt(n) <= 1.0 < stats.t.ppf(0.975, n - 2) * 1.5 / math.sqrt(n - 1)


def test_interval_is_the_hand_written_student_t_on_random_differences():
    # scipy's ttest_1samp(...).confidence_interval replaced mean +- t * sd / sqrt(n): the same numbers
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 40):
        d = rng.normal(0.01, 0.03, size=n)
        half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
        got = paired_difference(d.tolist())
        assert got.lo == pytest.approx(d.mean() - half, rel=1e-12)
        assert got.hi == pytest.approx(d.mean() + half, rel=1e-12)
        assert got.sd == pytest.approx(d.std(ddof=1)) and got.n == n


def test_equal_differences_give_a_point_interval_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = paired_difference([0.01, 0.01, 0.01])
    assert d.lo == pytest.approx(0.01) and d.hi == pytest.approx(0.01) and d.sd == pytest.approx(0.0, abs=1e-15)

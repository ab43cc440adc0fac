"""Pairing of batch samples."""

from __future__ import annotations

import numpy as np

__all__ = ["random_derangement"]


def random_derangement(n: int, rng: np.random.RandomState, max_tries: int = 1000) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` with no fixed point.

    Rejection sampling accepts a permutation with probability about 1/e, so the expected number of
    draws is below 3; after ``max_tries`` a random cyclic shift (also fixed-point free) is returned
    so the call always terminates.

    Parameters
    ----------
    n : int
        Batch size, at least 2.
    rng : numpy.random.RandomState
        Source of randomness (a MONAI transform's ``self.R``).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 array ``perm`` with ``perm[i] != i`` for every ``i``.
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got n={n}")
    idx = np.arange(n)
    for _ in range(max_tries):
        perm = rng.permutation(n)
        if not np.any(perm == idx):
            return perm.astype(np.int64)
    shift = int(rng.randint(1, n))
    return np.roll(idx, shift).astype(np.int64)

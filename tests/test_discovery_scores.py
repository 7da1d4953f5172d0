"""DiscoveryScores: the property proposers keep scores for discovery answers only and read them by the
comparison's row numbers, as the full rows × measures matrix (NaN outside discovery) read before."""

from __future__ import annotations

import numpy as np

from lmdelta.proposers.properties import DiscoveryScores


def full_and_compact(n_rows: int, discovery: np.ndarray, measures: int, seed: int = 0):
    values = np.random.default_rng(seed).normal(size=(len(discovery), measures))
    full = np.full((n_rows, measures), np.nan)
    full[discovery] = values
    position = np.full(n_rows, -1, dtype=np.int64)
    position[discovery] = np.arange(len(discovery))
    return full, DiscoveryScores(position, values)


def test_any_rows_read_as_the_full_matrix_would():
    discovery = np.array([1, 4, 5, 8])
    full, compact = full_and_compact(10, discovery, 3)
    for rows in (discovery, np.array([0, 1, 2, 8, 4]), np.arange(10), np.array([], dtype=int), np.array([9, 9, 5])):
        np.testing.assert_array_equal(compact[rows], full[rows])


def test_no_discovery_answers_read_as_nan():
    full, compact = full_and_compact(4, np.array([], dtype=int), 2)
    np.testing.assert_array_equal(compact[np.array([0, 3])], full[np.array([0, 3])])
    assert compact[np.array([0, 3])].shape == (2, 2)

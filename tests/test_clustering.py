import numpy as np
import pytest

from lmdelta.clustering import balanced_kmeans


def test_sizes_are_balanced():
    points = np.random.default_rng(0).normal(size=(103, 5))
    labels = balanced_kmeans(points, 4, seed=0)
    assert sorted(np.bincount(labels)) == [25, 26, 26, 26]


def test_recovers_separated_equal_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    points = np.concatenate([c + rng.normal(scale=0.5, size=(20, 2)) for c in centres])
    labels = balanced_kmeans(points, 3, seed=0)
    for block in range(3):
        assert len(set(labels[block * 20 : (block + 1) * 20])) == 1
    assert len(set(labels)) == 3


def test_seeded_and_bounded():
    points = np.random.default_rng(2).normal(size=(40, 3))
    assert np.array_equal(balanced_kmeans(points, 5, seed=3), balanced_kmeans(points, 5, seed=3))
    with pytest.raises(ValueError):
        balanced_kmeans(points, 41, seed=0)

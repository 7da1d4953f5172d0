"""Past FIT_AT_MOST answers the cluster proposer fits k-means on a seeded sample and assigns the rest: the same
partition as a fit on every answer where the clusters are clear, the same labels at any smaller size as before."""

import numpy as np
import pytest

from lmdelta.proposers import clusters


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=n)
    centres = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    return centres[truth] + rng.normal(0.0, 0.5, size=(n, 3)), truth


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_a_sampled_fit_finds_the_clusters_a_full_fit_finds(monkeypatch):
    vectors, truth = _blobs(3000)
    full = clusters.cluster_labels(vectors, 3, seed=1, min_size=6)
    monkeypatch.setattr(clusters, "FIT_AT_MOST", 300)
    sampled = clusters.cluster_labels(vectors, 3, seed=1, min_size=6)
    assert _same_partition(full, truth) and _same_partition(sampled, truth)
    assert np.array_equal(sampled, clusters.cluster_labels(vectors, 3, seed=1, min_size=6))  # seeded
    weights = np.where(truth == 0, 0.2, 1.0)  # a later search round's weights
    assert _same_partition(clusters.cluster_labels(vectors, 3, seed=1, min_size=6, weights=weights), truth)


@pytest.mark.parametrize("n", [50, 400])
def test_at_or_below_the_bound_nothing_changes(n):
    from sklearn.cluster import KMeans

    vectors, _ = _blobs(n, seed=2)
    expected = KMeans(n_clusters=3, n_init=5, random_state=4).fit_predict(vectors)
    assert np.array_equal(clusters.cluster_labels(vectors, 3, seed=4, min_size=6), expected)


def test_a_sample_of_identical_answers_gives_no_clusters(monkeypatch):
    monkeypatch.setattr(clusters, "FIT_AT_MOST", 100)
    assert clusters.cluster_labels(np.zeros((500, 4)), 3, seed=0, min_size=6) is None

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


def test_distances_need_no_n_by_k_by_d_array_and_match_the_direct_ones():
    from lmdelta.clustering import _sq_distances

    rng = np.random.default_rng(4)
    points, centres = rng.normal(size=(50, 7)), rng.normal(size=(6, 7))
    direct = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    assert np.allclose(_sq_distances(points, centres), direct, rtol=1e-12, atol=1e-12)
    assert (_sq_distances(points, points[:3]) >= 0).all()  # rounding never makes a distance negative


def _blobs(per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(5, 8))
    truth = np.repeat(np.arange(5), per)
    return (centres[truth] + rng.normal(size=(5 * per, 8))).astype(np.float32), truth


@pytest.mark.parametrize("minibatch_from", [10**9, 100])
def test_response_clusters_recover_separated_answers_with_either_algorithm(monkeypatch, minibatch_from):
    """Below MINIBATCH_FROM answers exact k-means; from it on mini-batch k-means with block-wise labels."""
    from lmdelta.stages import group

    monkeypatch.setattr(group, "MINIBATCH_FROM", minibatch_from)
    monkeypatch.setattr(group, "LABEL_BLOCK", 37)  # labels assigned over several uneven blocks
    vectors, truth = _blobs(80, seed=5)
    labels = group.response_labels(vectors, 5, seed=0)
    assert labels.shape == truth.shape
    for cluster in range(5):  # each true cluster is one label, and labels differ between clusters
        assert len(set(labels[truth == cluster])) == 1
    assert len(set(labels)) == 5
    assert np.array_equal(labels, group.response_labels(vectors, 5, seed=0))  # seeded

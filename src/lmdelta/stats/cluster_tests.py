"""The test for unaligned corpora whose texts come in user-given clusters (a prompt, a conversation): whole clusters
swap sides, or, where a cluster holds both sides, labels are permuted within clusters (stats.tests' permutation)."""

from __future__ import annotations

import numpy as np

from lmdelta.stats.tests import (
    Alternative,
    TestResult,
    _as_extreme,
    _check_alternative,
    _check_resamples,
    _chunk_rows,
    _monte_carlo_p,
    _tolerance,
    within_prompt_permutation,
)


def cluster_permutation(
    scores, is_b, clusters, alternative: Alternative = "greater", n_resamples: int = 10_000, seed: int = 0
) -> TestResult:
    """Permutation test for unaligned corpora whose texts come in user-given clusters (e.g. prompts).

    If every cluster holds texts of one side only, whole clusters swap side labels (the number
    of b clusters kept) and T = mean(b texts) - mean(a texts): valid when clusters, not texts,
    are exchangeable between the sides. If any cluster mixes sides, the test is stratified
    instead: labels are permuted within each cluster, T is the mean within-cluster difference,
    and one-sided clusters are dropped because they carry no within-cluster contrast. The
    method string says which design was used; n_units counts the clusters used.
    """
    _check_alternative(alternative)
    _check_resamples(n_resamples)
    scores, is_b, ids = _cluster_arrays(scores, is_b, clusters)
    n_clusters = int(ids.max()) + 1 if ids.size else 0
    b_count = np.bincount(ids, weights=is_b.astype(float), minlength=n_clusters)
    size = np.bincount(ids, minlength=n_clusters).astype(float)
    mixed = (b_count > 0) & (b_count < size)
    if mixed.any():
        return _within_cluster(scores, is_b, ids, mixed, alternative, n_resamples, seed)
    return _whole_cluster(scores, ids, b_count > 0, size, alternative, n_resamples, seed)


def _cluster_arrays(scores, is_b, clusters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float).ravel()
    is_b = np.asarray(is_b, dtype=bool).ravel()
    clusters = np.asarray(clusters).ravel()
    if not scores.size == is_b.size == clusters.size:
        raise ValueError("scores, is_b and clusters must have the same length")
    keep = np.isfinite(scores)
    _, ids = np.unique(clusters[keep], return_inverse=True)
    return scores[keep], is_b[keep], ids.ravel()


def _whole_cluster(scores, ids, cluster_is_b, size, alternative, n_resamples, seed) -> TestResult:
    sums = np.bincount(ids, weights=scores, minlength=size.size)
    n_b = int(cluster_is_b.sum())
    method = f"cluster_permutation(whole clusters, monte carlo, R={int(n_resamples)})"
    if n_b == 0 or n_b == size.size:
        return TestResult(float("nan"), float("nan"), method, int(size.size), alternative)
    labels = cluster_is_b.astype(float)
    t_obs = float(_cluster_contrast(labels[None, :], sums, size)[0])
    rng = np.random.default_rng(seed)
    t_star = np.empty(int(n_resamples))
    step = _chunk_rows(size.size)
    for start in range(0, int(n_resamples), step):
        stop = min(int(n_resamples), start + step)
        keys = rng.random((stop - start, size.size))
        cut = np.partition(keys, n_b - 1, axis=1)[:, n_b - 1 : n_b]
        t_star[start:stop] = _cluster_contrast((keys <= cut).astype(float), sums, size)
    count = _as_extreme(t_star, t_obs, _tolerance(scores), alternative).sum()
    return TestResult(t_obs, float(_monte_carlo_p(count, int(n_resamples))), method, int(size.size), alternative)


def _cluster_contrast(labels: np.ndarray, sums: np.ndarray, size: np.ndarray) -> np.ndarray:
    """mean(b texts) - mean(a texts) for each row of 0/1 cluster labels."""
    sum_b, n_b = labels @ sums, labels @ size
    return sum_b / n_b - (sums.sum() - sum_b) / (size.sum() - n_b)


def _within_cluster(scores, is_b, ids, mixed, alternative, n_resamples, seed) -> TestResult:
    used = np.flatnonzero(mixed)
    scores_a = [scores[(ids == c) & ~is_b] for c in used]
    scores_b = [scores[(ids == c) & is_b] for c in used]
    result = within_prompt_permutation(scores_a, scores_b, alternative, n_resamples, seed)
    method = f"cluster_permutation(within clusters, {used.size} mixed clusters, monte carlo, R={int(n_resamples)})"
    return TestResult(result.statistic, result.p_value, method, result.n_units, alternative)

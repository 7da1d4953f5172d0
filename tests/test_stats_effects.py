"""Effect sizes: bootstrap coverage, AUC against a direct count, prompt-level bootstrap of the AUC
(against a brute-force reference, and in memory linear in the texts)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lmdelta.stats import effects as ef


def direct_auc(b, a):
    b, a = np.asarray(b, float), np.asarray(a, float)
    wins = (b[:, None] > a[None, :]).sum() + 0.5 * (b[:, None] == a[None, :]).sum()
    return wins / (a.size * b.size)


def test_bootstrap_mean_ci_covers_true_mean_near_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(200):
        d = rng.normal(0.3, 1.0, 40)
        mean, low, high = ef.bootstrap_mean_ci(d, n_resamples=2000, seed=rep)
        assert low <= mean <= high
        hits += low <= 0.3 <= high
    assert hits / 200 >= 0.9


def test_bootstrap_mean_ci_edge_cases_and_seed():
    assert ef.bootstrap_mean_ci([0.25]) == (0.25, 0.25, 0.25)
    assert all(np.isnan(ef.bootstrap_mean_ci([])))
    d = np.random.default_rng(1).normal(size=30)
    assert ef.bootstrap_mean_ci(d, seed=3) == ef.bootstrap_mean_ci(d, seed=3)
    assert ef.bootstrap_mean_ci(d, level=0.5)[1] > ef.bootstrap_mean_ci(d, level=0.99)[1]
    with pytest.raises(ValueError):
        ef.bootstrap_mean_ci(d, level=95)


def test_auc_matches_direct_count_with_ties():
    rng = np.random.default_rng(2)
    for _ in range(20):
        b = np.round(rng.random(rng.integers(1, 30)), 1)
        a = np.round(rng.random(rng.integers(1, 30)), 1)
        assert ef.auc(b, a) == pytest.approx(direct_auc(b, a))
    assert ef.auc([1, 2, 3], [1, 2, 3]) == 0.5
    assert ef.auc([2.0], [1.0]) == 1.0
    assert np.isnan(ef.auc([], [1.0])) and np.isnan(ef.auc([1.0], []))


def make_prompts(rng, n_prompts, k, shift, shared=True):
    """Rounded scores with a prompt effect; shared=False gives each side its own prompt effect."""
    effect_a = rng.normal(0.0, 1.0, n_prompts)
    effect_b = effect_a if shared else rng.normal(0.0, 1.0, n_prompts)
    a = [np.round(effect_a[p] + rng.normal(0.0, 1.0, k), 1) for p in range(n_prompts)]
    b = [np.round(effect_b[p] + shift + rng.normal(0.0, 1.0, k), 1) for p in range(n_prompts)]
    return a, b


def test_auc_ci_by_prompt_contains_pooled_auc():
    rng = np.random.default_rng(3)
    a, b = make_prompts(rng, 60, 3, 0.4)
    point, low, high = ef.auc_ci_by_prompt(a, b, n_resamples=2000, seed=1)
    assert point == pytest.approx(ef.auc(np.concatenate(b), np.concatenate(a)))
    assert low < point < high
    assert (point, low, high) == ef.auc_ci_by_prompt(a, b, n_resamples=2000, seed=1)


def test_weighted_wins_equal_auc_of_duplicated_prompts():
    rng = np.random.default_rng(4)
    a, b = make_prompts(rng, 7, 3, 0.2)
    b[2] = np.array([])  # a prompt with one side only still contributes its a texts
    placement, n_a, n_b = ef._placement(a, b)
    weights = np.array([[0, 2, 1, 0, 3, 1, 0], [1, 1, 1, 1, 1, 1, 1]], dtype=float)
    replicates = ef._weighted_wins(placement, weights) / ((weights @ n_b) * (weights @ n_a))
    for w, replicate in zip(weights.astype(int), replicates):
        picked = np.repeat(np.arange(7), w)
        expected = direct_auc(np.concatenate([b[p] for p in picked]), np.concatenate([a[p] for p in picked]))
        assert replicate == pytest.approx(expected, abs=1e-12)


def reference_auc_ci(scores_a, scores_b, n_resamples, level, seed):
    """The prompt bootstrap of the AUC by brute force: the same prompt draws, every resample's
    texts written out with repeats and every b-a pair compared."""
    a = [np.asarray(x, float)[np.isfinite(x)] for x in scores_a]
    b = [np.asarray(x, float)[np.isfinite(x)] for x in scores_b]
    empty = np.empty(0)
    point = direct_auc(np.concatenate([empty, *b]), np.concatenate([empty, *a]))
    replicates = []
    for _, weights in ef._bootstrap_chunks(len(a), n_resamples, np.random.default_rng(seed)):
        for w in weights.astype(int):
            picked = np.repeat(np.arange(len(a)), w)
            b_star = np.concatenate([empty, *(b[p] for p in picked)])
            a_star = np.concatenate([empty, *(a[p] for p in picked)])
            if a_star.size and b_star.size:
                replicates.append(direct_auc(b_star, a_star))
    tail = 50.0 * (1.0 - level)
    return point, *np.percentile(replicates, [tail, 100.0 - tail])


def ragged_prompts(rng, n_prompts):
    """0-4 texts a side per prompt, scores on a coarse grid (many ties), some NaN (dropped)."""
    def side():
        texts = [np.round(rng.normal(0.0, 1.0, rng.integers(0, 5)), 0) for _ in range(n_prompts)]
        for x in texts:
            if x.size and rng.random() < 0.1:
                x[0] = np.nan
        return texts
    return side(), side()


@pytest.mark.parametrize("seed", range(8))
def test_auc_ci_by_prompt_matches_brute_force_reference(seed):
    rng = np.random.default_rng(100 + seed)
    a, b = ragged_prompts(rng, int(rng.integers(2, 25)))
    a[0], b[1] = np.array([]), np.array([])  # prompts with one side only (or none)
    level = [0.95, 0.8][seed % 2]
    got = ef.auc_ci_by_prompt(a, b, n_resamples=300, level=level, seed=seed)
    if all(x.size == 0 for x in a) or all(x.size == 0 for x in b):
        assert all(np.isnan(got))
    else:
        assert got == pytest.approx(reference_auc_ci(a, b, 300, level, seed), abs=1e-12)


def test_auc_ci_by_prompt_does_not_depend_on_block_size(monkeypatch):
    a, b = ragged_prompts(np.random.default_rng(9), 40)
    expected = ef.auc_ci_by_prompt(a, b, n_resamples=500, seed=3)
    monkeypatch.setattr(ef, "_AUC_BLOCK_ELEMENTS", 1)  # one replicate per block
    assert ef.auc_ci_by_prompt(a, b, n_resamples=500, seed=3) == pytest.approx(expected, abs=1e-12)


def test_auc_ci_by_prompt_memory_is_not_quadratic_in_prompts():
    """30,000 prompts of 1-2 texts a side: a prompts x prompts float64 matrix is 7.2 GB, the
    bootstrap needs ~20 MB (tracemalloc counts numpy's buffers)."""
    n_prompts = 30_000
    rng = np.random.default_rng(7)
    a = [rng.random(rng.integers(1, 3)) for _ in range(n_prompts)]
    b = [rng.random(rng.integers(1, 3)) for _ in range(n_prompts)]
    ef.auc_ci_by_prompt([[0.1]], [[0.2]], n_resamples=10)  # imports outside the measurement
    tracemalloc.start()
    try:
        point, low, high = ef.auc_ci_by_prompt(a, b, n_resamples=50, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert low <= point <= high
    assert peak < n_prompts * n_prompts * 8 / 100


def test_auc_ci_widens_with_prompt_correlation():
    """Same texts, two groupings: ten texts per prompt vs one. With prompt effects that differ
    between the sides, the cluster bootstrap must give the clustered grouping the wider interval:
    the prompts, not the texts, are the independent units."""
    rng = np.random.default_rng(5)
    a, b = make_prompts(rng, 30, 10, 0.3, shared=False)
    _, low_c, high_c = ef.auc_ci_by_prompt(a, b, seed=0)
    flat_a, flat_b = [[x] for x in np.concatenate(a)], [[x] for x in np.concatenate(b)]
    _, low_i, high_i = ef.auc_ci_by_prompt(flat_a, flat_b, seed=0)
    assert high_c - low_c > 1.5 * (high_i - low_i)


def test_auc_ci_empty_side_is_nan():
    assert all(np.isnan(ef.auc_ci_by_prompt([[], []], [[0.1], [0.2]])))
    assert all(np.isnan(ef.auc_ci_by_prompt([[0.1], [np.nan]], [[], [np.nan]])))
    assert all(np.isnan(ef.auc_ci_by_prompt([], [])))
    with pytest.raises(ValueError, match="prompts"):
        ef.auc_ci_by_prompt([[0.1]], [[0.2], [0.3]])


def test_prevalence_and_its_interval():
    assert ef.prevalence([1, 0, 1, 1]) == 0.75
    assert np.isnan(ef.prevalence([]))
    per_prompt = [np.array([1, 0]), np.array([1, 1]), np.array([0, 0, 0]), np.array([1, 0, 1])]
    point, low, high = ef.prevalence_ci(per_prompt, seed=2)
    assert point == pytest.approx(5 / 10) and 0.0 <= low <= point <= high <= 1.0
    assert all(np.isnan(ef.prevalence_ci([[], []])))

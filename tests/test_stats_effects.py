"""Effect sizes: bootstrap coverage, AUC against a direct count, prompt-level bootstrap of the AUC."""

from __future__ import annotations

import time

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


def test_auc_replicate_formula_equals_auc_of_duplicated_prompts():
    rng = np.random.default_rng(4)
    a, b = make_prompts(rng, 7, 3, 0.2)
    b[2] = np.array([])  # a prompt with one side only still contributes its a texts
    wins, n_a, n_b = ef._win_matrix(a, b)
    weights = np.array([0, 2, 1, 0, 3, 1, 0], dtype=float)
    replicate = weights @ wins @ weights / ((weights @ n_b) * (weights @ n_a))
    picked = np.repeat(np.arange(7), weights.astype(int))
    expected = ef.auc(np.concatenate([b[p] for p in picked]), np.concatenate([a[p] for p in picked]))
    assert replicate == pytest.approx(expected)


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


def test_auc_ci_by_prompt_is_fast_enough_for_many_hypotheses():
    rng = np.random.default_rng(6)
    a = [rng.random(2) for _ in range(500)]
    b = [rng.random(2) for _ in range(500)]
    start = time.perf_counter()
    for seed in range(5):
        ef.auc_ci_by_prompt(a, b, seed=seed)
    assert time.perf_counter() - start < 5.0  # ~0.1 s each: 200 hypotheses well under a minute


def test_auc_ci_empty_side_is_nan():
    assert all(np.isnan(ef.auc_ci_by_prompt([[], []], [[0.1], [0.2]])))


def test_prevalence_and_its_interval():
    assert ef.prevalence([1, 0, 1, 1]) == 0.75
    assert np.isnan(ef.prevalence([]))
    per_prompt = [np.array([1, 0]), np.array([1, 1]), np.array([0, 0, 0]), np.array([1, 0, 1])]
    point, low, high = ef.prevalence_ci(per_prompt, seed=2)
    assert point == pytest.approx(5 / 10) and 0.0 <= low <= point <= high <= 1.0
    assert all(np.isnan(ef.prevalence_ci([[], []])))

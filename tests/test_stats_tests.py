"""Hypothesis tests: exactness against brute force, vectorised = row-wise, calibration under the null."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from lmdelta.stats import cluster_tests
from lmdelta.stats import tests as st

ALPHA = 0.05


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def prompt_scores(rng, n_prompts, k_a, k_b, icc=0.5, shift=0.0, shared=True):
    """Judge scores in [0, 1] with a prompt random effect (latent ICC `icc`).

    shared=True: both sides answer the same prompts (aligned design). shared=False: each side's
    texts come from its own prompts, as in the reference's validation sampling.
    """
    u_a = rng.normal(0.0, np.sqrt(icc), n_prompts)
    u_b = u_a if shared else rng.normal(0.0, np.sqrt(icc), n_prompts)
    noise = np.sqrt(1.0 - icc)
    a = expit(u_a[:, None] + rng.normal(0.0, noise, (n_prompts, k_a)))
    b = expit(u_b[:, None] + shift + rng.normal(0.0, noise, (n_prompts, k_b)))
    return a, b


def binomial_interval(n, p=ALPHA, coverage=0.999):
    tail = (1.0 - coverage) / 2.0
    return stats.binom.ppf(tail, n, p) / n, stats.binom.ppf(1.0 - tail, n, p) / n


def brute_force_signflip(d, alternative):
    d = np.asarray(d, float)
    t = d.mean()
    flips = np.array([np.mean(np.array(s) * d) for s in itertools.product((-1.0, 1.0), repeat=d.size)])
    if alternative == "greater":
        hits = flips >= t - 1e-12
    elif alternative == "less":
        hits = flips <= t + 1e-12
    else:
        hits = np.abs(flips) >= abs(t) - 1e-12
    return hits.mean()


# --- sign-flip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_signflip_exact_equals_brute_force(alternative):
    rng = np.random.default_rng(3)
    cases = [
        rng.normal(0.2, 1.0, 9),
        np.array([0.5, 0.0, -0.25, 0.25, 0.0, 1.0]),
        np.array([0.1, 0.1, -0.1, 0.1, 0.2, -0.2, 0.3]),
        np.round(rng.normal(0, 1, 10), 1),
    ]
    for d in cases:
        result = st.paired_signflip(d, alternative=alternative)
        assert "exact" in result.method
        assert result.p_value == pytest.approx(brute_force_signflip(d, alternative), abs=1e-15)
        assert result.statistic == pytest.approx(d.mean())
        assert result.n_units == d.size


@pytest.mark.parametrize("n", range(1, 13))
def test_signflip_all_positive_gives_smallest_exact_p(n):
    d = np.random.default_rng(n).uniform(0.1, 1.0, n)
    assert st.paired_signflip(d).p_value == pytest.approx(1.0 / 2**n)
    assert st.paired_signflip(d, alternative="less").p_value == 1.0


def test_signflip_monte_carlo_close_to_exact():
    rng = np.random.default_rng(11)
    for shift in (0.1, 0.3, 0.5):
        d = rng.normal(shift, 1.0, 16)
        exact = st.paired_signflip(d, n_resamples=2**16).p_value
        mc = st.paired_signflip(d, n_resamples=10_000, seed=5)
        assert "monte carlo" in mc.method
        assert abs(mc.p_value - exact) < 0.02


def test_signflip_p_values_in_unit_interval_and_edge_cases():
    rng = np.random.default_rng(0)
    for seed in range(20):
        d = rng.normal(rng.normal(), 1.0, 40)
        p = st.paired_signflip(d, n_resamples=999, seed=seed).p_value
        assert 1.0 / 1000 <= p <= 1.0
    assert st.paired_signflip(np.zeros(30), n_resamples=999).p_value == 1.0
    assert st.paired_signflip(np.zeros(5)).p_value == 1.0
    empty = st.paired_signflip([])
    assert np.isnan(empty.p_value) and empty.n_units == 0
    with_nan = st.paired_signflip([0.2, np.nan, 0.3])
    assert with_nan.n_units == 2 and with_nan.p_value == pytest.approx(0.25)
    with pytest.raises(ValueError):
        st.paired_signflip([0.1, 0.2], alternative="bigger")


def test_signflip_many_equals_row_wise():
    rng = np.random.default_rng(1)
    D = rng.normal(0.1, 1.0, (12, 40))
    D[3] = 0.0
    for alternative in ("greater", "less", "two-sided"):
        stats_, p_values = st.paired_signflip_many(D, alternative=alternative, n_resamples=2000, seed=7)
        for h in range(D.shape[0]):
            row = st.paired_signflip(D[h], alternative=alternative, n_resamples=2000, seed=7)
            assert p_values[h] == row.p_value
            assert stats_[h] == pytest.approx(row.statistic)


def test_signflip_many_masked_rows_equal_test_on_their_prompts():
    rng = np.random.default_rng(2)
    D = rng.normal(0.15, 1.0, (10, 30))
    mask = rng.random(D.shape) < 0.7
    mask[0] = True
    mask[1, 5:] = False  # 5 prompts: exact enumeration
    mask[2] = False  # no data
    stats_, p_values = st.paired_signflip_many(D, mask, n_resamples=3000, seed=4)
    assert np.isnan(p_values[2]) and np.isnan(stats_[2])
    for h in (0, 1, *range(3, 10)):
        row = st.paired_signflip(D[h, mask[h]], n_resamples=3000, seed=4)
        assert p_values[h] == row.p_value
        assert stats_[h] == pytest.approx(row.statistic)


def test_signflip_many_handles_pipeline_scale():
    """200 hypotheses x 500 prompts in one call (its speed is measured in benchmarks/, not asserted here)."""
    D = np.random.default_rng(0).normal(0.0, 1.0, (200, 500))
    _, p_values = st.paired_signflip_many(D, n_resamples=10_000)
    assert p_values.shape == (200,) and np.all((p_values > 0) & (p_values <= 1))


def test_signflip_calibrated_with_prompt_random_effect():
    """400 null data sets, 30 prompts x 5 samples per side, ICC 0.5: rejection rate near alpha."""
    rng = np.random.default_rng(20240601)
    p_values = []
    for i in range(400):
        a, b = prompt_scores(rng, 30, 5, 5)
        p_values.append(st.paired_signflip(b.mean(1) - a.mean(1), n_resamples=999, seed=i).p_value)
    rate = np.mean(np.array(p_values) <= ALPHA)
    low, high = binomial_interval(400)
    assert low <= rate <= high


def test_text_level_mann_whitney_over_rejects_when_texts_share_prompts():
    """The reference's design: a's and b's validation texts come from different prompts, several
    texts per prompt. Nothing differs between the models, yet Mann-Whitney over texts rejects
    far more often than alpha; permuting whole prompts (clusters) on the same data does not."""
    rng = np.random.default_rng(7)
    mw, clustered = [], []
    prompts = np.repeat(np.arange(30), 10)
    is_b = prompts >= 15
    for i in range(400):
        a, b = prompt_scores(rng, 15, 10, 10, shared=False)
        mw.append(st.mann_whitney(a.ravel(), b.ravel()).p_value)
        scores = np.concatenate([a.ravel(), b.ravel()])
        clustered.append(cluster_tests.cluster_permutation(scores, is_b, prompts, n_resamples=999, seed=i).p_value)
    assert np.mean(np.array(mw) <= ALPHA) > 0.15
    low, high = binomial_interval(400)
    assert low <= np.mean(np.array(clustered) <= ALPHA) <= high


# --- within-prompt permutation -----------------------------------------------------------------


def brute_force_within(scores_a, scores_b):
    """Exact p over all within-prompt relabellings (small cases only)."""
    per_prompt = []
    for a, b in zip(scores_a, scores_b):
        pooled = np.concatenate([a, b])
        diffs = []
        for chosen in itertools.combinations(range(pooled.size), len(b)):
            on_b = np.zeros(pooled.size, bool)
            on_b[list(chosen)] = True
            diffs.append(pooled[on_b].mean() - pooled[~on_b].mean())
        per_prompt.append(diffs)
    t_obs = np.mean([np.mean(b) - np.mean(a) for a, b in zip(scores_a, scores_b)])
    totals = [np.mean(combo) for combo in itertools.product(*per_prompt)]
    return np.mean(np.array(totals) >= t_obs - 1e-12)


def test_within_prompt_monte_carlo_matches_exact_enumeration():
    scores_a = [np.array([0.1, 0.4]), np.array([0.7]), np.array([0.2, 0.3]), np.array([0.5, 0.55, 0.6])]
    scores_b = [np.array([0.6]), np.array([0.8, 0.9]), np.array([0.35, 0.5]), np.array([0.7])]
    exact = brute_force_within(scores_a, scores_b)
    result = st.within_prompt_permutation(scores_a, scores_b, n_resamples=20_000, seed=3)
    assert abs(result.p_value - exact) < 0.015
    assert result.statistic == pytest.approx(np.mean([b.mean() - a.mean() for a, b in zip(scores_a, scores_b)]))


def test_within_prompt_drops_prompts_missing_a_side_and_nans():
    scores_a = [[0.1, 0.2], [], [0.3, np.nan], [0.4]]
    scores_b = [[0.5], [0.9], [0.6, 0.7], []]
    result = st.within_prompt_permutation(scores_a, scores_b, n_resamples=500)
    assert result.n_units == 2
    assert result.statistic == pytest.approx(((0.5 - 0.15) + (0.65 - 0.3)) / 2)
    assert np.isnan(st.within_prompt_permutation([[]], [[0.1]]).p_value)
    with pytest.raises(ValueError):
        st.within_prompt_permutation([[0.1]], [[0.2], [0.3]])


def test_within_prompt_calibrated_with_unequal_counts():
    rng = np.random.default_rng(99)
    p_values = []
    for i in range(400):
        k_a, k_b = rng.integers(2, 7, 20), rng.integers(1, 4, 20)
        a, b = prompt_scores(rng, 20, 6, 3)
        scores_a = [a[p, : k_a[p]] for p in range(20)]
        scores_b = [b[p, : k_b[p]] for p in range(20)]
        p_values.append(st.within_prompt_permutation(scores_a, scores_b, n_resamples=999, seed=i).p_value)
    low, high = binomial_interval(400)
    assert low <= np.mean(np.array(p_values) <= ALPHA) <= high


def test_within_prompt_detects_a_real_difference():
    rng = np.random.default_rng(5)
    a, b = prompt_scores(rng, 40, 4, 2, shift=0.8)
    assert st.within_prompt_permutation(list(a), list(b), n_resamples=2000).p_value < 0.01


# --- unaligned corpora -------------------------------------------------------------------------


def test_text_permutation_matches_mann_whitney_in_spirit():
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.0, 1.0, 60), rng.normal(0.6, 1.0, 50)
    perm = st.text_permutation(a, b, n_resamples=5000)
    assert perm.n_units == 110 and perm.statistic == pytest.approx(b.mean() - a.mean())
    assert perm.p_value < 0.01 and st.mann_whitney(a, b).p_value < 0.01
    null = st.text_permutation(a, a + 0.0, alternative="two-sided", n_resamples=999)
    assert null.p_value == 1.0


def test_cluster_permutation_whole_clusters_matches_enumeration():
    rng = np.random.default_rng(4)
    sizes = [3, 2, 4, 3, 2, 3]
    clusters = np.repeat(np.arange(6), sizes)
    cluster_is_b = np.array([False, True, False, True, True, False])
    is_b = cluster_is_b[clusters]
    scores = rng.normal(0.0, 1.0, clusters.size) + 0.8 * is_b
    result = cluster_tests.cluster_permutation(scores, is_b, clusters, n_resamples=20_000, seed=1)
    assert "whole clusters" in result.method and result.n_units == 6

    def contrast(on_b):
        text_b = on_b[clusters]
        return scores[text_b].mean() - scores[~text_b].mean()

    observed = contrast(cluster_is_b)
    draws = []
    for chosen in itertools.combinations(range(6), 3):
        on_b = np.zeros(6, bool)
        on_b[list(chosen)] = True
        draws.append(contrast(on_b))
    exact = np.mean(np.array(draws) >= observed - 1e-12)
    assert result.statistic == pytest.approx(observed)
    assert abs(result.p_value - exact) < 0.01


def test_cluster_permutation_mixed_clusters_permutes_within_clusters():
    rng = np.random.default_rng(6)
    clusters = np.repeat(np.arange(8), 6)
    is_b = np.tile([False, False, False, True, True, True], 8)
    is_b[-6:] = True  # cluster 7 holds b only: dropped
    scores = rng.normal(0.0, 1.0, clusters.size) + 0.5 * is_b
    result = cluster_tests.cluster_permutation(scores, is_b, clusters, n_resamples=2000, seed=2)
    assert "within clusters" in result.method and result.n_units == 7
    scores_a = [scores[(clusters == c) & ~is_b] for c in range(7)]
    scores_b = [scores[(clusters == c) & is_b] for c in range(7)]
    direct = st.within_prompt_permutation(scores_a, scores_b, n_resamples=2000, seed=2)
    assert result.p_value == direct.p_value and result.statistic == pytest.approx(direct.statistic)


# --- rank tests --------------------------------------------------------------------------------


def test_wilcoxon_wraps_scipy_and_handles_zeros():
    rng = np.random.default_rng(12)
    d = np.round(rng.normal(0.2, 1.0, 25), 1)
    d[:3] = 0.0
    result = st.wilcoxon_signed_rank(d)
    expected = stats.wilcoxon(d, zero_method="pratt", alternative="greater")
    assert result.p_value == pytest.approx(expected.pvalue) and result.n_units == 25
    assert st.wilcoxon_signed_rank(np.zeros(10)).p_value == 1.0
    assert np.isnan(st.wilcoxon_signed_rank([]).p_value)


def test_mann_whitney_wraps_scipy():
    rng = np.random.default_rng(13)
    a, b = rng.random(30), rng.random(20) + 0.2
    result = st.mann_whitney(a, b, alternative="two-sided")
    expected = stats.mannwhitneyu(b, a, alternative="two-sided")
    assert result.p_value == pytest.approx(expected.pvalue) and result.statistic == expected.statistic
    assert np.isnan(st.mann_whitney([], b).p_value)


# --- one rule for "exact iff 2^n <= R" and the smallest p-value (review 2026-12) ------------------


@pytest.mark.parametrize("n_resamples", [1000, 1024, 2000, 4096])
def test_smallest_p_is_the_p_value_of_the_most_extreme_data(n_resamples):
    """All differences positive is the most extreme data a one-sided sign-flip can see: its p-value is
    the floor, 2^-n when enumerated exactly and 1/(R+1) when drawn (unless a draw repeats the observed
    signs, likely only for n just above log2 R)."""
    for n in list(range(1, 16)) + [30, 40]:
        _, p = st.paired_signflip_many(np.full((1, n), 0.3), None, "greater", n_resamples, 0)
        assert p[0] >= st.smallest_p(n, n_resamples) * (1 - 1e-12)
        if st.is_exact(n, n_resamples) or n >= 30:
            assert p[0] == pytest.approx(st.smallest_p(n, n_resamples), rel=1e-12)
        assert st.is_exact(n, n_resamples) == (2**n <= n_resamples)
        assert ("exact" in st.paired_signflip(np.full(n, 0.3), "greater", n_resamples).method) == st.is_exact(
            n, n_resamples
        )
    assert st.smallest_p(7) == 2.0**-7 and st.smallest_p(7, 100) == 1 / 101 and not st.is_exact(0, 2000)
    assert st.monte_carlo_floor(2000) == 1 / 2001

"""Effect sizes: the pipeline's t-based intervals (formulas, edge cases, coverage at few prompts),
AUC against a direct count, the clustered AUC variance against a brute-force reference, and the
prompt-level bootstrap of the AUC kept for the benchmark (in memory linear in the texts)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import stats

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
    point, low, high = ef.prevalence_ci(per_prompt).interval
    assert point == pytest.approx(5 / 10) and 0.0 <= low <= point <= high <= 1.0
    assert np.isnan(ef.prevalence_ci([[], []]).value)


# --- the pipeline's intervals: t over prompts, clustered AUC, Korn-Graubard prevalence ----------


def audit_design(rng, n_sets, n_prompts, icc, k=4, shift=0.3, interaction=0.5):
    """The statistics audit's coverage design: score judge, prompt effect, prompt x side interaction."""
    u = rng.normal(0.0, np.sqrt(icc), (n_sets, n_prompts, 1))
    v = rng.normal(0.0, interaction, (n_sets, n_prompts, 1))
    noise = np.sqrt(1.0 - icc)
    a = 1.0 / (1.0 + np.exp(-(u + rng.normal(0.0, noise, (n_sets, n_prompts, k)))))
    b = 1.0 / (1.0 + np.exp(-(u + shift + v + rng.normal(0.0, noise, (n_sets, n_prompts, k)))))
    return a, b


def test_mean_ci_is_the_t_interval_and_says_why_when_there_is_none():
    d = np.array([0.1, -0.2, 0.4, 0.3, np.nan, 0.0])
    found = ef.mean_ci(d, level=0.9)
    x = d[np.isfinite(d)]
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert found.value == pytest.approx(x.mean()) and found.se == pytest.approx(se) and found.df == x.size - 1
    half = stats.t.ppf(0.95, x.size - 1) * se
    assert (found.low, found.high) == pytest.approx((x.mean() - half, x.mean() + half))
    one = ef.mean_ci([0.25])  # no zero-width interval from one prompt
    assert one.value == 0.25 and np.isnan(one.low) and np.isnan(one.high) and "one prompt" in one.note
    same = ef.mean_ci([0.0, 0.0, 0.0])
    assert same.value == 0.0 and np.isnan(same.low) and "same difference" in same.note
    assert np.isnan(ef.mean_ci([]).value) and ef.mean_ci([]).note
    assert all(np.isnan(ef.t_interval(0.1, float("nan"), 3)))


def test_mean_ci_covers_at_five_prompts_where_the_percentile_bootstrap_did_not():
    """Audit M2: the percentile bootstrap covered 0.77-0.83 at 5 prompts; the t interval ~0.95."""
    rng = np.random.default_rng(21)
    a, b = audit_design(rng, 600, 5, icc=0.5)
    truth = 0.0598  # E[d_p] of this design (a 10^6-prompt simulation)
    d = b.mean(axis=2) - a.mean(axis=2)
    t_hits = [ef.mean_ci(x).low <= truth <= ef.mean_ci(x).high for x in d]
    boot = [ef.bootstrap_mean_ci(x, 500, seed=i) for i, x in enumerate(d[:300])]
    assert np.mean(t_hits) >= 0.92
    assert np.mean([low <= truth <= high for _, low, high in boot]) < 0.88


def test_welch_ci_matches_the_two_sample_formula():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.0, 1.0, 15), rng.normal(0.5, 2.0, 9)
    found = ef.welch_ci(a, b, 0.95)
    va, vb = a.var(ddof=1) / 15, b.var(ddof=1) / 9
    df = (va + vb) ** 2 / (va**2 / 14 + vb**2 / 8)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    assert found.df == pytest.approx(df) and (found.low, found.high) == pytest.approx(
        (b.mean() - a.mean() - half, b.mean() - a.mean() + half)
    )
    assert "one text" in ef.welch_ci([1.0], [0.0, 1.0]).note and np.isnan(ef.welch_ci([], [1.0]).value)


def brute_force_clustered_auc(scores_a, scores_b):
    """Obuchowski (1997) written out with the full b x a comparison matrix: (auc, se)."""
    a = [np.asarray(x, float)[np.isfinite(x)] for x in scores_a]
    b = [np.asarray(x, float)[np.isfinite(x)] for x in scores_b]
    a_all, b_all = np.concatenate(a), np.concatenate(b)
    psi = (b_all[:, None] > a_all[None, :]) + 0.5 * (b_all[:, None] == a_all[None, :])
    M, N = b_all.size, a_all.size
    theta = psi.mean()
    v10_text, v01_text = psi.mean(axis=1), psi.mean(axis=0)
    m = np.array([x.size for x in b])
    n = np.array([x.size for x in a])
    v10 = np.array([v10_text[m[:i].sum() : m[: i + 1].sum()].sum() for i in range(len(b))])
    v01 = np.array([v01_text[n[:i].sum() : n[: i + 1].sum()].sum() for i in range(len(a))])
    i10, i01, i_any = (m > 0).sum(), (n > 0).sum(), ((m + n) > 0).sum()
    s10 = i10 / ((i10 - 1) * M) * np.sum((v10 - m * theta) ** 2)
    s01 = i01 / ((i01 - 1) * N) * np.sum((v01 - n * theta) ** 2)
    s11 = i_any / (i_any - 1) * np.sum((v10 - m * theta) * (v01 - n * theta))
    return theta, np.sqrt(s10 / M + s01 / N + 2 * s11 / (M * N))


@pytest.mark.parametrize("seed", range(6))
def test_auc_ci_matches_the_clustered_variance_written_out(seed):
    rng = np.random.default_rng(200 + seed)
    a, b = ragged_prompts(rng, int(rng.integers(6, 25)))
    a[0], b[1] = np.array([]), np.array([])  # prompts with one side only still count
    found = ef.auc_ci(a, b, level=0.9, min_prompts=2)
    theta, se = brute_force_clustered_auc(a, b)
    assert found.value == pytest.approx(ef.auc(np.concatenate(b), np.concatenate(a)))
    assert found.value == pytest.approx(theta) and found.se == pytest.approx(se)
    clusters = sum(np.isfinite(x).sum() + np.isfinite(y).sum() > 0 for x, y in zip(a, b))
    logit, half = np.log(theta / (1 - theta)), stats.t.ppf(0.95, clusters - 1) * se / (theta * (1 - theta))
    assert found.df == clusters - 1
    assert (found.low, found.high) == pytest.approx((1 / (1 + np.exp(half - logit)), 1 / (1 + np.exp(-logit - half))))


def test_auc_ci_says_why_it_has_no_interval():
    few = ef.auc_ci([[0.1, 0.3]] * 4, [[0.2, 0.5]] * 4)
    assert few.value == pytest.approx(0.75) and np.isnan(few.low) and "at least 5" in few.note
    apart = ef.auc_ci([[0.1]] * 6, [[0.9]] * 6)
    assert apart.value == 1.0 and np.isnan(apart.low) and "do not overlap" in apart.note
    tied = ef.auc_ci([[0.5]] * 6, [[0.5]] * 6)
    assert tied.value == 0.5 and np.isnan(tied.low) and "no spread" in tied.note
    assert np.isnan(ef.auc_ci([[], []], [[0.1], [0.2]]).value)
    with pytest.raises(ValueError, match="prompts"):
        ef.auc_ci([[0.1]], [[0.2], [0.3]])


def test_auc_ci_memory_is_linear_in_the_texts():
    n_prompts = 30_000
    rng = np.random.default_rng(7)
    a = [rng.random(rng.integers(1, 3)) for _ in range(n_prompts)]
    b = [rng.random(rng.integers(1, 3)) for _ in range(n_prompts)]
    ef.auc_ci([[0.1]] * 5, [[0.2]] * 5)  # imports outside the measurement
    tracemalloc.start()
    try:
        found = ef.auc_ci(a, b)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.low <= found.value <= found.high
    assert peak < 100 * 8 * 2 * n_prompts  # ~100 float64 values per prompt; a P x P matrix is 7.2 GB


def test_auc_ci_covers_at_five_prompts_where_the_cluster_bootstrap_did_not():
    """Audit M2: the cluster bootstrap covered 0.81 at 5 prompts; the clustered logit-t interval ~0.95.
    Truth: P(b text > a text) for texts of independent prompts, 0.5794 (10^7 pairs)."""
    rng = np.random.default_rng(22)
    a, b = audit_design(rng, 400, 5, icc=0.5)
    hits = [ef.auc_ci(list(x), list(y)) for x, y in zip(a, b)]
    assert np.mean([h.low <= 0.5794 <= h.high for h in hits]) >= 0.92
    boot = [ef.auc_ci_by_prompt(list(x), list(y), 300, seed=i) for i, (x, y) in enumerate(zip(a[:200], b[:200]))]
    assert np.mean([low <= 0.5794 <= high for _, low, high in boot]) < 0.9


def test_prevalence_ci_is_korn_graubard():
    per_prompt = [np.array([1, 0, 0, 0]), np.array([1, 1, 0, 0]), np.array([0, 0, 0]), np.array([1, 0, 0, 0, 0])]
    found = ef.prevalence_ci(per_prompt, level=0.95)
    y, n = np.array([1, 2, 0, 1.0]), np.array([4, 4, 3, 5.0])
    p = y.sum() / n.sum()
    var = 4 / 3 * np.sum((y - p * n) ** 2) / n.sum() ** 2
    n_eff = min(n.sum(), p * (1 - p) / var) * (stats.norm.ppf(0.975) / stats.t.ppf(0.975, 3)) ** 2
    low = stats.beta.ppf(0.025, p * n_eff, n_eff - p * n_eff + 1)
    high = stats.beta.ppf(0.975, p * n_eff + 1, n_eff - p * n_eff)
    assert (found.value, found.low, found.high) == pytest.approx((p, low, high))
    assert found.df == 3 and found.se == pytest.approx(np.sqrt(var))


def test_prevalence_ci_of_a_property_never_seen_is_not_zero_width():
    """A rare property seen in no text: the bootstrap said [0, 0]; Korn-Graubard keeps an upper end."""
    found = ef.prevalence_ci([np.zeros(4)] * 5)
    assert found.value == 0.0 and found.low == 0.0 and 0.1 < found.high < 0.5
    assert ef.prevalence_ci([np.ones(3)] * 5).high == 1.0
    one = ef.prevalence_ci([np.array([1, 0, 1])])
    assert one.value == pytest.approx(2 / 3) and np.isnan(one.low) and "one prompt" in one.note


def test_prevalence_ci_covers_a_rare_property_at_few_prompts():
    """Prevalence 0.05, 10 prompts x 4 texts, latent ICC 0.5: a prompt bootstrap covered 0.87, this ~0.99."""
    rng = np.random.default_rng(23)
    base = -3.3715  # E[expit(base + N(0, 1))] = 0.05
    latent = base + rng.normal(0.0, np.sqrt(0.5), (500, 10, 1)) + rng.normal(0.0, np.sqrt(0.5), (500, 10, 4))
    x = (rng.random(latent.shape) < 1.0 / (1.0 + np.exp(-latent))).astype(float)
    hits = [ef.prevalence_ci(list(sample)) for sample in x]
    assert np.mean([h.low <= 0.05 <= h.high for h in hits]) >= 0.93


# --- differences equal up to rounding have no spread (review 2026-12) ---------------------------


def test_differences_equal_up_to_rounding_give_no_interval():
    """0.7 − 0.4 and 0.3 − 0 differ by one ulp: the interval built from that was ~1e-16 wide."""
    d = np.array([0.7 - 0.4, 0.3 - 0.0, 0.8 - 0.5, 0.6 - 0.3, 0.9 - 0.6])
    assert len(set(d.tolist())) > 1  # the premise: not bit-equal
    found = ef.mean_ci(d)
    assert found.value == pytest.approx(0.3) and np.isnan(found.low) and "same difference" in found.note
    welch = ef.welch_ci([0.7 - 0.4, 0.3 - 0.0, 0.8 - 0.5], [0.6 - 0.3, 0.9 - 0.6, 0.3])
    assert np.isnan(welch.low) and "scores the same" in welch.note
    clustered = ef.clustered_welch_ci([[0.7 - 0.4, 0.3], [0.8 - 0.5]], [[0.6 - 0.3], [0.9 - 0.6, 0.3]])
    assert np.isnan(clustered.low) and "same mean" in clustered.note
    spread = ef.mean_ci(d + np.array([0, 0, 0, 0, 1e-9]))  # a real, if small, spread keeps its interval
    assert spread.low < spread.value < spread.high


def test_no_spread_is_relative_to_the_scale():
    assert ef.no_spread(np.array([1e6, 1e6 + 1e-7])) and not ef.no_spread(np.array([1e6, 1e6 + 1e-3]))
    assert ef.no_spread(np.array([0.0, 1e-13])) and not ef.no_spread(np.array([0.0, 1e-11]))
    assert ef.no_spread(np.array([])) and ef.no_spread(np.array([0.4]))

"""The cheap→strong judge cascade (lmdelta.stats.ppi): the estimator by hand, its identities (lam = 0 is
the Horvitz-Thompson mean of the labels; pi = 1 and lam = 1 the plain mean), numbers pinned from
ppi-python where the estimators coincide, and type-I error and coverage under a biased cheap judge by
(fast, seeded) simulation."""

import math

import numpy as np
import pytest
from scipy import stats

from lmdelta.stats.ppi import agreement, choose_labels, classical_mean, ppi_mean, tuned_lambda

# Four prompts: cheap mean 0.25, so the centred cheap scores are g = [0.5, -0.5, 0.25, -0.25].
CHEAP = np.array([0.75, -0.25, 0.5, 0.0])
STRONG = np.array([1.0, np.nan, 0.0, -0.5])  # prompt 1 is not labelled: its strong score is never read
LABELLED = np.array([True, False, True, True])
PI = np.array([0.5, 0.5, 0.25, 1.0])


def test_estimate_and_se_by_hand():
    """term_p = lam g_p + xi_p (Y_p - lam g_p) / pi_p with lam = 0.5:
    p0: 0.25 + (1 - 0.25) / 0.5 = 1.75;  p1: -0.25 (unlabelled);
    p2: 0.125 + (0 - 0.125) / 0.25 = -0.375;  p3: -0.125 + (-0.5 + 0.125) / 1 = -0.5.
    estimate = (1.75 - 0.25 - 0.375 - 0.5) / 4 = 0.15625; se = sd(terms, ddof=1) / 2."""
    result = ppi_mean(CHEAP, STRONG, LABELLED, PI, lam=0.5)
    terms = np.array([1.75, -0.25, -0.375, -0.5])
    deviations = terms - 0.15625  # 1.59375, -0.40625, -0.53125, -0.65625
    se = math.sqrt(np.sum(deviations**2) / 3 / 4)  # 3.41796875 / 3 / 4
    assert result.estimate == pytest.approx(0.15625)
    assert result.se == pytest.approx(se) and se == pytest.approx(0.533695, abs=1e-6)
    half = stats.norm.ppf(0.975) * se
    assert (result.low, result.high) == pytest.approx((0.15625 - half, 0.15625 + half))
    assert result.p_value == pytest.approx(2 * stats.norm.sf(0.15625 / se))
    assert (result.lam, result.n, result.n_labelled, result.n_missing) == (0.5, 4, 3, 0)


def test_tuned_lambda_by_hand():
    """w_p = (1/pi - 1) / pi over the labelled prompts: p0 (1/0.5 - 1) / 0.5 = 2, p2 (4 - 1) / 0.25 = 12,
    p3 0. lam = sum w Y g / sum w g^2 = (2 * 1 * 0.5 + 12 * 0 * 0.25) / (2 * 0.25 + 12 * 0.0625) = 1 / 1.25."""
    g = CHEAP - CHEAP.mean()
    assert tuned_lambda(g, np.nan_to_num(STRONG), LABELLED, PI) == pytest.approx(0.8)
    assert ppi_mean(CHEAP, STRONG, LABELLED, PI).lam == pytest.approx(0.8)
    assert tuned_lambda(g, -np.nan_to_num(STRONG), LABELLED, PI) == 0.0  # clipped at 0
    assert tuned_lambda(g, g, LABELLED, np.ones(4)) == 1.0  # every pi = 1: lam does not matter
    assert tuned_lambda(g, 3 * g, LABELLED, PI) == 1.0  # clipped at 1


def test_lam_zero_is_the_horvitz_thompson_mean_of_the_strong_labels():
    rng = np.random.default_rng(3)
    cheap, strong = rng.uniform(-1, 1, 200), rng.uniform(-1, 1, 200)
    pi = rng.uniform(0.05, 1.0, 200)
    labelled = rng.random(200) < pi
    result = ppi_mean(cheap, strong, labelled, pi, lam=0.0)
    assert result.estimate == pytest.approx(np.sum(strong[labelled] / pi[labelled]) / 200)
    assert result.se == pytest.approx(np.std(np.where(labelled, strong / pi, 0.0), ddof=1) / math.sqrt(200))


def test_everything_labelled_with_lam_one_is_the_plain_mean():
    rng = np.random.default_rng(4)
    cheap, strong = rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50)
    result = ppi_mean(cheap, strong, np.ones(50, dtype=bool), 1.0, lam=1.0, alternative="greater")
    plain = classical_mean(strong, alternative="greater")
    assert result.estimate == pytest.approx(strong.mean()) == plain.estimate
    assert (result.se, result.low, result.p_value) == pytest.approx((plain.se, plain.low, plain.p_value))
    assert result.high == plain.high == math.inf


# ppi-python 0.2.3 (numpy 2.4.6), on this example; it takes the labelled Y and Yhat and, separately,
# Yhat_unlabeled. With uniform labelling at the realised rate pi = n / N our estimate is
# lam mean_all(f) + mean_labelled(Y - lam f): theirs when Yhat_unlabeled is ALL N cheap scores (labelled
# ones included); with only the N - n unlabelled ones (the usual disjoint split) it differs. Computed as
#   ppi_mean_pointestimate(Y=PIN_STRONG, Yhat=PIN_CHEAP[:4], Yhat_unlabeled=PIN_CHEAP, lam=lam)
#   -> 0.25 (lam 0), 0.2125 (lam 0.5), 0.175 (lam 1)
#   classical_mean_ci(PIN_STRONG, alpha=0.05) -> (-0.2697139341311291, 0.7697139341311291)
#   classical_mean_ci(PIN_STRONG, alpha=0.05, alternative="larger") -> (-0.18615768262875276, inf)
# What does NOT coincide, so is not pinned: their intervals and p-values for PPI (their variance is
# lam² Var(f)/N + Var(Y - lam f)/n for a fixed count n of labels; ours is the variance of the per-prompt
# terms under Bernoulli labelling, which includes the randomness of the count), and their lam=None
# (PPI++'s Cov / ((1 + n/N) Var), optimal for that fixed-n estimator; ours is optimal for ours).
PIN_CHEAP = np.array([0.5, -0.25, 0.75, 0.0, 1.0, -0.5, 0.25, 0.5, -0.75, 0.25])
PIN_STRONG = np.array([0.25, -0.5, 1.0, 0.25])
PIN_POINT = {0.0: 0.25, 0.5: 0.2125, 1.0: 0.175}


@pytest.mark.parametrize("lam", sorted(PIN_POINT))
def test_point_estimate_matches_ppi_python_under_uniform_labelling(lam):
    strong = np.concatenate([PIN_STRONG, np.full(6, np.nan)])
    labelled = np.arange(10) < 4
    assert ppi_mean(PIN_CHEAP, strong, labelled, 4 / 10, lam=lam).estimate == pytest.approx(PIN_POINT[lam])


def test_classical_interval_matches_ppi_python_up_to_ddof():
    """ppi-python's classical interval uses sd with ddof=0; ours ddof=1: se differs by sqrt(n / (n - 1))."""
    factor = math.sqrt(4 / 3)
    two = classical_mean(PIN_STRONG, alpha=0.05)
    assert two.estimate == 0.25
    assert two.high - 0.25 == pytest.approx((0.7697139341311291 - 0.25) * factor)
    assert 0.25 - two.low == pytest.approx((0.25 + 0.2697139341311291) * factor)
    one = classical_mean(PIN_STRONG, alpha=0.05, alternative="greater")
    assert 0.25 - one.low == pytest.approx((0.25 + 0.18615768262875276) * factor) and one.high == math.inf


def test_nan_cheap_scores_drop_the_prompt():
    cheap = np.append(CHEAP, np.nan)
    strong, labelled, pi = np.append(STRONG, 0.9), np.append(LABELLED, True), np.append(PI, 0.5)
    with_nan, without = ppi_mean(cheap, strong, labelled, pi), ppi_mean(CHEAP, STRONG, LABELLED, PI)
    assert (with_nan.estimate, with_nan.se, with_nan.n) == (without.estimate, without.se, 4)


def test_a_labelled_prompt_without_strong_score_counts_as_unlabelled_with_pi_rescaled():
    """Uniform pi = 4/10 and 4 labels, one of which failed: pi becomes 0.4 * 3/4 = 3/10, the realised rate
    of the 3 usable labels, so the estimate is ppi-python's on those 3: lam mean_all(f) + mean(Y - lam f)."""
    strong = np.concatenate([PIN_STRONG[:3], [np.nan], np.full(6, np.nan)])
    result = ppi_mean(PIN_CHEAP, strong, np.arange(10) < 4, 0.4, lam=0.5)
    expected = 0.5 * PIN_CHEAP.mean() + np.mean(PIN_STRONG[:3] - 0.5 * PIN_CHEAP[:3])
    assert result.estimate == pytest.approx(expected)
    assert (result.n_labelled, result.n_missing) == (3, 1)


def test_strong_failures_at_random_leave_the_estimate_unbiased():
    """30% of strong calls fail at random and E[Y] = 0.3: with pi rescaled the mean estimate stays at 0.3
    (an unchanged pi would give about 0.7 x 0.3 = 0.21 at lam = 0)."""
    rng = np.random.default_rng(8)
    estimates = []
    for _ in range(2000):
        strong = np.clip(rng.normal(0.3, 0.3, 200), -1, 1)
        cheap = strong + rng.normal(0.1, 0.2, 200)
        pi = rng.uniform(0.2, 0.6, 200)
        labelled = rng.random(200) < pi
        failed = labelled & (rng.random(200) < 0.3)
        estimates.append(ppi_mean(cheap, np.where(failed, np.nan, strong), labelled, pi, lam=0.0).estimate)
    truth = np.mean(np.clip(np.random.default_rng(9).normal(0.3, 0.3, 10**6), -1, 1))
    assert np.mean(estimates) == pytest.approx(truth, abs=4 * np.std(estimates) / math.sqrt(2000))


def test_too_few_labels_and_bad_inputs():
    none = ppi_mean(CHEAP, STRONG, np.zeros(4, dtype=bool), PI)
    assert math.isnan(none.estimate) and none.note == "no strong labels"
    one = ppi_mean(CHEAP, STRONG, np.array([True, False, False, False]), PI, lam=0.0)
    assert one.estimate == pytest.approx(0.5) and math.isnan(one.p_value) and one.note
    assert math.isnan(classical_mean([0.3]).se)
    with pytest.raises(ValueError, match="pi"):
        ppi_mean(CHEAP, STRONG, LABELLED, np.array([0.5, 0.0, 0.25, 1.0]))
    with pytest.raises(ValueError, match="boolean"):
        ppi_mean(CHEAP, STRONG, [1, 0, 1, 1], PI)
    with pytest.raises(ValueError, match="length"):
        ppi_mean(CHEAP, STRONG[:3], LABELLED, PI)
    with pytest.raises(ValueError, match="alternative"):
        ppi_mean(CHEAP, STRONG, LABELLED, PI, alternative="larger")


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_interval_excludes_the_null_exactly_when_the_test_rejects(alternative):
    rng = np.random.default_rng(5)
    for _ in range(50):
        cheap = rng.uniform(-1, 1, 60)
        strong = np.clip(cheap + rng.normal(0.1, 0.3, 60), -1, 1)
        result = ppi_mean(cheap, strong, rng.random(60) < 0.5, 0.5, alternative=alternative)
        assert (result.p_value < 0.05) == (not result.low <= 0.0 <= result.high)


def test_choose_labels_scales_to_the_budget_with_a_floor_and_a_cap():
    u = np.array([0.0, 0.01, 0.1, 0.2, 0.4, 5.0, 0.3, 0.05])
    plan = choose_labels(u, 3.0, np.random.default_rng(0), floor=0.5)
    assert plan.expected == pytest.approx(3.0)
    assert plan.pi.min() == pytest.approx(0.5 * 3 / 8) and plan.pi[5] == 1.0  # floor; the cap
    middle = (plan.pi > 0.5 * 3 / 8 + 1e-9) & (plan.pi < 1.0)
    assert np.ptp(plan.pi[middle] / u[middle]) == pytest.approx(0.0, abs=1e-9)  # proportional between
    assert plan.labelled.dtype == bool and plan.labelled.shape == (8,)
    assert np.all(choose_labels(u, 8, np.random.default_rng(0)).pi == 1.0)
    flat = choose_labels(np.zeros(8), 2.0, np.random.default_rng(0))
    assert flat.pi == pytest.approx(np.full(8, 0.25))
    few = choose_labels(np.array([1.0, 0.0, 0.0, 0.0]), 2.5, np.random.default_rng(0), floor=0.1)
    assert few.pi == pytest.approx([1.0, 0.5, 0.5, 0.5])  # the certain prompts share what is left
    with pytest.raises(ValueError, match="uncertainty"):
        choose_labels(np.array([0.1, np.nan]), 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="floor"):
        choose_labels(u, 3.0, np.random.default_rng(0), floor=0.0)


def test_agreement_by_hand():
    cheap = np.array([0.5, -0.25, 0.0, 0.75, 0.3, np.nan])
    strong = np.array([0.25, 0.5, 0.0, 1.0, 9.0, 0.1])
    labelled = np.array([True, True, True, True, False, True])
    result = agreement(cheap, strong, labelled)  # prompts 0-3: signs agree on 0, 2 (both 0) and 3
    assert (result.n, result.sign_agreement) == (4, 0.75)
    assert result.correlation == pytest.approx(np.corrcoef([0.5, -0.25, 0.0, 0.75], [0.25, 0.5, 0.0, 1.0])[0, 1])
    assert agreement(cheap, strong, np.zeros(6, dtype=bool)).n == 0


def _null_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E[Y] = 0 exactly (Y symmetric about 0); the cheap judge leans towards b by 0.25 and is noisy."""
    strong = np.clip(rng.normal(0.0, 0.4, n), -1, 1)
    cheap = np.clip(0.8 * strong + 0.25 + rng.normal(0.0, 0.2, n), -1, 1)
    uncertainty = 0.1 + np.abs(cheap - 0.25) * rng.uniform(0.5, 1.5, n)  # from the cheap side only, as in use
    return cheap, strong, uncertainty


def _upper_rejections(runs: int, alpha: float) -> int:
    """The most rejections consistent with a true rate of alpha (one-sided binomial test at 0.001)."""
    return int(stats.binom.ppf(0.999, runs, alpha))


@pytest.mark.parametrize("design", ["uniform", "active"])
def test_type_one_error_and_coverage_with_a_biased_cheap_judge(design):
    """1000 null data sets of 400 prompts, 80 strong labels expected. The cheap judge alone would reject
    nearly always (its mean is about 0.25); the cascade rejects at most alpha (up to Monte Carlo slack)
    and its 95% interval covers theta = 0 about 95% of the time."""
    rng = np.random.default_rng(11 if design == "uniform" else 12)
    runs, n, budget = 1000, 400, 80
    rejected = {"two-sided": 0, "greater": 0}
    agree = []
    for _ in range(runs):
        cheap, strong, uncertainty = _null_data(rng, n)
        if design == "uniform":
            pi, labelled = np.full(n, budget / n), rng.random(n) < budget / n
        else:
            plan = choose_labels(uncertainty, budget, rng)
            pi, labelled = plan.pi, plan.labelled
        agree.append(agreement(cheap, strong, np.ones(n, dtype=bool)).sign_agreement)
        for alternative in rejected:
            rejected[alternative] += ppi_mean(cheap, strong, labelled, pi, alternative=alternative).p_value < 0.05
    assert 0.7 <= np.mean(agree) <= 0.9  # the scenario: a cheap judge that agrees 70-90% of the time
    assert rejected["greater"] <= _upper_rejections(runs, 0.05)
    assert rejected["two-sided"] <= _upper_rejections(runs, 0.05)
    coverage = 1 - rejected["two-sided"] / runs  # the two-sided interval covers 0 iff the test keeps it
    assert coverage >= 1 - _upper_rejections(runs, 0.05) / runs and coverage <= 0.99

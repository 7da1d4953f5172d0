"""A cheap→strong judge cascade: the mean per-prompt difference from a cheap judge on every prompt and an
expensive (strong) judge on a random subset, valid however biased the cheap judge is.

A cheap judge scores all N prompts (f_p, its per-prompt difference b − a); the strong judge scores
prompt p only when a coin with known probability pi_p says so (xi_p ~ Bernoulli(pi_p), Y_p its
difference). The target is theta = E[Y]. The estimator is the active-inference form of PPI++:

    theta_hat = (1/N) sum_p [ lam g_p + (xi_p / pi_p) (Y_p − lam g_p) ],   g_p = f_p − mean(f)

(Angelopoulos, Duchi & Zrnic 2023, "PPI++: Efficient prediction-powered inference", arXiv:2311.01453;
Zrnic & Candès 2024, "Active statistical inference", ICML, arXiv:2403.03208). Each term has conditional
mean Y_p over the coin, so theta_hat is unbiased for any fixed lam and any cheap judge: a biased cheap
judge costs power, never validity. Its variance is (Var(Y) + E[(1/pi − 1)(Y − lam g)²]) / N, which
the power-tuned lam minimises and which labelling where |Y − lam g| is large (`choose_labels`) reduces.

Centring the cheap scores at their all-prompt mean changes nothing when the labels' 1/pi sum to N
(uniform pi at the realised rate n/N: the shift cancels) and keeps every identity: lam = 0 is the
Horvitz-Thompson mean of the strong labels; pi = 1 and lam = 1 is the plain mean of Y; uniform pi = n/N
is ppi_py's `ppi_mean_pointestimate` with Yhat_unlabeled = all N cheap scores. It matters because with
Bernoulli labelling the count is random: uncentred, a cheap judge whose mean is b adds about
lam² b² E[1/pi − 1] / N to the variance, which for a judge leaning to one side can be most of it.

Intervals are CLT (normal) intervals over the N per-prompt terms and the test is a z-test; they need
enough strong labels for the CLT (tens, not a handful) and pi known, fixed before the strong judge
runs, and > 0 on every prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")
# Below this many usable strong labels no interval is given: lam and the variance are estimated from them.
MIN_LABELLED = 2
_NAN = float("nan")


@dataclass(frozen=True)
class MeanTest:
    """An estimate of E[Y] with its CLT interval and z-test of `null`.

    `low`/`high` bound a two-sided interval, or a one-sided one (the other end infinite) for the
    one-sided alternatives, so that the interval excludes `null` exactly when p_value < alpha.
    `lam` is the weight given to the cheap judge (0 for a strong-only estimate). `n` counts prompts
    used (with a cheap score), `n_labelled` those with a usable strong score, `n_missing` labelled
    prompts whose strong score was NaN. `note` says why se, interval or p-value are NaN (else None).
    """

    estimate: float
    se: float
    low: float
    high: float
    p_value: float
    lam: float
    n: int
    n_labelled: int
    n_missing: int = 0
    alternative: str = "two-sided"
    note: str | None = None


@dataclass(frozen=True, eq=False)
class LabelPlan:
    """Which prompts the strong judge labels: `pi` the known probabilities, `labelled` the draws."""

    pi: np.ndarray
    labelled: np.ndarray

    @property
    def expected(self) -> float:
        return float(self.pi.sum())


@dataclass(frozen=True)
class Agreement:
    """How the judges compare on the labelled prompts (for the record; validity never rests on it).

    `sign_agreement` is the share of prompts where sign(cheap) == sign(strong) (0 counts as its own
    sign), `correlation` Pearson's r; NaN where undefined (no prompts; a constant side).
    """

    n: int
    sign_agreement: float
    correlation: float


def _check(alpha: float, alternative: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _z_result(estimate: float, se: float, alpha: float, alternative: str, null: float) -> tuple[float, float, float]:
    """(low, high, p) of the normal interval and z-test; NaN where se is not positive and finite.

    scipy.special's normal functions, not scipy.stats.norm: the same values at a tenth of the overhead,
    which the benchmark's many small tests notice."""
    from scipy import special  # lazy: importing the pipeline stays quick

    if not (math.isfinite(se) and se > 0.0):
        return _NAN, _NAN, _NAN
    z = (estimate - null) / se
    if alternative == "greater":
        return estimate - float(special.ndtri(1 - alpha)) * se, math.inf, float(special.ndtr(-z))
    if alternative == "less":
        return -math.inf, estimate + float(special.ndtri(1 - alpha)) * se, float(special.ndtr(z))
    half = float(special.ndtri(1 - alpha / 2)) * se
    return estimate - half, estimate + half, float(min(1.0, 2 * special.ndtr(-abs(z))))


def _arrays(cheap, strong, labelled, pi) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs as float/bool arrays of one length, pi broadcast and checked to lie in (0, 1]."""
    f = np.asarray(cheap, dtype=float).ravel()
    y = np.asarray(strong, dtype=float).ravel()
    mask = np.asarray(labelled).ravel()
    if mask.dtype != bool:
        raise ValueError("labelled must be a boolean mask")
    p = np.broadcast_to(np.asarray(pi, dtype=float), f.shape).astype(float)
    if not (y.shape == f.shape == mask.shape):
        raise ValueError(f"cheap, strong and labelled differ in length: {f.size}, {y.size}, {mask.size}")
    if not np.all((p > 0.0) & (p <= 1.0)):
        raise ValueError("every labelling probability pi must be in (0, 1]: a prompt that cannot be labelled biases")
    return f, y, mask, p


def tuned_lambda(centred: np.ndarray, strong: np.ndarray, labelled: np.ndarray, pi: np.ndarray) -> float:
    """The power-tuned lam: the minimiser of the estimator's variance, estimated from the labelled prompts.

    Var(theta_hat) · N = Var(Y) + E[w (Y − lam g)²] with w = 1/pi − 1 (the coin's variance divided by
    pi²), so the best lam is the w-weighted least-squares slope of Y on g through the origin,
    E[w Y g] / E[w g²]: PPI++'s power tuning (Angelopoulos et al. 2023) applied to the variance of the
    active estimator (Zrnic & Candès 2024). With uniform pi it is the slope of Y on the cheap score;
    PPI++'s Cov / ((1 + n/N) Var) is the optimum for a fixed count of labels, not for Bernoulli coins.
    Both moments are inverse-probability weighted sums over the labelled prompts, so the ratio is
    exactly 1 when Y = g. Clipped to [0, 1] as in PPI++: outside it a noisy estimate would let the cheap
    judge push the wrong way. Where every pi is 1 the variance does not depend on lam, and 1 is returned.
    """
    weight = (1.0 / pi - 1.0) / pi
    denominator = float(np.sum(weight[labelled] * centred[labelled] ** 2))
    if denominator <= 0.0:
        return 1.0
    numerator = float(np.sum(weight[labelled] * strong[labelled] * centred[labelled]))
    return float(np.clip(numerator / denominator, 0.0, 1.0))


def ppi_mean(
    cheap,
    strong,
    labelled,
    pi,
    lam: float | None = None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    null: float = 0.0,
) -> MeanTest:
    """PPI++ estimate, CLT interval and z-test of E[Y] from every cheap score and the labelled strong ones.

    `cheap` (f_p) and `strong` (Y_p) are per-prompt differences; strong values of unlabelled prompts are
    ignored (NaN is fine). `labelled` is the boolean mask of prompts sent to the strong judge and `pi`
    their known labelling probabilities (a scalar for uniform labelling), in (0, 1]. `lam=None` uses
    `tuned_lambda`; lam = 0 ignores the cheap judge (the Horvitz-Thompson mean of the labels).

    NaN handling: a prompt whose cheap score is NaN is dropped (the target becomes E[Y] over prompts the
    cheap judge could score). A labelled prompt whose strong score is NaN is treated as unlabelled, and
    every pi is multiplied by the share of labelled prompts that got a strong score, the estimated
    probability of that; this is unbiased when strong failures are unrelated to Y (missing completely at
    random), which an unchanged pi would not be (it would shrink the estimate by the failure rate).
    """
    _check(alpha, alternative)
    f, y, mask, p = _arrays(cheap, strong, labelled, pi)
    keep = np.isfinite(f)
    f, y, mask, p = f[keep], y[keep], mask[keep], p[keep]
    usable = mask & np.isfinite(y)
    n_missing = int(mask.sum() - usable.sum())
    if n_missing:
        p = p * (usable.sum() / mask.sum())
    n, n_labelled = int(f.size), int(usable.sum())
    if n_labelled == 0:
        return MeanTest(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, n, 0, n_missing, alternative, "no strong labels")
    g = f - f.mean()
    y = np.where(usable, y, 0.0)
    lam_used = tuned_lambda(g, y, usable, p) if lam is None else float(lam)
    terms = lam_used * g + np.where(usable, (y - lam_used * g) / p, 0.0)
    estimate = float(terms.mean())
    if n_labelled < MIN_LABELLED:
        few = f"fewer than {MIN_LABELLED} strong labels"
        return MeanTest(estimate, _NAN, _NAN, _NAN, _NAN, lam_used, n, n_labelled, n_missing, alternative, few)
    se = float(np.std(terms, ddof=1) / math.sqrt(n))
    low, high, p_value = _z_result(estimate, se, alpha, alternative, null)
    note = None if math.isfinite(p_value) else "zero variance"
    return MeanTest(estimate, se, low, high, p_value, lam_used, n, n_labelled, n_missing, alternative, note)


def classical_mean(
    strong,
    labelled=None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    null: float = 0.0,
) -> MeanTest:
    """The strong judge alone: mean, CLT interval and z-test of the strong scores (of `labelled` ones if given).

    The comparison for `ppi_mean`: on every prompt it is what judging everything with the strong judge
    gives; on a uniformly labelled subset it is what the same budget gives without the cheap judge.
    NaN scores are dropped. se = sd(ddof=1) / sqrt(n).
    """
    _check(alpha, alternative)
    y = np.asarray(strong, dtype=float).ravel()
    if labelled is not None:
        y = y[np.asarray(labelled, dtype=bool).ravel()]
    y = y[np.isfinite(y)]
    n = int(y.size)
    if n < MIN_LABELLED:
        estimate = float(y.mean()) if n else _NAN
        return MeanTest(estimate, _NAN, _NAN, _NAN, _NAN, 0.0, n, n, 0, alternative, "fewer than 2 strong scores")
    estimate, se = float(y.mean()), float(np.std(y, ddof=1) / math.sqrt(n))
    low, high, p_value = _z_result(estimate, se, alpha, alternative, null)
    note = None if math.isfinite(p_value) else "zero variance"
    return MeanTest(estimate, se, low, high, p_value, 0.0, n, n, 0, alternative, note)


def _scaled(uncertainty: np.ndarray, budget: float, low: float) -> np.ndarray:
    """min(1, max(low, c·u)) with c chosen so that the probabilities sum to `budget`."""
    from scipy import optimize  # lazy: importing the pipeline stays quick

    positive = uncertainty > 0
    if not positive.any():
        return np.full(uncertainty.shape, budget / uncertainty.size)
    top = 1.0 / float(uncertainty[positive].min())  # from here on every positive u has pi = 1

    def total(c: float) -> np.ndarray:
        return np.minimum(1.0, np.maximum(low, c * uncertainty))

    if total(top).sum() < budget:  # not enough uncertain prompts: the certain ones share the rest
        pi = total(top)
        pi[~positive] = (budget - positive.sum()) / (~positive).sum()
        return pi
    c = optimize.brentq(lambda c: total(c).sum() - budget, 0.0, top, xtol=1e-12 * top)
    return total(c)


def choose_labels(cheap_uncertainty, budget: float, rng: np.random.Generator, floor: float = 0.2) -> LabelPlan:
    """Active labelling: pi_p proportional to the cheap judge's uncertainty, summing to `budget`, drawn once.

    `cheap_uncertainty` should estimate the standard deviation of Y_p − lam g_p (say, the spread of the
    cheap judge's per-answer probabilities): Zrnic & Candès (2024) show the variance-optimal pi is
    proportional to sqrt(E[(Y − lam g)² | prompt]). `budget` is the expected number of strong labels
    (sum pi; at least N labels everything). `floor` in (0, 1] keeps every pi at least floor · budget / N,
    a share of the uniform rate: the estimator needs pi > 0 everywhere to stay unbiased, and a tiny pi
    on a prompt whose proxy was wrong would blow up the variance. Probabilities are capped at 1.
    The plan must be fixed before the strong judge runs, and pi passed unchanged to `ppi_mean`.
    """
    u = np.asarray(cheap_uncertainty, dtype=float).ravel()
    if u.size == 0 or not np.all(np.isfinite(u) & (u >= 0)):
        raise ValueError("cheap_uncertainty must be a non-empty array of finite values >= 0")
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"floor must be in (0, 1], got {floor}")
    if not budget > 0:
        raise ValueError(f"budget must be positive, got {budget}")
    if budget >= u.size:
        pi = np.ones(u.size)
    else:
        pi = _scaled(u, float(budget), floor * budget / u.size)
    return LabelPlan(pi=pi, labelled=rng.random(u.size) < pi)


def agreement(cheap, strong, labelled) -> Agreement:
    """Sign agreement and correlation of the two judges on the labelled prompts where both scored."""
    f = np.asarray(cheap, dtype=float).ravel()
    y = np.asarray(strong, dtype=float).ravel()
    both = np.asarray(labelled, dtype=bool).ravel() & np.isfinite(f) & np.isfinite(y)
    f, y = f[both], y[both]
    n = int(f.size)
    if n == 0:
        return Agreement(0, _NAN, _NAN)
    sign = float(np.mean(np.sign(f) == np.sign(y)))
    if n < 2 or np.std(f) == 0 or np.std(y) == 0:
        return Agreement(n, sign, _NAN)
    return Agreement(n, sign, float(np.corrcoef(f, y)[0, 1]))

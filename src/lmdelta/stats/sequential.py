"""Anytime-valid tests for prompt-level differences, and FDR control with e-values.

A hypothesis is tested on per-prompt differences d_p in [-1, 1] (the mean of side b's bounded scores
on a prompt minus side a's), arriving a round of prompts at a time. Its evidence is a betting
e-process (Waudby-Smith & Ramdas 2023, "Estimating means of bounded random variables by betting",
JRSS-B 86(1)): x = (d + 1) / 2 lies in [0, 1] and has mean 1/2 under "no difference"; a gambler
starting with capital 1 bets on x exceeding (or falling short of) 1/2 with predictable stakes, and
the capital is a nonnegative martingale under the null. By Ville's inequality it crosses 1/alpha
with probability at most alpha at *any* time, so the data may be looked at after every round and
the test stopped whenever a hypothesis is clear, without inflating the type-I error. The null is
about the conditional mean of d for prompts drawn at random from a larger population (the prompts'
order is a seeded shuffle): "no difference on these P prompts, permuted" would need the
without-replacement version (WSR23 section 6).

- `betting_test`: the capital process, its e-value and anytime p-value (1 / running max capital), with
  growth-rate adaptive stakes (WSR23's aGRAPA: a Kelly bet on the mean and variance seen so far).
- `confidence_sequence`: the hedged capital process at every candidate mean on a grid, giving a
  time-uniform confidence interval for E[d] (reported with a finding).
- `upper_bound` / `lower_bound`: a one-sided confidence sequence with stakes tuned for a horizon, the
  futility rule's (tightest near the number of prompts a futility decision needs).
- `e_bh` (Wang & Ramdas 2022, JRSS-B 84(3)): FDR control for e-values under any dependence.
- `ELond` (Xu & Ramdas 2024, AISTATS, "Online multiple testing with e-values"): the online version.

Every stake is chosen from past observations only (predictable, WSR23 eq. 26 and section 5.1), which
is what makes the products martingales; the tests in tests/test_sequential.py check the formulas by hand
and the type-I error under optional stopping by simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Side = Literal["greater", "less", "two-sided"]
TRUNCATION = 0.5  # c in WSR23: a stake never risks more than half the capital at the worst outcome
# The test's own stakes (aGRAPA) after the first prompt: at most three quarters of the capital at the worst outcome
# (WSR23's other truncation, c = 3/4). Any predictable stake in [0, 1) keeps the test valid; the cap only decides how
# fast the capital can grow where the evidence is one-sided (a perfect prompt multiplies it by 1.75, not 1.5).
STAKE_CAP = 0.75
GRID = 1001  # candidate means for the confidence sequence: steps of 0.002 on the d scale
ROUND_GRID = 401  # the rounds' grid: steps of 0.005 (the cost is prompts × grid points, every round)


def _as_x(d) -> np.ndarray:
    """Differences in [-1, 1] (NaN dropped) as observations in [0, 1]."""
    d = np.asarray(d, dtype=float).ravel()
    d = d[~np.isnan(d)]
    if np.any(np.abs(d) > 1 + 1e-12):
        raise ValueError("prompt-level differences must lie in [-1, 1]")
    return np.clip((d + 1.0) / 2.0, 0.0, 1.0)


def plugin_stakes(x: np.ndarray, alpha: float) -> np.ndarray:
    """WSR23's predictable plug-in stakes for a confidence sequence: stake t uses x_1..x_{t-1} only,
    lambda_t = sqrt(2 log(2/alpha) / (sigma2_{t-1} t log(1 + t))) (`_running_estimates`)."""
    t = np.arange(1, x.size + 1, dtype=float)
    _, sigma2 = _running_estimates(x)
    return np.sqrt(2.0 * np.log(2.0 / alpha) / (sigma2 * t * np.log1p(t)))


def _running_estimates(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Before each observation t, the regularised mean and variance of x_1..x_{t-1} (WSR23 eq. 26: a prior
    observation of mean 1/2 and variance 1/4), so that stakes built from them are predictable."""
    t = np.arange(1, x.size + 1, dtype=float)
    mu = (0.5 + np.cumsum(x)) / (t + 1.0)
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2)) / (t + 1.0)
    return np.concatenate([[0.5], mu[:-1]]), np.concatenate([[0.25], sigma2[:-1]])


def growth_stakes(x: np.ndarray, m: float, sign: int) -> np.ndarray:
    """WSR23's aGRAPA stakes for a one-directional bet at mean m (sign +1: on x > m, -1: on x < m): the
    growth-optimal stake of a gambler who believes the mean and variance seen so far,
    (mu_{t-1} - m) / (sigma2_{t-1} + (mu_{t-1} - m)^2), never negative (no bet against the alternative).
    Unlike the confidence sequence's plug-in stakes, which shrink like 1/sqrt(t log t) whatever the data
    show, these settle where the evidence grows fastest: on a real difference the capital grows at
    nearly the Kelly rate, so a test reaches its threshold on fewer prompts (measured in
    benchmarks/adaptive.py). The cap (STAKE_CAP in `betting_test`) is applied by `_capital`. The first prompt,
    with nothing seen, is staked at TRUNCATION's cap (as the plug-in stakes are): half the capital at the worst
    outcome, so one unlucky first prompt costs no more than half."""
    mu, sigma2 = _running_estimates(x)
    gap = sign * (mu - m)
    stakes = np.maximum(gap, 0.0) / (sigma2 + gap**2)
    stakes[:1] = TRUNCATION / (m if sign > 0 else 1.0 - m)
    return stakes


def horizon_stakes(x: np.ndarray, alpha: float, horizon: float) -> np.ndarray:
    """Stakes of a confidence sequence tuned for `horizon` observations: sqrt(2 log(1/alpha) /
    (sigma2_{t-1} horizon)), the constant bet that makes the one-sided bound tightest near that many
    prompts (WSR23 section 3.3 with t log(1+t) replaced by a fixed horizon). Early on the bound is
    loose, so a real effect is not written off on a handful of unlucky prompts."""
    _, sigma2 = _running_estimates(x)
    return np.sqrt(2.0 * np.log(1.0 / alpha) / (sigma2 * horizon))


def _capital(x: np.ndarray, stakes: np.ndarray, m: np.ndarray, sign: int, c: float = TRUNCATION) -> np.ndarray:
    """Capital after each observation, for every candidate mean m (rows: time, columns: m).

    sign +1 bets on x > m with stake min(stakes, c/m); sign -1 bets on x < m with min(stakes, c/(1-m)).
    """
    m = np.asarray(m, dtype=float).reshape(1, -1)
    with np.errstate(divide="ignore"):
        cap = c / (m if sign > 0 else 1.0 - m)
    stake = np.minimum(stakes.reshape(-1, 1), cap)
    factors = 1.0 + sign * stake * (x.reshape(-1, 1) - m)
    with np.errstate(over="ignore"):  # a capital past 1e308 is inf: it rejects all the same
        return np.exp(np.cumsum(np.log(np.maximum(factors, 1e-300)), axis=0))


def _hedged(x: np.ndarray, stakes: np.ndarray, m: np.ndarray, side: Side) -> np.ndarray:
    """The capital of the bet `side` asks for: one direction, or half the capital on each (two-sided)."""
    if side == "greater":
        return _capital(x, stakes, m, +1)
    if side == "less":
        return _capital(x, stakes, m, -1)
    return 0.5 * _capital(x, stakes, m, +1) + 0.5 * _capital(x, stakes, m, -1)


@dataclass(frozen=True)
class BettingResult:
    """A betting test after n prompts: the capital after each prompt (the e-process), the final e-value,
    and the anytime-valid p-value (1 / the largest capital so far, at most 1)."""

    capital: np.ndarray = field(repr=False)
    n: int
    e_value: float
    p_value: float
    alpha: float

    @property
    def rejected(self) -> bool:
        """Whether the capital has ever reached 1/alpha (by Ville's inequality, P <= alpha under the null)."""
        return self.p_value <= self.alpha


def betting_test(d, side: Side = "greater", alpha: float = 0.05) -> BettingResult:
    """Test E[d] = 0 against E[d] > 0 (greater), < 0 (less) or != 0 (two-sided), anytime-valid.

    `d` holds the prompt-level differences in the order they were observed; the result may be read
    after every round and the test stopped at any data-dependent time.
    """
    if side not in ("greater", "less", "two-sided"):
        raise ValueError(f"side must be greater, less or two-sided, not {side!r}")
    x = _as_x(d)
    if x.size == 0:
        return BettingResult(np.ones(0), 0, 1.0, 1.0, alpha)
    capital = _bet(x, side)
    return BettingResult(capital, x.size, float(capital[-1]), float(min(1.0, 1.0 / capital.max())), alpha)


def _bet(x: np.ndarray, side: Side) -> np.ndarray:
    """The capital after each observation of a bet against mean 1/2: aGRAPA stakes in the asked
    direction, capped at STAKE_CAP, or half the capital on each direction (two-sided)."""
    half = np.array([0.5])
    if side == "two-sided":
        return 0.5 * _bet(x, "greater") + 0.5 * _bet(x, "less")
    sign = 1 if side == "greater" else -1
    return _capital(x, growth_stakes(x, 0.5, sign), half, sign, STAKE_CAP)[:, 0]


@dataclass(frozen=True)
class ConfidenceSequence:
    """A time-uniform (1 - alpha) confidence interval for E[d] after n prompts: the running
    intersection of the sets of means the hedged capital has not rejected."""

    low: float
    high: float
    n: int
    alpha: float

    def excludes_above(self, effect: float) -> bool:
        """Whether every mean difference of at least `effect` (> 0) is ruled out (futility for b > a)."""
        return self.high < effect

    def excludes_below(self, effect: float) -> bool:
        """Whether every mean difference of at most -`effect` is ruled out (futility for a > b)."""
        return self.low > -effect


def confidence_sequence(d, alpha: float = 0.05, grid: int = GRID) -> ConfidenceSequence:
    """The hedged-capital confidence sequence for E[d] (WSR23 Theorem 3) over candidate means on a grid;
    the interval after the last prompt, intersected over all earlier prompts."""
    return confidence_sequences(d, (alpha,), grid)[0]


def confidence_sequences(d, alphas: Sequence[float], grid: int = GRID) -> list[ConfidenceSequence]:
    """Confidence sequences at several levels from one capital process (stakes tuned for alphas[0]): any
    predictable stakes give a valid sequence at every level, so a cheaper, looser one (a futility rule's)
    costs nothing more than reading the same capitals against another threshold."""
    x = _as_x(d)
    if x.size == 0:
        return [ConfidenceSequence(-1.0, 1.0, 0, alpha) for alpha in alphas]
    m = np.linspace(0.0, 1.0, grid)
    capital = _hedged(x, plugin_stakes(x, alphas[0]), m, "two-sided")
    peak = np.maximum.accumulate(capital, axis=0)[-1]
    return [_kept_interval(m, peak < 1.0 / alpha, x.size, alpha) for alpha in alphas]


def upper_bound(d, alpha: float, horizon: float, grid: int = GRID) -> float:
    """A time-uniform (1 - alpha) upper confidence bound for E[d], one-sided, with stakes tuned for `horizon`
    prompts (`horizon_stakes`): the largest candidate mean that no bet on "the mean is lower" has ever
    rejected, over every prefix of d. 1 when nothing is known (no prompts, or a miscoverage event)."""
    x = _as_x(d)
    if x.size == 0:
        return 1.0
    m = np.linspace(0.0, 1.0, grid)
    peak = np.maximum.accumulate(_capital(x, horizon_stakes(x, alpha, horizon), m, -1), axis=0)[-1]
    kept = m[peak < 1.0 / alpha]
    return 1.0 if kept.size == 0 else 2.0 * min(1.0, kept.max() + 1.0 / (grid - 1)) - 1.0


def lower_bound(d, alpha: float, horizon: float, grid: int = GRID) -> float:
    """The mirror of `upper_bound`: a time-uniform (1 - alpha) lower confidence bound for E[d]."""
    d = np.asarray(d, dtype=float)
    return -upper_bound(-d, alpha, horizon, grid)


def _kept_interval(m: np.ndarray, kept_mask: np.ndarray, n: int, alpha: float) -> ConfidenceSequence:
    kept = m[kept_mask]
    if kept.size == 0:  # the running intersection is empty: a miscoverage event (probability <= alpha)
        return ConfidenceSequence(-1.0, 1.0, n, alpha)  # claims nothing, so it never signals futility
    step = 1.0 / (m.size - 1)
    low, high = max(0.0, kept.min() - step), min(1.0, kept.max() + step)  # conservative between points
    return ConfidenceSequence(2 * low - 1, 2 * high - 1, n, alpha)


def e_bh(e_values: Sequence[float], alpha: float = 0.05) -> np.ndarray:
    """e-BH at level alpha (Wang & Ramdas 2022): reject the k* largest e-values, k* the largest k with
    e_(k) >= K / (alpha k), K counting every hypothesis (a NaN e-value is no evidence: 0). FDR <= alpha
    under any dependence between the e-values."""
    e = np.nan_to_num(np.asarray(e_values, dtype=float).ravel(), nan=0.0)
    if np.any(e < 0):
        raise ValueError("e-values are nonnegative")
    reject = np.zeros(e.size, dtype=bool)
    if e.size == 0:
        return reject
    order = np.argsort(-e, kind="stable")
    k = np.arange(1, e.size + 1)
    passing = np.flatnonzero(e[order] >= e.size / (alpha * k))
    if passing.size:
        reject[order[: passing[-1] + 1]] = True
    return reject


class ELond:
    """e-LOND (Xu & Ramdas 2024): the t-th e-value is rejected when e_t >= 1 / alpha_t, with
    alpha_t = alpha gamma_t (R_{t-1} + 1), R_{t-1} the rejections before it and gamma a nonincreasing
    sequence summing to at most one. FDR <= alpha at every time, under any dependence."""

    def __init__(self, alpha: float, gamma) -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.t = 0
        self.rejections = 0

    def level(self) -> float:
        """alpha_t for the next e-value."""
        return float(self.alpha * self.gamma(self.t + 1) * (self.rejections + 1))

    def test(self, e_value: float) -> bool:
        level = self.level()
        self.t += 1
        reject = bool(not np.isnan(e_value) and e_value * level >= 1.0)  # an overflowed capital (inf) rejects
        self.rejections += reject
        return reject

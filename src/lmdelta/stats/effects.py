"""Effect sizes with confidence intervals, so that a tiny effect on huge n looks tiny.

The prompt is the independent unit of every interval, never the text, so intervals keep the
within-prompt correlation. The pipeline's intervals (`mean_ci`, `auc_ci`, `prevalence_ci`) are
t-based and were chosen by their coverage at 5-50 prompts (docs/statistics.md, section 7); the
percentile bootstraps (`bootstrap_mean_ci`, `auc_ci_by_prompt`) under-cover at few prompts and
are kept for the calibration benchmark's comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lmdelta.stats.ragged import flatten

if TYPE_CHECKING:
    from scipy import sparse

# Elements per bootstrap chunk: small enough that a chunk's weight matrix stays in cache
# (about three times faster than one large chunk at 500 prompts).
_CHUNK_ELEMENTS = 1 << 18
# A block of AUC replicates has temporaries of about this many elements (float64: 2 MB)
# however many prompts and texts there are; more is no faster.
_AUC_BLOCK_ELEMENTS = 1 << 18

Interval = tuple[float, float, float]
# Values whose spread is below this share of their scale (at least 1) are equal up to rounding:
# 0.7 - 0.4 and 0.3 - 0.0 differ by one ulp, and an interval from that "spread" has width ~1e-16.
_SPREAD_TOL = 1e-12
_NAN3: Interval = (float("nan"), float("nan"), float("nan"))
_NAN = float("nan")

# Fewest prompts for an AUC interval: with 2-3 the clustered variance is often zero, and at 3
# prompts intervals covered as little as 0.82 (AUC 0.84) and 0.24 (AUC 0.98); from 5 they covered
# 0.92-0.98 below an AUC of 0.9 (docs/statistics.md, section 7).
AUC_MIN_PROMPTS = 5


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval, or the reason it has none.

    `low`/`high` are NaN when no honest interval exists, and `note` says why (None otherwise).
    `se` and `df` are what a t interval at another level needs (`t_interval`), for example a
    selection-adjusted one; NaN where undefined.
    """

    value: float
    low: float = _NAN
    high: float = _NAN
    se: float = _NAN
    df: float = _NAN
    note: str | None = None

    @property
    def interval(self) -> Interval:
        return self.value, self.low, self.high


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap replicates, ignoring undefined ones."""
    tail = 100.0 * (1.0 - level) / 2.0
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _prompt_weights(n_prompts: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """(n_draws, P) multiplicities of each prompt in a bootstrap resample of P prompts."""
    picks = rng.integers(0, n_prompts, size=(n_draws, n_prompts))
    flat = picks + n_prompts * np.arange(n_draws)[:, None]
    return np.bincount(flat.ravel(), minlength=n_draws * n_prompts).reshape(n_draws, n_prompts).astype(float)


def _bootstrap_chunks(n_prompts: int, n_resamples: int, rng: np.random.Generator):
    step = max(1, _CHUNK_ELEMENTS // max(1, n_prompts))
    for start in range(0, n_resamples, step):
        yield start, _prompt_weights(n_prompts, min(step, n_resamples - start), rng)


def bootstrap_mean_ci(d, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """(mean, low, high) of per-prompt differences, percentile bootstrap over prompts.

    One prompt gives (d, d, d): there is no spread to resample. No data gives NaNs.
    """
    _check_level(level)
    d = np.asarray(d, dtype=float).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        return _NAN3
    mean = float(d.mean())
    if d.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_resamples))
    step = max(1, _CHUNK_ELEMENTS // d.size)
    for start in range(0, int(n_resamples), step):
        picks = rng.integers(0, d.size, size=(min(step, int(n_resamples) - start), d.size))
        means[start : start + picks.shape[0]] = d[picks].mean(axis=1)
    low, high = _percentile_interval(means, level)
    return mean, low, high


def t_interval(value: float, se: float, df: float, level: float = 0.95) -> tuple[float, float]:
    """value -/+ t_{df, (1+level)/2} se; NaN when se or df is undefined."""
    from scipy import stats

    _check_level(level)
    if not (math.isfinite(se) and math.isfinite(df) and df > 0):
        return _NAN, _NAN
    half = float(stats.t.ppf(0.5 + level / 2.0, df)) * se
    return value - half, value + half


def mean_ci(d, level: float = 0.95) -> Estimate:
    """Mean of per-prompt differences with a t interval over prompts: mean -/+ t_{n-1} s / sqrt(n).

    Covers 0.95 from 5 prompts in the simulations where the percentile bootstrap covered 0.83
    (docs/statistics.md, section 7). No interval for one prompt, or when every prompt gives the
    same difference: there is no spread between prompts to measure the uncertainty with.
    """
    d = _finite(d)
    if d.size == 0:
        return Estimate(_NAN, note="no prompt has answers of both sides")
    mean = float(d.mean())
    if d.size == 1:
        return Estimate(mean, note="one prompt: no spread between prompts to build an interval from")
    if no_spread(d):
        return Estimate(
            mean, note=f"all {d.size} prompts give the same difference: no spread to build an interval from"
        )
    se = float(d.std(ddof=1)) / math.sqrt(d.size)
    low, high = t_interval(mean, se, d.size - 1, level)
    return Estimate(mean, low, high, se, float(d.size - 1))


def welch_ci(scores_a, scores_b, level: float = 0.95) -> Estimate:
    """mean(b) - mean(a) over independent texts with a Welch t interval (Welch-Satterthwaite df)."""
    a, b = _finite(scores_a), _finite(scores_b)
    if a.size == 0 or b.size == 0:
        return Estimate(_NAN, note="a side has no scored text")
    mean = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return Estimate(mean, note="a side has one text: no spread to build an interval from")
    var_a, var_b = (0.0 if no_spread(x) else float(x.var(ddof=1)) / x.size for x in (a, b))
    if var_a + var_b == 0:
        return Estimate(mean, note="every text of each side scores the same: no spread to build an interval from")
    se = math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (a.size - 1) + var_b**2 / (b.size - 1))
    low, high = t_interval(mean, se, df, level)
    return Estimate(mean, low, high, se, float(df))


def clustered_welch_ci(clusters_a: Sequence, clusters_b: Sequence, level: float = 0.95) -> Estimate:
    """mean(b texts) - mean(a texts) when each side's texts come in independent clusters (an
    unaligned corpus with corpus.columns.cluster), with a cluster-robust Welch t interval.

    clusters_a[c] holds the scores of a's c-th cluster (likewise b). Each side's mean is a ratio
    sum / count over its C clusters, with the cluster-robust variance v = C/(C-1) sum_c (y_c - m n_c)^2 / N^2
    (y_c, n_c: cluster c's sum and size; N, m: the side's texts and mean), and the df are
    Welch-Satterthwaite's with C - 1 per side. With one text per cluster this is welch_ci exactly.
    """
    (mean_a, var_a, c_a), (mean_b, var_b, c_b) = _clustered_mean(clusters_a), _clustered_mean(clusters_b)
    if c_a == 0 or c_b == 0:
        return Estimate(_NAN, note="a side has no scored text")
    mean = mean_b - mean_a
    if c_a < 2 or c_b < 2:
        return Estimate(mean, note="a side has one cluster: no spread between clusters to build an interval from")
    if var_a + var_b == 0:
        return Estimate(mean, note="every cluster of each side has the same mean: no spread to build an interval from")
    se = math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (c_a - 1) + var_b**2 / (c_b - 1))
    low, high = t_interval(mean, se, df, level)
    return Estimate(mean, low, high, se, float(df))


def _clustered_mean(clusters: Sequence) -> tuple[float, float, int]:
    """(mean over all texts, its cluster-robust variance, clusters with a text) of one side; the
    variance is 0 when the cluster means are equal up to rounding."""
    found = [x for x in (_finite(c) for c in clusters) if x.size]
    if not found:
        return _NAN, _NAN, 0
    sums = np.array([x.sum() for x in found])
    sizes = np.array([x.size for x in found], dtype=float)
    mean, count = float(sums.sum() / sizes.sum()), len(found)
    if count < 2:
        return mean, _NAN, count
    if no_spread(sums / sizes):
        return mean, 0.0, count
    return mean, count / (count - 1) * float(np.sum((sums - mean * sizes) ** 2)) / sizes.sum() ** 2, count


def no_spread(values: np.ndarray) -> bool:
    """True when the values are all equal up to rounding: their range is at most 1e-12 of the
    largest |value| (of 1 for values below 1). Judge scores and their differences live in [-1, 1],
    where real differences are far larger than that."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return True
    return float(np.ptp(values)) <= _SPREAD_TOL * max(1.0, float(np.max(np.abs(values))))


def auc(scores_b, scores_a) -> float:
    """P(random b text scores above random a text), ties counting 1/2: U_b / (n_a n_b)."""
    from scipy.stats import rankdata

    b = np.asarray(scores_b, dtype=float).ravel()
    a = np.asarray(scores_a, dtype=float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([b, a]))
    u_b = ranks[: b.size].sum() - b.size * (b.size + 1) / 2.0
    return float(u_b / (a.size * b.size))


def auc_ci_by_prompt(
    scores_a: Sequence, scores_b: Sequence, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """(auc, low, high) over all texts, with a cluster bootstrap that resamples whole prompts.

    scores_a[p] and scores_b[p] are the scores of prompt p's texts; texts of a prompt with only
    one side still count. A resample that draws prompt p w_p times has the AUC of its texts,
    AUC* = sum_i w_p(i) [sum_j w_q(j) (1{b_i > a_j} + 1/2 1{b_i = a_j})] / ((w' n_b)(w' n_a)),
    i over b texts and j over a texts. The texts are sorted once (`_placement`); a replicate
    then costs one pass over the texts (a sparse product, a cumulative sum, a dot product), in
    blocks of replicates of bounded size: memory linear in the number of texts, never prompts x
    prompts (a win matrix of 70,000 prompts needed 36.5 GiB). Win counts are half-integers summed
    in float64, exact below 2^52.
    """
    _check_level(level)
    placement, n_a, n_b = _placement(scores_a, scores_b)
    if placement is None:  # no texts on a side
        return _NAN3
    n_prompts = n_a.size
    point = float(_weighted_wins(placement, np.ones((1, n_prompts)))[0] / (n_a.sum() * n_b.sum()))
    rng = np.random.default_rng(seed)
    replicates = np.empty(int(n_resamples))
    rows = max(1, _AUC_BLOCK_ELEMENTS // (placement.shape[0] + n_prompts))
    for start, chunk in _bootstrap_chunks(n_prompts, int(n_resamples), rng):
        for first in range(0, chunk.shape[0], rows):
            weights = chunk[first : first + rows]
            # einsum, not @: BLAS takes milliseconds for a one-row product on a busy machine.
            texts = np.einsum("rp,p->r", weights, n_b) * np.einsum("rp,p->r", weights, n_a)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = _weighted_wins(placement, weights) / texts
            replicates[start + first : start + first + weights.shape[0]] = ratio
    low, high = _percentile_interval(replicates, level)
    return point, low, high


def _placement(scores_a: Sequence, scores_b: Sequence) -> tuple[sparse.csr_array | None, np.ndarray, np.ndarray]:
    """Sparse (2m, P) map from prompt weights to what the AUC needs (None without texts on a side),
    and the text counts per prompt of a and b.

    With the a texts sorted, b text i has lo_i a texts below it and hi_i not above it, so its
    weighted wins are (C(lo_i) + C(hi_i)) / 2, C(k) the total weight of the k lowest a texts.
    C is needed only at the m distinct values c_0 < ... < c_{m-1} of lo and hi: row t < m
    counts each prompt's a texts with rank in [c_{t-1}, c_t), so that a cumulative sum over
    rows gives C(c_t); row m + t counts 1/2 per b text of each prompt whose lo or hi is c_t.
    """
    if len(scores_a) != len(scores_b):
        raise ValueError(f"scores_a has {len(scores_a)} prompts, scores_b has {len(scores_b)}")
    from scipy import sparse

    a_list, b_list = [_finite(x) for x in scores_a], [_finite(x) for x in scores_b]
    n_a = np.array([x.size for x in a_list], dtype=int)
    n_b = np.array([x.size for x in b_list], dtype=int)
    if n_a.sum() == 0 or n_b.sum() == 0:
        return None, n_a.astype(float), n_b.astype(float)
    a_all, b_all = np.concatenate(a_list), np.concatenate(b_list)
    order = np.argsort(a_all, kind="stable")
    a_sorted, a_prompt = a_all[order], np.repeat(np.arange(n_a.size), n_a)[order]
    lo, hi = np.searchsorted(a_sorted, b_all, side="left"), np.searchsorted(a_sorted, b_all, side="right")
    cuts = np.unique(np.concatenate([lo, hi]))
    m = cuts.size
    a_row = np.searchsorted(cuts, np.arange(a_sorted.size), side="right")  # rank j in [c_{t-1}, c_t) -> t
    kept = a_row < m  # a texts at or above the last cut are above every b text
    b_prompt = np.repeat(np.arange(n_b.size), n_b)
    rows = np.concatenate([a_row[kept], m + np.searchsorted(cuts, lo), m + np.searchsorted(cuts, hi)])
    columns = np.concatenate([a_prompt[kept], b_prompt, b_prompt])
    values = np.concatenate([np.ones(int(kept.sum())), np.full(2 * b_all.size, 0.5)])
    placement = sparse.csr_array((values, (rows, columns)), shape=(2 * m, n_a.size))  # duplicates summed
    return placement, n_a.astype(float), n_b.astype(float)


def _weighted_wins(placement: sparse.csr_array, weights: np.ndarray) -> np.ndarray:
    """For each row w of weights (r, P): sum over b texts of w_p(i) x (weight of a texts below + 1/2 tied)."""
    m = placement.shape[0] // 2
    sums = placement @ np.ascontiguousarray(weights.T)  # (2m, r)
    return np.einsum("tr,tr->r", np.cumsum(sums[:m], axis=0), sums[m:])


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x[np.isfinite(x)]


def auc_ci(scores_a: Sequence, scores_b: Sequence, level: float = 0.95, min_prompts: int = AUC_MIN_PROMPTS) -> Estimate:
    """AUC over all texts with a prompt-clustered variance and a t_{P-1} interval on the logit scale.

    scores_a[p] and scores_b[p] are the scores of prompt p's texts (a prompt with one side still
    counts). The variance is Obuchowski's (1997) for clustered ROC data, the DeLong placement-value
    variance with the prompt as the cluster: with V10_p the summed placement values of prompt p's
    b texts (share of all a texts below each, ties 1/2), V01_p those of its a texts, A_p =
    V10_p - m_p AUC and B_p = V01_p - n_p AUC (m_p, n_p its b and a texts; M, N the totals),

        var = I10/(I10-1) sum A_p^2 / M^2 + I01/(I01-1) sum B_p^2 / N^2 + 2 I/(I-1) sum A_p B_p / (M N),

    I10, I01 and I the prompts with b texts, with a texts and with any text. The interval is
    logit(AUC) -/+ t_{I-1} se / (AUC (1 - AUC)), mapped back, so it stays inside (0, 1). Memory
    and time are linear in the texts (two sorts). `se` is on the AUC scale. No interval (note
    says why) with fewer than `min_prompts` prompts, an AUC of 0 or 1, or no spread.
    """
    _check_level(level)
    found = _placement_values(scores_a, scores_b)
    if found is None:
        return Estimate(_NAN, note="a side has no scored text")
    point, v10, v01, n_a, n_b = found
    clusters = int(((n_a + n_b) > 0).sum())
    if clusters < min_prompts:
        return Estimate(point, note=f"{clusters} prompts: an AUC interval needs at least {min_prompts}")
    if point in (0.0, 1.0):
        return Estimate(
            point, note=f"AUC = {point:g} (the sides' scores do not overlap): no interval on the logit scale"
        )
    se = _clustered_auc_se(point, v10, v01, n_a, n_b)
    if not se > 0:
        return Estimate(point, note="no spread between prompts to build an interval from")
    logit = math.log(point / (1.0 - point))
    low, high = t_interval(logit, se / (point * (1.0 - point)), clusters - 1, level)
    return Estimate(point, _expit(low), _expit(high), se, float(clusters - 1))


def _placement_values(scores_a: Sequence, scores_b: Sequence):
    """(AUC, V10 per prompt, V01 per prompt, a texts per prompt, b texts per prompt); None without texts on a side."""
    if len(scores_a) != len(scores_b):
        raise ValueError(f"scores_a has {len(scores_a)} prompts, scores_b has {len(scores_b)}")
    (a_all, n_a), (b_all, n_b) = flatten(scores_a), flatten(scores_b)
    n_a, n_b = n_a.astype(float), n_b.astype(float)
    if n_a.sum() == 0 or n_b.sum() == 0:
        return None
    a_sorted, b_sorted = np.sort(a_all), np.sort(b_all)
    # Twice the wins of each text (below + ties/2): integers, so the sums are exact in float64.
    twice_b = np.searchsorted(a_sorted, b_all, "left") + np.searchsorted(a_sorted, b_all, "right")
    twice_a = 2 * b_all.size - np.searchsorted(b_sorted, a_all, "left") - np.searchsorted(b_sorted, a_all, "right")
    point = float(twice_b.sum() / (2.0 * a_all.size * b_all.size))
    prompts = np.arange(n_a.size)
    v10 = np.bincount(np.repeat(prompts, n_b.astype(int)), twice_b / (2.0 * a_all.size), minlength=n_a.size)
    v01 = np.bincount(np.repeat(prompts, n_a.astype(int)), twice_a / (2.0 * b_all.size), minlength=n_a.size)
    return point, v10, v01, n_a, n_b


def _clustered_auc_se(point, v10, v01, n_a, n_b) -> float:
    """Obuchowski's (1997) standard error of the AUC with prompts as clusters (see auc_ci)."""
    total_b, total_a = n_b.sum(), n_a.sum()
    dev_b, dev_a = v10 - n_b * point, v01 - n_a * point
    with_b, with_a, with_any = int((n_b > 0).sum()), int((n_a > 0).sum()), int(((n_a + n_b) > 0).sum())
    if min(with_b, with_a) < 2:
        return _NAN
    var = (
        with_b / (with_b - 1) * np.sum(dev_b**2) / total_b**2
        + with_a / (with_a - 1) * np.sum(dev_a**2) / total_a**2
        + 2 * with_any / (with_any - 1) * np.sum(dev_b * dev_a) / (total_b * total_a)
    )
    return math.sqrt(var) if var > 0 else 0.0


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def prevalence(presence) -> float:
    """Share of texts in which the judge found the property (mean of 0/1); NaN without data."""
    x = _finite(presence)
    return float(x.mean()) if x.size else float("nan")


def prevalence_ci(presence_per_prompt: Sequence, level: float = 0.95) -> Estimate:
    """(prevalence over all texts, interval) by Korn & Graubard (1998): Clopper-Pearson with an
    effective sample size.

    The prompt-clustered variance of the ratio p = sum / count, v = P/(P-1) sum_p (y_p - p n_p)^2 / n^2,
    gives the design effect deff = v / (p (1-p) / n), kept >= 1 (deff = 1 when p is 0 or 1); the
    effective size n* = n / deff is scaled by (z / t_{P-1})^2 for the few prompts, and the
    Clopper-Pearson interval of p n* successes in n* trials is reported. Unlike a bootstrap or a
    Wald interval it does not collapse to [0, 0] for a rare property seen in no text: coverage
    >= 0.93 at prevalence 0.05-0.5 and 5-50 prompts (docs/statistics.md, section 7). Needs 2 prompts.
    """
    from scipy import stats

    _check_level(level)
    values, counts = flatten(presence_per_prompt)
    if values.size == 0:
        return Estimate(_NAN, note="no scored text")
    sums = np.bincount(np.repeat(np.arange(counts.size), counts), values, minlength=counts.size)[counts > 0]
    counts = counts[counts > 0].astype(float)
    n, n_prompts = counts.sum(), counts.size
    point = float(sums.sum() / n)
    if n_prompts < 2:
        return Estimate(point, note="one prompt: no spread between prompts to build an interval from")
    var = n_prompts / (n_prompts - 1) * float(np.sum((sums - point * counts) ** 2)) / n**2
    n_eff = min(n, point * (1 - point) / var) if 0 < point < 1 and var > 0 else n
    alpha = 1.0 - level
    n_eff *= (stats.norm.ppf(1 - alpha / 2) / stats.t.ppf(1 - alpha / 2, n_prompts - 1)) ** 2
    hits = point * n_eff
    low = float(stats.beta.ppf(alpha / 2, hits, n_eff - hits + 1)) if hits > 0 else 0.0
    high = float(stats.beta.ppf(1 - alpha / 2, hits + 1, n_eff - hits)) if hits < n_eff else 1.0
    return Estimate(point, low, high, math.sqrt(var), float(n_prompts - 1))

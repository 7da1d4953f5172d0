"""Hypothesis tests for "b differs from a", each valid for one sampling design.

Aligned prompts: sign-flip on per-prompt differences, the pipeline's only test (unequal answer
counts are balanced by subsampling before it, in lmdelta.validate.sets). The within-prompt label
permutation and Wilcoxon signed-rank test other nulls (exchangeability within prompts; symmetry
about a median) and are not reachable from the config: the calibration benchmark keeps them to
show by how much they over-reject under a weak null. Unaligned corpora: text-level permutation or
Mann-Whitney (texts assumed independent), or whole-cluster permutation (lmdelta.stats.cluster_tests).

Monte Carlo p-values are (1 + #{T* as extreme as T}) / (1 + R): valid at any R because the
observed labelling is counted as one of the draws. Comparisons carry a tolerance relative to
the data's scale so that resampled statistics equal to T up to rounding count as "as extreme".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Alternative = Literal["greater", "less", "two-sided"]
ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")

# Resampled statistics are recomputed with another summation order than T itself; 1e-10 of
# the largest |value| is far above that rounding error and far below any real gap between
# two distinct statistics of judge scores.
_REL_TOL = 1e-10
# Bounds the largest temporary array of a chunked resampling loop (elements, ~16 MB in float64).
_CHUNK_ELEMENTS = 1 << 21
# The Monte Carlo sign-flip's signs come in blocks of this many resamples, each block from its own generator
# (`_sign_block`). Part of the draw's definition: changing it changes every Monte Carlo p-value.
_RESAMPLE_BLOCK = 1024
# Bounds the Monte Carlo sign-flip's resampled sums, rows x R float64 (92 MB for 240 rows at R = 48,000): more rows
# are tested a group at a time, each group drawing the signs again.
_SUMS_BYTES = 1 << 28


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test. `n_units` counts the independent units used: prompts, texts or clusters."""

    __test__ = False  # not a pytest test class, despite the name

    statistic: float
    p_value: float
    method: str
    n_units: int
    alternative: str


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _check_resamples(n_resamples: int) -> None:
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")


def _tolerance(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Absolute tolerance for "T* ties T": relative to the largest |value| the statistic is built from."""
    if values.size == 0:
        return np.zeros(()) if axis is None else np.zeros(values.shape[0])
    # max |value| from the largest and the smallest value: no temporary |values| as large as the data
    return _REL_TOL * np.maximum(np.max(values, axis=axis), -np.min(values, axis=axis))


def _as_extreme(t_star: np.ndarray, t_obs, tol, alternative: str) -> np.ndarray:
    """Boolean mask of resampled statistics at least as extreme as the observed one (ties count)."""
    if alternative == "greater":
        return t_star >= t_obs - tol
    if alternative == "less":
        return t_star <= t_obs + tol
    return np.abs(t_star) >= np.abs(t_obs) - tol


def _monte_carlo_p(count, n_resamples: int):
    return (1.0 + count) / (1.0 + n_resamples)


def _chunk_rows(width: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, width))


# --- sign-flip on per-prompt differences ------------------------------------------------------


def paired_signflip(d, alternative: Alternative = "greater", n_resamples: int = 10_000, seed: int = 0) -> TestResult:
    """Sign-flip test of mean(d) over prompts; valid however strongly texts of one prompt correlate.

    Under the null the a/b labels are exchangeable within each prompt, so each d_p is
    symmetric about zero and every sign vector is equally likely. All 2^n sign vectors are
    enumerated when 2^n <= n_resamples (exact p, counting the identity); otherwise R random
    sign vectors are drawn from `seed`. Non-finite entries are dropped; no data gives p = NaN.
    """
    d = np.asarray(d, dtype=float).ravel()
    stats, p_values = paired_signflip_many(d[None, :], None, alternative, n_resamples, seed)
    n = int(np.isfinite(d).sum())
    return TestResult(float(stats[0]), float(p_values[0]), _signflip_method(n, n_resamples), n, alternative)


def _signflip_method(n: int, n_resamples: int) -> str:
    if is_exact(n, n_resamples):
        return f"paired_signflip(exact, 2^{n} sign vectors)"
    return f"paired_signflip(monte carlo, R={int(n_resamples)})"


def exact_up_to(n_resamples: int) -> int:
    """The most units whose 2^n sign vectors the sign-flip enumerates at R = n_resamples (2^n <= R)."""
    return int(n_resamples).bit_length() - 1


def is_exact(n: int, n_resamples: int) -> bool:
    """Whether the sign-flip over n units enumerates every sign vector (else it draws R of them)."""
    return 0 < n <= exact_up_to(n_resamples)


def smallest_p(n: int, n_resamples: int | None = None) -> float:
    """The smallest p-value the sign-flip over n units can give: 2^-n when it enumerates all 2^n
    sign vectors (2^n <= R), 1/(R+1) when it draws R of them (then 2^n > R, so 1/(R+1) >= 2^-n).
    Either way it is max(2^-n, 1/(R+1)); without R, 2^-n, the floor at any R."""
    floor = 2.0**-n
    return floor if n_resamples is None else max(floor, monte_carlo_floor(n_resamples))


def monte_carlo_floor(n_resamples: int) -> float:
    """The smallest Monte Carlo p-value, 1/(R+1): no draw as extreme as the observed statistic."""
    return float(_monte_carlo_p(0, int(n_resamples)))


def paired_signflip_many(
    D,
    mask=None,
    alternative: Alternative | Sequence[str] = "greater",
    n_resamples: int = 10_000,
    seed: int = 0,
    *,
    rows: Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sign-flip tests for many hypotheses at once; row h equals paired_signflip(D[h, mask[h]]).

    D is (H, P) per-prompt differences and mask marks the prompts each hypothesis has data for: an (H, P)
    array, or one P-long mask per row (None: all finite entries). Each row's valid prompts are taken in
    order, so row h with P_h prompts sees the first P_h rows of one shared (P, R) sign matrix drawn from
    `seed` -- exactly the signs paired_signflip(d, seed=seed) draws for a d of length P_h.
    The p-values of different rows are therefore computed from the same sign draws (they are
    dependent through the Monte Carlo error only). Rows with 2^P_h <= n_resamples are
    enumerated exactly. `alternative` is one for every row or one per row; `rows` picks the rows tested
    (default all). Returns (statistics, p_values) per tested row, NaN for rows without data. D is neither
    copied (when float64) nor changed: each row's prompts are read a chunk at a time by their positions.
    """
    _check_resamples(n_resamples)
    D = np.asarray(D, dtype=float)
    if D.ndim != 2:
        raise ValueError(f"D must be 2-D (hypotheses x prompts), got shape {D.shape}")
    picked = np.arange(D.shape[0]) if rows is None else np.asarray(rows, dtype=np.intp).reshape(-1)
    kinds = np.broadcast_to(np.asarray(alternative, dtype=object), picked.shape)
    for kind in set(kinds.tolist()):
        _check_alternative(kind)
    flip = kinds == "less"  # "less" on d is "greater" on -d: the same signs, the same tolerance
    usable = _Usable(D, mask, picked, flip)
    p_values = np.full(picked.shape, np.nan)
    for kind in ("greater", "two-sided"):
        which = np.flatnonzero((kinds == kind) | (flip if kind == "greater" else False))
        p_values[which] = _signflip_p(usable.subset(which), kind, int(n_resamples), seed)
    return np.where(flip, -usable.t_obs, usable.t_obs) + 0.0, p_values  # + 0.0: no -0.0 from the negation


def _signflip_p(usable: _Usable, alternative: str, n_resamples: int, seed: int) -> np.ndarray:
    """The p-values of `usable`'s rows: exact enumeration where 2^n <= R, else R signs drawn from `seed`."""
    n = usable.n
    p_values = np.full(n.shape, np.nan)
    exact = (n > 0) & (n <= exact_up_to(n_resamples))  # 2^n <= R
    for size in np.unique(n[exact]):
        rows = np.flatnonzero(n == size)
        part = usable.subset(rows)
        counts = _count_sign_flips(
            _exact_sign_blocks(int(size)), part.chunk(0, int(size)), part.t_obs, part.tol, alternative
        )
        p_values[rows] = counts / 2.0**size
    mc_rows = np.flatnonzero((n > 0) & ~exact)
    for group in _row_groups(mc_rows, n_resamples):
        counts = _monte_carlo_counts(usable.subset(group), alternative, n_resamples, seed)
        p_values[group] = _monte_carlo_p(counts, n_resamples)
    return p_values


def _row_groups(rows: np.ndarray, n_resamples: int) -> list[np.ndarray]:
    """The rows in groups whose (rows x R) resampled sums stay within _SUMS_BYTES (most calls: one group)."""
    per_group = max(1, _SUMS_BYTES // (8 * _RESAMPLE_BLOCK * -(-n_resamples // _RESAMPLE_BLOCK)))
    return [rows[i : i + per_group] for i in range(0, rows.size, per_group)]


class _Usable:
    """The tested rows' usable entries (finite, inside the row's mask), each row's in order: their positions in
    D (int32 where they fit; none kept for a row whose every entry is usable), the entries read a chunk of
    positions at a time, negated where `flip`. Per row: n, the observed mean, its sum and the tie tolerance."""

    def __init__(self, D: np.ndarray, mask, rows: np.ndarray, flip: np.ndarray) -> None:
        if mask is not None and not isinstance(mask, np.ndarray | list | tuple):
            mask = np.asarray(mask, dtype=bool)
        if isinstance(mask, np.ndarray) and mask.shape != D.shape:
            raise ValueError(f"mask shape {mask.shape} differs from D shape {D.shape}")
        index = np.int32 if D.shape[1] < 2**31 else np.int64
        self.D, self.rows, self.flip = D, rows, np.asarray(flip, dtype=bool)
        self.positions: list[np.ndarray | None] = []  # None: every entry of the row is usable
        self.n = np.zeros(rows.size, dtype=np.int64)
        self.total, self.tol = np.zeros(rows.size), np.zeros(rows.size)
        for k, row in enumerate(rows):
            keep = np.isfinite(D[row])
            if mask is not None:
                keep &= np.asarray(mask[row], dtype=bool)
            everything = bool(keep.all())
            self.positions.append(None if everything else np.flatnonzero(keep).astype(index))
            values = D[row].copy() if everything else D[row, self.positions[-1]]
            if self.flip[k]:
                np.negative(values, out=values)
            self.n[k], self.total[k] = values.size, values.sum()
            self.tol[k] = _tolerance(values) if values.size else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            self.t_obs = self.total / self.n

    def subset(self, which: np.ndarray) -> _Usable:
        """The same entries for the rows `which` (indices into this object's rows), nothing copied."""
        out = object.__new__(_Usable)
        out.D, out.rows, out.flip = self.D, self.rows[which], self.flip[which]
        out.positions = [self.positions[k] for k in which]
        out.n, out.total, out.tol, out.t_obs = self.n[which], self.total[which], self.tol[which], self.t_obs[which]
        return out

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """(rows, stop - start): row k's usable entries start..stop-1 in its order, zeros past its last one."""
        out = np.zeros((self.rows.size, stop - start))
        for k, (row, positions) in enumerate(zip(self.rows, self.positions)):
            part = self.D[row, start:stop] if positions is None else self.D[row, positions[start:stop]]
            out[k, : part.size] = part
        np.negative(out, out=out, where=self.flip[:, None])
        return out


def _sign_block(seed: int, block: int, width: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Resamples block*B .. block*B + B - 1 of the shared sign matrix (B = _RESAMPLE_BLOCK), for prompts 0..width-1,
    a chunk of prompts at a time: (start, stop, bits), bits (stop - start, B) float64 0/1 (1: the sign is +1).

    Block j is drawn from its own generator, PCG64(SeedSequence([seed, j])), prompt by prompt, B/64 raw 64-bit
    words a prompt: so a shorter width is a prefix, any block can be drawn without the others, and the whole
    P x R matrix never exists (at 1,000,000 prompts and R = 48,000 it would take 6 GB even bit-packed)."""
    bitgen = np.random.PCG64(np.random.SeedSequence([int(seed), int(block)]))
    step = _chunk_rows(_RESAMPLE_BLOCK)
    for start in range(0, width, step):
        stop = min(width, start + step)
        # no local holds the chunk: the generators of all blocks are alive at once (_monte_carlo_counts)
        yield start, stop, _bits(bitgen.random_raw((stop - start) * (_RESAMPLE_BLOCK // 64)), stop - start)


def _bits(raw: np.ndarray, prompts: int) -> np.ndarray:
    """Raw 64-bit words, B/64 a prompt, as a (prompts, B) float64 0/1 matrix, bit i of a prompt's words column i."""
    words = raw.astype("<u8", copy=False)
    return np.unpackbits(words.view(np.uint8).reshape(prompts, -1), axis=1, bitorder="little").astype(np.float64)


def _monte_carlo_counts(usable: _Usable, alternative: str, n_resamples: int, seed: int) -> np.ndarray:
    """For each row of `usable`, how many of R random sign vectors give a statistic at least as extreme as the
    observed one. With s_p = 2 bit_p - 1, T* = (2 sum_{bit_p = 1} d_p - sum_p d_p) / n: per chunk of prompts, the
    rows still holding prompts there times each block's bits, (rows x chunk) @ (chunk x B); each block's bits come
    from its own stream (`_sign_block`), all streams advanced together, so each chunk's entries are read once."""
    order = np.argsort(-usable.n, kind="stable")  # rows with more prompts first: a chunk's rows are a prefix
    usable = usable.subset(order)
    n, width, blocks = usable.n, int(usable.n.max()), -(-n_resamples // _RESAMPLE_BLOCK)
    ones = np.zeros((blocks, n.size, _RESAMPLE_BLOCK))
    streams = [_sign_block(seed, block, width) for block in range(blocks)]
    for start in range(0, width, _chunk_rows(_RESAMPLE_BLOCK)):
        live = int(np.sum(n > start))
        values = usable.subset(np.arange(live)).chunk(start, min(width, start + _chunk_rows(_RESAMPLE_BLOCK)))
        for block, stream in enumerate(streams):
            ones[block, :live] += values @ next(stream)[2]
    counts = np.zeros(n.size)
    for block in range(blocks):
        used = min(_RESAMPLE_BLOCK, n_resamples - block * _RESAMPLE_BLOCK)
        t_star = (2.0 * ones[block, :, :used] - usable.total[:, None]) / n[:, None]
        counts += _as_extreme(t_star, usable.t_obs[:, None], usable.tol[:, None], alternative).sum(axis=1)
    out = np.empty(n.size)
    out[order] = counts
    return out


def _exact_sign_blocks(n: int) -> Iterator[np.ndarray]:
    """All 2^n sign vectors, in blocks of rows, without materialising the whole matrix."""
    total = 2**n
    step = _chunk_rows(n)
    shifts = np.arange(n)
    for start in range(0, total, step):
        codes = np.arange(start, min(total, start + step))
        yield ((codes[:, None] >> shifts) & 1) * 2.0 - 1.0


def _count_sign_flips(blocks, packed, t_obs, tol, alternative) -> np.ndarray:
    """For each row, how many enumerated sign vectors give a statistic at least as extreme as the observed one."""
    n = packed.shape[1]
    counts = np.zeros(packed.shape[0])
    for signs in blocks:
        t_star = (signs @ packed.T) / n
        counts += _as_extreme(t_star, t_obs, tol, alternative).sum(axis=0)
    return counts


# --- label permutation within strata ----------------------------------------------------------


def within_prompt_permutation(
    scores_a: Sequence,
    scores_b: Sequence,
    alternative: Alternative = "greater",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> TestResult:
    """Permute a/b labels among each prompt's pooled scores, keeping both sides' counts per prompt.

    T = mean over prompts of (mean b_p - mean a_p). Prompts where a side has no (finite) score
    are dropped. Needs exchangeability within each prompt, a sharper null than the sign-flip's
    symmetry of d_p: when the models differ prompt by prompt but not on average it over-rejects
    (0.09-0.21 at alpha 0.05 in the 2026-12-01 audit), so the pipeline no longer uses it for
    unequal counts. Kept for text_permutation, within-cluster permutation and the benchmark.
    """
    _check_alternative(alternative)
    _check_resamples(n_resamples)
    strata = _strata(scores_a, scores_b)
    if not strata:
        return TestResult(float("nan"), float("nan"), "within_prompt_permutation(no usable prompts)", 0, alternative)
    t_obs = float(np.mean([b.mean() - a.mean() for a, b in strata]))
    t_star = _stratified_null(strata, int(n_resamples), np.random.default_rng(seed))
    tol = _tolerance(np.concatenate([np.concatenate(s) for s in strata]))
    count = _as_extreme(t_star, t_obs, tol, alternative).sum()
    method = f"within_prompt_permutation(monte carlo, R={int(n_resamples)})"
    return TestResult(t_obs, float(_monte_carlo_p(count, int(n_resamples))), method, len(strata), alternative)


def _strata(scores_a: Sequence, scores_b: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """(a, b) score arrays per prompt, non-finite scores dropped, prompts missing a side dropped."""
    if len(scores_a) != len(scores_b):
        raise ValueError(f"scores_a has {len(scores_a)} prompts, scores_b has {len(scores_b)}")
    strata = []
    for a, b in zip(scores_a, scores_b):
        a = np.asarray(a, dtype=float).ravel()
        b = np.asarray(b, dtype=float).ravel()
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if a.size and b.size:
            strata.append((a, b))
    return strata


def _stratified_null(strata, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """R draws of T under within-stratum label permutation; strata of equal counts are vectorised.

    mean(b*) - mean(a*) = sum_b* (1/n_b + 1/n_a) - total/n_a, so only the sum of the scores that
    land on side b is needed: the n_b smallest of m uniform keys pick a uniform n_b-subset.
    """
    groups: dict[tuple[int, int], list[np.ndarray]] = {}
    for a, b in strata:
        groups.setdefault((a.size, b.size), []).append(np.concatenate([a, b]))
    t_star = np.zeros(n_resamples)
    for (n_a, n_b), pooled in groups.items():
        X = np.stack(pooled)
        totals = X.sum(axis=1)
        step = _chunk_rows(X.size)
        for start in range(0, n_resamples, step):
            stop = min(n_resamples, start + step)
            sum_b = _random_subset_sums(X, n_b, stop - start, rng)
            t_star[start:stop] += (sum_b * (1.0 / n_b + 1.0 / n_a) - totals / n_a).sum(axis=1)
    return t_star / len(strata)


def _random_subset_sums(X: np.ndarray, k: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """(n_draws, G) sums of a uniformly random k-subset of each row of X (G, m), independently."""
    keys = rng.random((n_draws,) + X.shape)
    # 53-bit keys: a tie at the cut, which would pick k+1 items, has probability ~1e-13 per row.
    cut = np.partition(keys, k - 1, axis=-1)[..., k - 1 : k]
    return np.einsum("rgm,gm->rg", keys <= cut, X)


def text_permutation(
    scores_a, scores_b, alternative: Alternative = "greater", n_resamples: int = 10_000, seed: int = 0
) -> TestResult:
    """Permutation test of mean(b) - mean(a) over texts, for unaligned corpora.

    Assumes texts are independent (e.g. one sample per prompt); with several samples of one
    prompt use a paired test or cluster_permutation instead.
    """
    result = within_prompt_permutation([scores_a], [scores_b], alternative, n_resamples, seed)
    n_texts = int(np.isfinite(np.asarray(scores_a, float)).sum() + np.isfinite(np.asarray(scores_b, float)).sum())
    method = f"text_permutation(monte carlo, R={int(n_resamples)})"
    return TestResult(result.statistic, result.p_value, method, n_texts if result.n_units else 0, alternative)


# --- rank tests (scipy) ------------------------------------------------------------------------


def wilcoxon_signed_rank(d, alternative: Alternative = "greater") -> TestResult:
    """Wilcoxon signed-rank test on per-prompt differences, for the calibration benchmark only.

    It tests symmetry about zero (a median), not a zero mean difference: under skewed d_p with
    mean zero it rejected 0.27 at alpha 0.05 (50 prompts, 2026-12-01 audit), which is why
    `validate.test: wilcoxon` was removed. Zero differences are ranked and then dropped (Pratt);
    all-zero d gives p = 1.
    """
    from scipy import stats

    _check_alternative(alternative)
    d = np.asarray(d, dtype=float).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        return TestResult(float("nan"), float("nan"), "wilcoxon_signed_rank(no data)", 0, alternative)
    if not np.any(d):
        return TestResult(0.0, 1.0, "wilcoxon_signed_rank(all differences zero)", int(d.size), alternative)
    result = stats.wilcoxon(d, zero_method="pratt", alternative=alternative)
    return TestResult(
        float(result.statistic), float(result.pvalue), "wilcoxon_signed_rank(pratt)", int(d.size), alternative
    )


def mann_whitney(scores_a, scores_b, alternative: Alternative = "greater") -> TestResult:
    """Mann-Whitney U over texts (statistic U of b): valid only if texts are independent.

    Kept for unaligned corpora with one text per prompt and to measure, in the calibration
    benchmark, how far it over-rejects when several texts share a prompt (the reference's test).
    """
    from scipy import stats

    _check_alternative(alternative)
    a = np.asarray(scores_a, dtype=float).ravel()
    b = np.asarray(scores_b, dtype=float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return TestResult(
            float("nan"), float("nan"), "mann_whitney(a side is empty)", int(a.size + b.size), alternative
        )
    result = stats.mannwhitneyu(b, a, alternative=alternative)
    return TestResult(
        float(result.statistic), float(result.pvalue), "mann_whitney(texts i.i.d.)", int(a.size + b.size), alternative
    )

"""Calibration of lmdelta's tests and intervals (docs/statistics.md section 9, STATISTICS.md section 7).

Simulated judge scores with a prompt random effect (latent = prompt effect + text noise, score =
logistic(latent); the presence judge draws 0/1 with that probability). Every number comes from
lmdelta's own code: the pipeline's test is `validate.significance.paired_differences` + `hypothesis_tests` (balanced
subsample, then the vectorised sign-flip), the intervals are `effects.mean_ci`, `auc_ci`,
`prevalence_ci` and `stages.decide.fcr_intervals`, the null control is `pairdata.null_pair`
summarised by `report.null_control.summarize_null`. Options lmdelta removed (Wilcoxon, the
within-prompt permutation fallback, percentile bootstraps) run from `lmdelta.stats`, where they are
kept for this comparison, and are labelled as such.

1. type-I error of each test, and of the reference's Mann-Whitney over texts (latent ICC 0.5,
   20 samples per prompt and side);
2. unequal answer counts (5% unscorable texts; 1 a vs 4 b answers) under a weak null: the old
   within-prompt permutation fallback against the balanced sign-flip, per test and end to end
   (BH over 20 null hypotheses);
3. skewed per-prompt differences with mean zero: the sign-flip (which assumes symmetric d_p) and
   Wilcoxon (removed);
4. coverage at 5-50 prompts: mean difference, AUC and prevalence intervals, old and new;
5. unaligned corpora whose texts share hidden prompts: text-level tests against whole-cluster
   permutation, and the pipeline with corpus.cluster ids;
6. validated (selected) findings: plain against FCR-adjusted intervals;
7. the random-relabelling null control: how often it flags a test that over-rejects;
8. FDR and power of BH, BY, SAFFRON, ADDIS and LORD++ over mixed streams, next to the reference;
9. power of the sign-flip against effect size x prompt count; 10. timing at pipeline scale;
11. the sequential mode (`validate.mode: sequential`, `validate.sequential.run_rounds` + `decide`):
   type-I error of the betting e-process under optional stopping (stopped at the first round, or
   the first prompt, whose e-value reaches 1/alpha) under the null designs above, and FDR, power and
   cost of e-BH over families of 20 hypotheses against the fixed sign-flip + BH at equal cost.

Verdicts use the Clopper-Pearson 95% interval of a rejection rate: "over-rejects" when its lower
end is above alpha, "conservative" when its upper end is below alpha, else "consistent with alpha".

    .venv/bin/python benchmarks/calibration.py [--quick] [--seed 2024] [--out PATH] [--only SECTION ...]

The full run takes 8-12 minutes on 2 shared cores (section 11 about 1.5-2 of them); --quick (1-2
minutes) uses far fewer data sets, so its intervals are wide and its verdicts are hints for
development, not findings. --only runs the named sections alone, with the same seeds as a whole run.

Writes benchmarks/results/calibration.json (with --only and no --out, calibration-SECTION.json, so
that a partial run never overwrites the whole one) and prints the tables as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy import optimize, stats

from lmdelta.config import ValidateConfig
from lmdelta.pairdata import PairData, null_pair
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.report.null_control import summarize_null
from lmdelta.stages.decide import e_lond, fcr_intervals
from lmdelta.stats import cluster_tests, effects, fdr
from lmdelta.stats import tests as st
from lmdelta.stats.sequential import betting_test
from lmdelta.validate import sequential as seq
from lmdelta.validate.sequential import Rounds
from lmdelta.validate.sets import ValidationSet, balanced_differences, score_lists
from lmdelta.validate.significance import hypothesis_tests, paired_differences, resamples_for

ALPHA = 0.05
ICC = 0.5
SAMPLES = 20  # per prompt and side (section 1)
PROMPT_COUNTS = (20, 50, 100)
SIGNFLIP_R = 10_000  # resamples of the sign-flip test, as in the pipeline
PERMUTATION_R = 999  # resamples of the slower permutation tests (valid at any R; coarser p-values)
INTERACTION_SD = 0.3  # latent SD of the prompt x side effect in section 1's weak-null rows
RESULTS = Path(__file__).parent / "results" / "calibration.json"

# The audit's design (sections 2, 4, 6, 7): k answers a side, latent prompt x side interaction SD 0.5.
K = 4
INTERACTION = 0.5
NAN_RATE = 0.05
COVERAGE_TARGET = 0.93

FULL = {
    "null_sets": 2000,
    "slow_null_sets": 1000,
    "streams": 200,
    "power_sets": 500,
    "unequal_runs": 1000,
    "old_runs": 300,
    "unequal_sets": 2000,
    "old_unequal_sets": 1000,
    "skew_sets": 4000,
    "wilcoxon_sets": 2000,
    "coverage_sets": 2000,
    "bootstrap_sets": 1000,
    "unaligned_sets": 4000,
    "selection_runs": 300,
    "control_runs": 1000,
    "old_control_runs": 300,
    "sequential_sets": 2000,
    "sequential_checks": 10,
    "sequential_families": 100,
}
QUICK = {
    "null_sets": 300,
    "slow_null_sets": 100,
    "streams": 40,
    "power_sets": 150,
    "unequal_runs": 100,
    "old_runs": 30,
    "unequal_sets": 300,
    "old_unequal_sets": 100,
    "skew_sets": 500,
    "wilcoxon_sets": 300,
    "coverage_sets": 300,
    "bootstrap_sets": 100,
    "unaligned_sets": 300,
    "selection_runs": 40,
    "control_runs": 100,
    "old_control_runs": 40,
    "sequential_sets": 300,
    "sequential_checks": 4,
    "sequential_families": 12,
}

# What lmdelta does with each test or interval (a column of every table).
SHIPS = "ships"
SHIPS_ASSUMPTION = "ships (assumes symmetric d_p)"
REMOVED_WILCOXON = "removed (config refuses it)"
REMOVED_FALLBACK = "removed (old unequal-count fallback)"
REMOVED_INTERVAL = "removed (old interval)"
REFERENCE = "not used (reference's test)"
STATS_ONLY = "lmdelta.stats only (not reachable)"
SYNTHETIC = "synthetic (over-rejects on purpose)"


def main() -> None:
    args = parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "parameters": {
            "alpha": ALPHA,
            "icc_latent": ICC,
            "samples_per_prompt_per_side": SAMPLES,
            "prompt_counts": PROMPT_COUNTS,
            "signflip_resamples": SIGNFLIP_R,
            "permutation_resamples": PERMUTATION_R,
            "interaction_sd": INTERACTION_SD,
            "audit_design": {"k": K, "interaction_sd": INTERACTION, "nan_rate": NAN_RATE},
            "coverage_target": COVERAGE_TARGET,
            "stream": STREAM,
            "power_shifts": SHIFTS,
            "sequential": {
                "prompts": SEQ_PROMPTS,
                "rounds": {"first": SEQ_ROUNDS.first, "growth": SEQ_ROUNDS.growth, "most": SEQ_ROUNDS.most},
                "min_effect": SEQ_MIN_EFFECT,
                "q": SEQ_Q,
                "family": SEQ_FAMILY,
            },
            "quick": args.quick,
            "only": args.only,
            **sizes,
        },
        "seed": args.seed,
        "machine": machine(),
    }
    section_seconds = {}
    for name, function, offset in sections():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        results[name] = function(sizes, args.seed + offset)
        section_seconds[name] = round(time.perf_counter() - start, 1)
        print(f"[{name}: {section_seconds[name]} s]", flush=True)
    if not args.only or "timing" in args.only:
        results["timing"] = timing(args.seed + 3000)
    results["section_seconds"] = section_seconds
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def sections() -> list[tuple[str, Callable[[dict, int], Any], int]]:
    """(results key, function, seed offset) of each section, in the order a whole run takes them."""
    return [
        ("type_one_error", type_one_error, 0),
        ("unequal_counts", unequal_counts, 4000),
        ("skew", skew, 5000),
        ("coverage", coverage, 6000),
        ("unaligned", unaligned, 7000),
        ("selection", selection, 8000),
        ("null_control", null_control, 9000),
        ("fdr", fdr_streams, 1000),
        ("power", power, 2000),
        ("sequential", sequential, 11_000),
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer data sets (1-2 minutes; verdicts are hints)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS} (see --only)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[name for name, _, _ in sections()] + ["timing"],
        help="run only these sections (default out: results/calibration-SECTION.json)",
    )
    args = parser.parse_args()
    if args.out is None:
        args.out = RESULTS.with_name(f"calibration-{'-'.join(args.only)}.json") if args.only else RESULTS
    return args


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


# --- verdicts ----------------------------------------------------------------------------------


def clopper_pearson(hits: int, n: int) -> tuple[float, float]:
    interval = stats.binomtest(int(hits), int(n)).proportion_ci(0.95, method="exact")
    return float(interval.low), float(interval.high)


def verdict(low: float, high: float, target: float = ALPHA) -> str:
    """The Clopper-Pearson rule: a rate whose whole interval lies above alpha over-rejects."""
    if low > target:
        return "over-rejects"
    if high < target:
        return "conservative"
    return "consistent with alpha"


def rate(hits) -> dict:
    """Share of True in hits with its Clopper-Pearson interval and verdict against alpha."""
    hits = np.asarray(hits, dtype=bool)
    n, k = hits.size, int(hits.sum())
    low, high = clopper_pearson(k, n)
    return {"n": n, "rate": k / n, "ci_low": low, "ci_high": high, "verdict": verdict(low, high)}


def rejections(p_values) -> dict:
    p_values = np.asarray(p_values, dtype=float)
    p_values = p_values[np.isfinite(p_values)]
    return rate(p_values <= ALPHA)


def coverage_cell(hits) -> dict:
    """Coverage of 95% intervals: 'under-covers' when the interval's upper end is below 0.95."""
    hits = np.asarray(hits, dtype=bool)
    n, k = hits.size, int(hits.sum())
    if n == 0:
        return {"n": 0, "coverage": None, "ci_low": None, "ci_high": None, "verdict": "no interval"}
    low, high = clopper_pearson(k, n)
    found = "under-covers" if high < 0.95 else "over-covers" if low > 0.95 else "consistent with 0.95"
    return {
        "n": n,
        "coverage": k / n,
        "ci_low": low,
        "ci_high": high,
        "verdict": found,
        "meets_target": k / n >= COVERAGE_TARGET,
    }


# --- simulation ---------------------------------------------------------------------------------


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def judge(latent: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    probability = expit(latent)
    return probability if kind == "score" else (rng.random(latent.shape) < probability).astype(float)


def aligned(rng, n_sets, n_prompts, k_a=SAMPLES, k_b=SAMPLES, shift=0.0, interaction=0.0, kind="score"):
    """Both sides answer the same prompts; shift moves b's latent mean, interaction adds a
    symmetric prompt x side effect (mean difference zero, but not exchangeable within prompt)."""
    u = rng.normal(0.0, np.sqrt(ICC), (n_sets, n_prompts, 1))
    v = rng.normal(0.0, interaction, (n_sets, n_prompts, 1)) if interaction else 0.0
    noise = np.sqrt(1.0 - ICC)
    a = judge(u + rng.normal(0.0, noise, (n_sets, n_prompts, k_a)), rng, kind)
    b = judge(u + shift + v + rng.normal(0.0, noise, (n_sets, n_prompts, k_b)), rng, kind)
    return a, b


def unpaired(rng, n_sets, n_prompts, k=SAMPLES, shift=0.0):
    """The reference's validation sampling: a's texts and b's texts come from different prompts."""
    noise = np.sqrt(1.0 - ICC)
    u_a = rng.normal(0.0, np.sqrt(ICC), (n_sets, n_prompts, 1))
    u_b = rng.normal(0.0, np.sqrt(ICC), (n_sets, n_prompts, 1))
    a = expit(u_a + rng.normal(0.0, noise, (n_sets, n_prompts, k)))
    b = expit(u_b + shift + rng.normal(0.0, noise, (n_sets, n_prompts, k)))
    return a.reshape(n_sets, -1), b.reshape(n_sets, -1)


def differences(a, b):
    return b.mean(axis=-1) - a.mean(axis=-1)


def layout(n_prompts: int, k_a: int, k_b: int) -> ValidationSet:
    """A validation set of n_prompts prompts with k_a answers of a, then k_b of b, per prompt."""
    prompt_of_row = np.concatenate([np.repeat(np.arange(n_prompts), k_a), np.repeat(np.arange(n_prompts), k_b)])
    is_b = np.concatenate([np.zeros(n_prompts * k_a, bool), np.ones(n_prompts * k_b, bool)])
    return ValidationSet(
        rows=np.arange(prompt_of_row.size),
        prompt_ids=[f"p{i:04d}" for i in range(n_prompts)],
        prompt_of_row=prompt_of_row,
        is_b=is_b,
        groups=np.array(["all"] * n_prompts),
        aligned=True,
    )


@dataclass(frozen=True)
class ScoreDesign:
    """How row_scores draws judge scores: latent = base + u_p + [b](shift + v_p) + e, with var(u_p) = icc,
    var(e) = 1 - icc and SD(v_p) = interaction; `shift` is one number or one per set."""

    icc: float
    interaction: float = INTERACTION
    shift: Any = 0.0
    kind: str = "score"
    nan_rate: float = 0.0
    base: float = 0.0


def row_scores(rng, n_sets, vs, design: ScoreDesign):
    """(n_sets, rows) judge scores on a layout, drawn as `design` says."""
    n_prompts = len(vs.prompt_ids)
    u = rng.normal(0.0, np.sqrt(design.icc), (n_sets, n_prompts))
    v = (
        rng.normal(0.0, design.interaction, (n_sets, n_prompts))
        if design.interaction
        else np.zeros((n_sets, n_prompts))
    )
    shift = np.broadcast_to(np.asarray(design.shift, dtype=float).reshape(-1, 1), (n_sets, 1))
    e = rng.normal(0.0, np.sqrt(1.0 - design.icc), (n_sets, vs.prompt_of_row.size))
    latent = design.base + u[:, vs.prompt_of_row] + (shift + v[:, vs.prompt_of_row]) * vs.is_b + e
    scores = judge(latent, rng, design.kind)
    if design.nan_rate:
        scores[rng.random(scores.shape) < design.nan_rate] = np.nan
    return scores


def hypotheses(n: int, directions: tuple[str, ...] = ("b>a", "a>b")) -> list[Hypothesis]:
    """n distinct hypotheses over all prompts, cycling through `directions` (each draws its own subsample)."""
    return [
        Hypothesis(
            f"h{i}",
            "all",
            directions[i % len(directions)],
            f"hypothesis {i}",
            "benchmark",
            "keyword",
            keywords=(f"w{i}",),
        )
        for i in range(n)
    ]


def shipped_p(scores: np.ndarray, vs: ValidationSet, hyps, seed: int, n_resamples: int | None = None):
    """The pipeline's test: balanced subsample per hypothesis, then the sign-flip (significance.hypothesis_tests)."""
    config = ValidateConfig(seed=seed)
    n_resamples = n_resamples or resamples_for(ValidateConfig(), len(hyps), ALPHA)
    paired = paired_differences(list(scores), hyps, vs, config) if vs.aligned else None
    found = hypothesis_tests(list(scores), paired, [vs.scope("all")] * len(hyps), hyps, vs, config, n_resamples)
    return np.array([r["p_value"] for r in found], dtype=float)


def old_fallback_p(scores: np.ndarray, vs: ValidationSet, hyps, seed: int, n_resamples: int = PERMUTATION_R):
    """What validation did before issue 11: the sign-flip where every prompt has equal a/b counts,
    else a label permutation within each prompt (`tests.within_prompt_permutation`, same seed for all)."""
    out = np.full(len(hyps), np.nan)
    for i, (s, h) in enumerate(zip(scores, hyps)):
        alternative = "greater" if h.direction == "b>a" else "less"
        finite = np.isfinite(s)
        count_a = np.bincount(vs.prompt_of_row[finite & ~vs.is_b], minlength=len(vs.prompt_ids))
        count_b = np.bincount(vs.prompt_of_row[finite & vs.is_b], minlength=len(vs.prompt_ids))
        used = (count_a > 0) & (count_b > 0)
        if np.all(count_a[used] == count_b[used]):
            out[i] = shipped_p(s[None, :], vs, [h], seed, SIGNFLIP_R)[0]
            continue
        groups_a, groups_b = score_lists(s, vs, np.flatnonzero(used))
        out[i] = st.within_prompt_permutation(groups_a, groups_b, alternative, n_resamples, seed).p_value
    return out


# --- 1. type-I error ---------------------------------------------------------------------------


def signflip_p(
    D: np.ndarray, seed: int, block: int = 100, alternative: str = "greater", n_resamples: int = SIGNFLIP_R
) -> np.ndarray:
    """Sign-flip p-values, a fresh sign matrix per block of data sets."""
    return np.concatenate(
        [
            st.paired_signflip_many(D[i : i + block], None, alternative, n_resamples, seed + i)[1]
            for i in range(0, D.shape[0], block)
        ]
    )


def rate_row(test, status, design, n_prompts, p_values) -> dict:
    """Rejection rate at alpha with a Clopper-Pearson 95% interval, verdict, and a KS check of uniformity."""
    p_values = np.asarray(p_values)
    ks = stats.kstest(p_values, "uniform")
    return {
        "test": test,
        "lmdelta": status,
        "design": design,
        "prompts": n_prompts,
        **rejections(p_values),
        "ks_d": float(ks.statistic),
        "ks_p": float(ks.pvalue),
    }


def type_one_error(sizes: dict, seed: int) -> list[dict]:
    rows = []
    for i, n_prompts in enumerate(PROMPT_COUNTS):
        rng = np.random.default_rng(seed + i)
        rows += aligned_null_rows(rng, n_prompts, sizes, seed + 100 * i)
        rows += unpaired_null_rows(rng, n_prompts, sizes, seed + 100 * i)
    rng = np.random.default_rng(seed + 50)
    a, b = aligned(rng, sizes["slow_null_sets"], 50, interaction=INTERACTION_SD)
    design = f"aligned, weak null (prompt x side interaction SD {INTERACTION_SD})"
    rows.append(rate_row("sign-flip", SHIPS, design, 50, signflip_p(differences(a, b), seed + 51)))
    rows.append(
        rate_row(
            "Wilcoxon signed-rank",
            REMOVED_WILCOXON,
            design,
            50,
            [st.wilcoxon_signed_rank(d).p_value for d in differences(a, b)],
        )
    )
    rows.append(rate_row("within-prompt permutation", REMOVED_FALLBACK, design, 50, within_p(a, b, seed + 52)))
    return rows


def within_p(a, b, seed) -> list[float]:
    return [
        st.within_prompt_permutation(list(a_set), list(b_set), n_resamples=PERMUTATION_R, seed=seed + j).p_value
        for j, (a_set, b_set) in enumerate(zip(a, b))
    ]


def aligned_null_rows(rng, n_prompts, sizes, seed) -> list[dict]:
    a, b = aligned(rng, sizes["null_sets"], n_prompts)
    D = differences(a, b)
    rows = [
        rate_row("sign-flip", SHIPS, "aligned, score judge", n_prompts, signflip_p(D, seed)),
        rate_row(
            "Wilcoxon signed-rank",
            REMOVED_WILCOXON,
            "aligned, score judge",
            n_prompts,
            [st.wilcoxon_signed_rank(d).p_value for d in D],
        ),
    ]
    a, b = aligned(rng, sizes["null_sets"], n_prompts, kind="presence")
    rows.append(
        rate_row("sign-flip", SHIPS, "aligned, presence judge", n_prompts, signflip_p(differences(a, b), seed + 1))
    )
    a, b = aligned(rng, sizes["slow_null_sets"], n_prompts, k_a=SAMPLES, k_b=SAMPLES // 2)
    rows.append(
        rate_row(
            "within-prompt permutation",
            REMOVED_FALLBACK,
            "aligned, 20 a vs 10 b per prompt (sharp null)",
            n_prompts,
            within_p(a, b, seed + 2),
        )
    )
    return rows


def unpaired_null_rows(rng, n_prompts, sizes, seed) -> list[dict]:
    a, b = unpaired(rng, sizes["null_sets"], n_prompts)
    design = "unpaired, 20 texts per prompt"
    rows = [
        rate_row(
            "Mann-Whitney over texts",
            REFERENCE,
            design,
            n_prompts,
            [st.mann_whitney(x, y).p_value for x, y in zip(a, b)],
        )
    ]
    clusters = np.repeat(np.arange(2 * n_prompts), SAMPLES)
    is_b = clusters >= n_prompts
    slow = sizes["slow_null_sets"]
    p_cluster = [
        cluster_tests.cluster_permutation(
            np.concatenate([x, y]), is_b, clusters, n_resamples=PERMUTATION_R, seed=seed + j
        ).p_value
        for j, (x, y) in enumerate(zip(a[:slow], b[:slow]))
    ]
    status = "ships (corpus.cluster)" if cluster_unit_reachable() else STATS_ONLY
    rows.append(rate_row("cluster permutation (prompt = cluster)", status, design, n_prompts, p_cluster))
    a, b = unpaired(rng, sizes["null_sets"], n_prompts, k=1)
    rows.append(
        rate_row(
            "Mann-Whitney over texts",
            REFERENCE,
            "unpaired, 1 text per prompt",
            n_prompts,
            [st.mann_whitney(x, y).p_value for x, y in zip(a, b)],
        )
    )
    return rows


# --- 2. unequal answer counts ------------------------------------------------------------------

UNEQUAL_HYPOTHESES = 20  # per run, all null: P(BH validates any) is the FDR


def unequal_counts(sizes: dict, seed: int) -> dict:
    """Weak null (prompt x side interaction, mean zero), k = 4, 5% NaN scores: old fallback vs balanced sign-flip.

    Each run has 20 independent null hypotheses (directions alternate) on one validation layout,
    tested together as the pipeline tests them (one sign matrix per run), then BH at q = alpha.
    """
    per_test, end_to_end = [], []
    hyps = hypotheses(UNEQUAL_HYPOTHESES)
    for c, (n_prompts, icc) in enumerate([(20, 0.5), (20, 0.9), (50, 0.5), (50, 0.9)]):
        rng = np.random.default_rng(seed + c)
        vs = layout(n_prompts, K, K)
        design = f"k = {K}, {NAN_RATE:.0%} NaN, weak null (interaction SD {INTERACTION}), ICC {icc}"
        for test, status, runs, function in (
            ("balanced sign-flip", SHIPS, sizes["unequal_runs"], shipped_p),
            ("within-prompt permutation fallback", REMOVED_FALLBACK, sizes["old_runs"], old_fallback_p),
        ):
            p_all, any_validated = [], []
            for r in range(runs):
                scores = row_scores(rng, UNEQUAL_HYPOTHESES, vs, ScoreDesign(icc, nan_rate=NAN_RATE))
                p = function(scores, vs, hyps, seed + 10_000 * c + r)
                p_all.append(p)
                any_validated.append(fdr.benjamini_hochberg(p, ALPHA).any())
            base = {"test": test, "lmdelta": status, "design": design, "prompts": n_prompts, "icc": icc}
            per_test.append({**base, **rejections(np.concatenate(p_all))})
            end_to_end.append({**base, "runs": runs, "hypotheses_per_run": UNEQUAL_HYPOTHESES, **rate(any_validated)})
    per_test += one_against_four(sizes, seed + 100)
    return {"per_test": per_test, "end_to_end": end_to_end}


def one_against_four(sizes: dict, seed: int) -> list[dict]:
    """1 a answer against 4 b answers per prompt (50 prompts): weak null with scores, sharp null with a
    rare presence property."""
    rows = []
    vs = layout(50, 1, 4)
    cases = [
        ("weak null (interaction SD 0.5), score judge, ICC 0.9", {"icc": 0.9}),
        (
            "sharp null, presence judge, prevalence about 0.15",
            {"icc": 0.5, "interaction": 0.0, "kind": "presence", "base": -2.0},
        ),
    ]
    for c, (label, options) in enumerate(cases):
        rng = np.random.default_rng(seed + c)
        for test, status, n_sets, function in (
            ("balanced sign-flip", SHIPS, sizes["unequal_sets"], shipped_p),
            ("within-prompt permutation fallback", REMOVED_FALLBACK, sizes["old_unequal_sets"], old_fallback_p),
        ):
            p = []
            for start in range(0, n_sets, UNEQUAL_HYPOTHESES):
                scores = row_scores(rng, UNEQUAL_HYPOTHESES, vs, ScoreDesign(**options))
                p.append(function(scores, vs, hypotheses(UNEQUAL_HYPOTHESES), seed + 1000 * c + start))
            rows.append(
                {
                    "test": test,
                    "lmdelta": status,
                    "design": f"1 a vs 4 b answers, {label}",
                    "prompts": 50,
                    "icc": options["icc"],
                    **rejections(np.concatenate(p)),
                }
            )
    return rows


# --- 3. skewed per-prompt differences ----------------------------------------------------------

SKEW_PROMPTS = (10, 20, 50)


def skew(sizes: dict, seed: int) -> list[dict]:
    """Weak null with E[d_p] = 0 exactly and a right-skewed prompt x side effect.

    "per-prompt d_p": d_p = (Exp(1) - 1) + N(0, 0.3^2), the audit's design (skewness about 1.8).
    "judge scores": k = 4 answers a side, ICC 0.5, latent interaction Exp(1) - 1 (SD 1), scores
    logistic(latent) with b's scores moved by the constant that makes E[d_p] = 0 (by quadrature).
    The sign-flip's null is that each d_p is symmetric about zero: under skew it is not exact.
    """
    rows = []
    centre = skewed_score_mean(ICC)
    big = np.random.default_rng(seed - 1)  # population skewness and mean of d_p, from 400,000 prompts
    population = {
        design: skewed_differences(big, 1, 400_000, design, centre)[0] for design in ("per-prompt d_p", "judge scores")
    }
    for i, n_prompts in enumerate(SKEW_PROMPTS):
        rng = np.random.default_rng(seed + i)
        for design in ("per-prompt d_p", "judge scores"):
            D = skewed_differences(rng, sizes["skew_sets"], n_prompts, design, centre)
            for j, alternative in enumerate(("greater", "less")):
                p_flip = signflip_p(D, seed + 100 * i + j, alternative=alternative)
                p_wilcoxon = [st.wilcoxon_signed_rank(d, alternative).p_value for d in D[: sizes["wilcoxon_sets"]]]
                rows.append(
                    {
                        "design": design,
                        "prompts": n_prompts,
                        "alternative": alternative,
                        "skewness": float(stats.skew(population[design])),
                        "mean_check": float(population[design].mean()),
                        "sd": float(population[design].std()),
                        "signflip": {"lmdelta": SHIPS_ASSUMPTION, **rejections(p_flip)},
                        "wilcoxon": {"lmdelta": REMOVED_WILCOXON, **rejections(p_wilcoxon)},
                    }
                )
    return rows


def skewed_differences(rng, n_sets, n_prompts, design, centre):
    if design == "per-prompt d_p":
        return (rng.exponential(1.0, (n_sets, n_prompts)) - 1.0) + rng.normal(0.0, 0.3, (n_sets, n_prompts))
    u = rng.normal(0.0, np.sqrt(ICC), (n_sets, n_prompts, 1))
    v = rng.exponential(1.0, (n_sets, n_prompts, 1)) - 1.0
    noise = np.sqrt(1.0 - ICC)
    a = expit(u + rng.normal(0.0, noise, (n_sets, n_prompts, K)))
    b = expit(u + v + rng.normal(0.0, noise, (n_sets, n_prompts, K)))
    return differences(a, b) - centre


def skewed_score_mean(icc: float) -> float:
    """E[d_p] of the judge-score design: E[expit(N(0, 1) + Exp(1) - 1)] - 1/2 (Gauss-Laguerre x Hermite)."""
    x, wx = np.polynomial.laguerre.laggauss(80)
    z, wz = np.polynomial.hermite_e.hermegauss(80)
    wz = wz / wz.sum()
    total = np.sum(wx[:, None] * wz[None, :] * expit((x[:, None] - 1.0) + z[None, :]))
    return float(total - 0.5)


# --- 4. coverage at few prompts ----------------------------------------------------------------

COVERAGE_PROMPTS = (5, 10, 20, 50)
COVERAGE_SHIFT = 0.3


def normal_expit_mean(mean: float, sd: float) -> float:
    z, w = np.polynomial.hermite_e.hermegauss(120)
    return float(np.sum(w / w.sum() * expit(mean + sd * z)))


def coverage(sizes: dict, seed: int) -> dict:
    """Coverage of the 95% intervals of the mean difference, the AUC and the prevalence.

    Mean and AUC: latent = u_p + [b](0.3 + v_p) + e, interaction SD 0.5, k = 4 answers a side.
    Truth: E[d_p] = E[expit(0.3 + N(0, 1.25))] - 1/2 and the AUC of texts from independent prompts,
    Phi(0.3 / 1.5) = 0.579 (both exact). Prevalence: presence judge, side a, latent SD 1.
    """
    true_mean = normal_expit_mean(COVERAGE_SHIFT, np.sqrt(1.0 + INTERACTION**2)) - 0.5
    true_auc = float(stats.norm.cdf(COVERAGE_SHIFT / np.sqrt(2.0 + INTERACTION**2)))
    rows, prevalence_rows = [], []
    for c, icc in enumerate((0.5, 0.9)):
        for i, n_prompts in enumerate(COVERAGE_PROMPTS):
            rng = np.random.default_rng(seed + 10 * c + i)
            a, b = aligned_k(rng, sizes["coverage_sets"], n_prompts, icc)
            new_mean, new_auc, withheld = [], [], 0
            for x, y in zip(a, b):
                found = effects.mean_ci(y.mean(axis=1) - x.mean(axis=1))
                new_mean.append(found.low <= true_mean <= found.high)
                found = effects.auc_ci(list(x), list(y))
                if np.isfinite(found.low):
                    new_auc.append(found.low <= true_auc <= found.high)
                else:
                    withheld += 1
            old_mean, old_auc = [], []
            for r, (x, y) in enumerate(zip(a[: sizes["bootstrap_sets"]], b[: sizes["bootstrap_sets"]])):
                _, low, high = effects.bootstrap_mean_ci(y.mean(axis=1) - x.mean(axis=1), 2000, 0.95, seed + r)
                old_mean.append(low <= true_mean <= high)
                _, low, high = effects.auc_ci_by_prompt(list(x), list(y), 2000, 0.95, seed + r)
                old_auc.append(low <= true_auc <= high)
            rows.append(
                {
                    "prompts": n_prompts,
                    "icc": icc,
                    "true_mean": true_mean,
                    "true_auc": true_auc,
                    "mean_t": {"lmdelta": SHIPS, **coverage_cell(new_mean)},
                    "mean_bootstrap": {"lmdelta": REMOVED_INTERVAL, **coverage_cell(old_mean)},
                    "auc_logit_t": {"lmdelta": SHIPS, **coverage_cell(new_auc), "withheld": withheld / len(a)},
                    "auc_bootstrap": {"lmdelta": REMOVED_INTERVAL, **coverage_cell(old_auc)},
                }
            )
    for c, icc in enumerate((0.5, 0.9)):
        for j, target in enumerate((0.1, 0.5)):
            base = prevalence_offset(target)
            for i, n_prompts in enumerate(COVERAGE_PROMPTS):
                rng = np.random.default_rng(seed + 100 + 20 * c + 10 * j + i)
                u = rng.normal(0.0, np.sqrt(icc), (sizes["coverage_sets"], n_prompts, 1))
                x = judge(
                    base + u + rng.normal(0.0, np.sqrt(1.0 - icc), (sizes["coverage_sets"], n_prompts, K)),
                    rng,
                    "presence",
                )
                hits, widths = [], []
                for data_set in x:
                    found = effects.prevalence_ci(list(data_set))
                    hits.append(found.low <= target <= found.high)
                    widths.append(found.high - found.low)
                prevalence_rows.append(
                    {
                        "prevalence": target,
                        "icc": icc,
                        "prompts": n_prompts,
                        "lmdelta": SHIPS,
                        **coverage_cell(hits),
                        "median_width": float(np.median(widths)),
                    }
                )
    return {"intervals": rows, "prevalence": prevalence_rows}


def aligned_k(rng, n_sets, n_prompts, icc):
    u = rng.normal(0.0, np.sqrt(icc), (n_sets, n_prompts, 1))
    v = rng.normal(0.0, INTERACTION, (n_sets, n_prompts, 1))
    noise = np.sqrt(1.0 - icc)
    a = expit(u + rng.normal(0.0, noise, (n_sets, n_prompts, K)))
    b = expit(u + COVERAGE_SHIFT + v + rng.normal(0.0, noise, (n_sets, n_prompts, K)))
    return a, b


def prevalence_offset(target: float) -> float:
    """The latent offset whose presence probability, averaged over N(0, 1), is target."""
    return float(optimize.brentq(lambda x: normal_expit_mean(x, 1.0) - target, -10.0, 10.0))


# --- 5. unaligned corpora with hidden clusters ---------------------------------------------------

UNALIGNED_TEXTS = 100  # per side


def unaligned(sizes: dict, seed: int) -> list[dict]:
    """100 texts a side, no shared prompts; the texts come from hidden prompts (ICC 0.5), each
    prompt's texts all on one side. Null: the sides do not differ. The pipeline runs twice on the
    same scores: without cluster ids (every text its own unit) and with the hidden prompt as
    corpus.cluster id; which test it then picks is read from its output (`unit`)."""
    rows = []
    for i, per_prompt in enumerate((1, 5, 20)):
        rng = np.random.default_rng(seed + i)
        n_clusters = UNALIGNED_TEXTS // per_prompt
        vs_texts = ValidationSet.build(clustered_pair(UNALIGNED_TEXTS, 1))
        vs_clusters = ValidationSet.build(clustered_pair(n_clusters, per_prompt))
        # unpaired() lists a's texts hidden prompt by hidden prompt, then b's: both sets' row order
        assert np.array_equal(vs_clusters.prompt_of_row, np.repeat(np.arange(2 * n_clusters), per_prompt))
        a, b = unpaired(rng, sizes["unaligned_sets"], n_clusters, k=per_prompt)
        scores = np.concatenate([a, b], axis=1)
        hyps = hypotheses(scores.shape[0], ("b>a",))
        p_texts, unit_texts = pipeline_p(scores, vs_texts, hyps, seed + 1)
        cases = [(f"pipeline, no cluster ids (unit: {unit_texts})", SHIPS, p_texts)]
        if per_prompt > 1:
            p_clusters, unit = pipeline_p(scores, vs_clusters, hyps, seed + 2)
            cases.append((f"pipeline, hidden prompt given as corpus.cluster id (unit: {unit})", SHIPS, p_clusters))
            if unit != "cluster":
                cases.append(
                    (
                        "whole-cluster permutation (cluster_tests.cluster_permutation)",
                        STATS_ONLY,
                        [
                            cluster_tests.cluster_permutation(
                                x, vs_clusters.is_b, vs_clusters.prompt_of_row, "greater", PERMUTATION_R, seed + j
                            ).p_value
                            for j, x in enumerate(scores)
                        ],
                    )
                )
        cases.append(("Mann-Whitney over texts", REFERENCE, [st.mann_whitney(x, y).p_value for x, y in zip(a, b)]))
        for test, status, p in cases:
            rows.append(
                {
                    "texts_per_hidden_prompt": per_prompt,
                    "texts_per_side": UNALIGNED_TEXTS,
                    "test": test,
                    "lmdelta": status,
                    **rejections(p),
                }
            )
    return rows


def pipeline_p(scores, vs, hyps, seed, block: int = UNEQUAL_HYPOTHESES) -> tuple[np.ndarray, str]:
    """p-values through significance.hypothesis_tests, and the unit its output names (text, cluster, prompt).

    Data sets go in blocks of 20, as the hypotheses of one run, each block with its own seed: the
    pipeline draws one set of permutations per run, shared by that run's hypotheses."""
    p, units = [], set()
    for start in range(0, len(hyps), block):
        config = ValidateConfig(seed=seed + start)
        found = hypothesis_tests(
            list(scores[start : start + block]),
            None,
            [vs.scope("all")] * len(hyps[start : start + block]),
            hyps[start : start + block],
            vs,
            config,
            PERMUTATION_R,
        )
        p += [r["p_value"] for r in found]
        units |= {r["unit"] for r in found}
    return np.array(p, dtype=float), ", ".join(sorted(units))


def cluster_unit_reachable() -> bool:
    """Whether the pipeline tests whole clusters when an unaligned corpus gives cluster ids."""
    vs = ValidationSet.build(clustered_pair(3, 2))
    scores = np.arange(vs.prompt_of_row.size, dtype=float)[None, :]
    return pipeline_p(scores, vs, hypotheses(1), 0)[1] == "cluster"


def clustered_pair(n_clusters: int, per_cluster: int) -> PairData:
    """What sources.corpus builds from an unaligned corpus with a cluster column (all validation):
    one unit (prompt id) per cluster, every cluster's texts on one side (a's clusters, then b's)."""
    prompts, samples = [], []
    for side in ("a", "b"):
        for c in range(n_clusters):
            unit = f"c-{side}{c:04d}"
            prompts.append(Prompt(unit, "", "all", "validation"))
            samples += [
                Sample(unit, side, j, f"{side} {c} {j}", 1, "stop", 0, f"{side}{c}.{j}") for j in range(per_cluster)
            ]
    return PairData(prompts, samples, np.zeros((len(samples), 1)), {p.id: "all" for p in prompts})


# --- 6. selected findings ----------------------------------------------------------------------

SELECTION = {"hypotheses": 100, "true_share": 0.2, "shift_low": 0.1, "shift_high": 0.4, "icc": 0.5}
SELECTION_PROMPTS = (10, 20, 30, 50)


def selection(sizes: dict, seed: int) -> list[dict]:
    """Validated findings' plain 95% t interval (effects.mean_ci) against the FCR-adjusted one
    (stages.decide.fcr_intervals), after the sign-flip and BH at q = alpha.

    Truth per hypothesis: E[d_p] = E[expit(shift + N(0, 1.25))] - 1/2 (0 for nulls), by quadrature.
    "FCR" is the mean over runs of the share of validated findings whose interval misses (0 when
    none validated): what Benjamini & Yekutieli's guarantee bounds by alpha.
    """
    s = SELECTION
    m = s["hypotheses"]
    n_resamples = resamples_for(ValidateConfig(), m, ALPHA)
    sd = np.sqrt(1.0 + INTERACTION**2)
    rows = []
    for i, n_prompts in enumerate(SELECTION_PROMPTS):
        rng = np.random.default_rng(seed + i)
        runs = sizes["selection_runs"] * (2 if n_prompts == 10 else 1)
        plain_hits, fcr_hits, ratio, fcp_plain, fcp_fcr, validated = [], [], [], [], [], 0
        for r in range(runs):
            is_true = rng.random(m) < s["true_share"]
            shift = np.where(is_true, rng.uniform(s["shift_low"], s["shift_high"], m), 0.0)
            a, b = aligned_k_shift(rng, n_prompts, s["icc"], shift)
            D = b.mean(axis=2) - a.mean(axis=2)
            _, p = st.paired_signflip_many(D, None, "greater", n_resamples, seed + 1000 * i + r)
            chosen = fdr.benjamini_hochberg(p, ALPHA)
            results = []
            for h in range(m):
                found = effects.mean_ci(D[h])
                results.append(
                    {
                        "p_value": float(p[h]),
                        "validated": bool(chosen[h]),
                        "effect": found.value,
                        "effect_se": found.se,
                        "effect_df": found.df,
                        "plain": (found.low, found.high),
                    }
                )
            estimates = [(r["p_value"], r["effect"], r["effect_se"], r["effect_df"]) for r in results]
            intervals = fcr_intervals(estimates, [r["validated"] for r in results], 1.0 - 0.95)
            for result, (interval, _) in zip(results, intervals):
                result["effect_ci_fcr"] = interval
            misses_plain, misses_fcr = [], []
            for h in np.flatnonzero(chosen):
                truth = normal_expit_mean(shift[h], sd) - 0.5 if shift[h] else 0.0
                low, high = results[h]["plain"]
                misses_plain.append(not low <= truth <= high)
                low, high = results[h]["effect_ci_fcr"] or (np.nan, np.nan)
                misses_fcr.append(not low <= truth <= high)
                if shift[h]:
                    ratio.append(results[h]["effect"] / truth)
            validated += len(misses_plain)
            plain_hits += [not x for x in misses_plain]
            fcr_hits += [not x for x in misses_fcr]
            fcp_plain.append(np.mean(misses_plain) if misses_plain else 0.0)
            fcp_fcr.append(np.mean(misses_fcr) if misses_fcr else 0.0)
        rows.append(
            {
                "prompts": n_prompts,
                "runs": runs,
                "validated": validated,
                **s,
                "k": K,
                "interaction_sd": INTERACTION,
                "plain": {"lmdelta": "ships (effect_ci)", **coverage_cell(plain_hits)},
                "fcr_adjusted": {"lmdelta": "ships (effect_ci_fcr)", **coverage_cell(fcr_hits)},
                "fcr_plain": float(np.mean(fcp_plain)),
                "fcr_plain_se": float(np.std(fcp_plain) / np.sqrt(runs)),
                "fcr_adjusted_rate": float(np.mean(fcp_fcr)),
                "fcr_adjusted_se": float(np.std(fcp_fcr) / np.sqrt(runs)),
                "median_inflation": float(np.median(ratio)) if ratio else None,
            }
        )
    return rows


def aligned_k_shift(rng, n_prompts, icc, shift):
    m = shift.size
    u = rng.normal(0.0, np.sqrt(icc), (m, n_prompts, 1))
    v = rng.normal(0.0, INTERACTION, (m, n_prompts, 1))
    noise = np.sqrt(1.0 - icc)
    a = expit(u + rng.normal(0.0, noise, (m, n_prompts, K)))
    b = expit(u + shift[:, None, None] + v + rng.normal(0.0, noise, (m, n_prompts, K)))
    return a, b


# --- 7. the null control -----------------------------------------------------------------------

CONTROL = {"prompts": 50, "k": K, "icc": 0.9, "true_share": 0.25, "true_shift": 0.3, "nan_rate": NAN_RATE}
INFLATION = {
    2: float(stats.norm.isf(ALPHA) / stats.norm.isf(2 * ALPHA)),
    4: float(stats.norm.isf(ALPHA) / stats.norm.isf(4 * ALPHA)),
}


def null_control(sizes: dict, seed: int) -> list[dict]:
    """How often the random-relabelling null control flags a test, valid or over-rejecting.

    Main data: 50 validation prompts, k = 4 answers a side, ICC 0.9, prompt x side interaction SD
    0.5, 5% NaN scores, a quarter of the hypotheses with a real latent shift of 0.3. Each run
    relabels it with pairdata.null_pair (a fair coin per prompt, seeded by the run), builds the
    validation set from the relabelled data (ValidationSet.build), runs a test over the m
    hypotheses, decides by BH at q = alpha and summarises with report.null_control.summarize_null
    (red: validated any; the share of p <= 0.05 named when its interval lies above 0.05). The
    proposers are not simulated: the hypotheses are fixed. "z-test, SE understated" is the
    balanced d_p's mean over its standard error, multiplied by 1.28 or 1.95 so that it rejects
    about 2x or 4x alpha: a stand-in for a test that ignores part of the variance.
    """
    rows = []
    data = control_pair(CONTROL["prompts"], CONTROL["k"])
    tests_ = [
        ("balanced sign-flip", SHIPS, shipped_p, (20, 50), "control_runs"),
        ("z-test, SE understated (about 2x alpha)", SYNTHETIC, inflated(2), (20, 50), "control_runs"),
        ("z-test, SE understated (about 4x alpha)", SYNTHETIC, inflated(4), (20, 50), "control_runs"),
        ("within-prompt permutation fallback", REMOVED_FALLBACK, old_fallback_p, (20,), "old_control_runs"),
    ]
    for t, (test, status, function, ms, runs_key) in enumerate(tests_):
        for m in ms:
            rng = np.random.default_rng(seed + 10 * t + m)
            outcomes = [control_run(rng, data, m, function, seed + 100_000 * t + r) for r in range(sizes[runs_key])]
            rows.append(
                control_row(test, status, "aligned, 50 prompts, k = 4, 5% NaN, ICC 0.9, interaction 0.5", m, outcomes)
            )
    rows += unaligned_control(sizes, seed + 500)
    return rows


def control_pair(n_prompts: int, k: int) -> PairData:
    prompts, samples = [], []
    for p in range(n_prompts):
        prompts.append(Prompt(f"p{p:04d}", f"prompt {p}", "all", "validation"))
        for side in ("a", "b"):
            samples += [
                Sample(f"p{p:04d}", side, j, f"{side} {p} {j}", 1, "stop", 0, f"{side}{p}.{j}") for j in range(k)
            ]
    return PairData(prompts, samples, np.zeros((len(samples), 1)), {p.id: "all" for p in prompts})


def original_scores(rng, data: PairData, m: int) -> np.ndarray:
    """(m, samples) scores in the main comparison's labelling."""
    vs = ValidationSet.build(data)
    shift = np.where(rng.random(m) < CONTROL["true_share"], CONTROL["true_shift"], 0.0)
    scores = np.full((m, len(data.samples)), np.nan)
    design = ScoreDesign(CONTROL["icc"], shift=shift, nan_rate=CONTROL["nan_rate"])
    scores[:, vs.rows] = row_scores(rng, m, vs, design)
    return scores


def control_run(rng, data: PairData, m: int, function, seed: int) -> dict:
    scores = original_scores(rng, data, m)
    relabelled = null_pair(data, seed)
    vs = ValidationSet.build(relabelled)
    p = function(scores[:, vs.rows], vs, hypotheses(m), seed)
    return decide_control(p)


def decide_control(p: np.ndarray) -> dict:
    chosen = fdr.benjamini_hochberg(p, ALPHA)
    found = summarize_null([{"p_value": float(x), "validated": bool(c)} for x, c in zip(p, chosen)], None)
    return {
        "validated": found.validated,
        "status": found.status,
        "small_share": found.small_share or 0.0,
        "leans_small": found.leans_small,
    }


def inflated(factor: int):
    def test(scores, vs, hyps, seed):
        seeds = [seed + i for i in range(len(hyps))]
        D, _ = balanced_differences(scores, vs, seeds)
        p = np.full(len(hyps), np.nan)
        for i, (d, h) in enumerate(zip(D, hyps)):
            d = d[np.isfinite(d)]
            z = INFLATION[factor] * d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
            p[i] = stats.norm.sf(z if h.direction == "b>a" else -z)
        return p

    return test


def control_row(test, status, design, m, outcomes) -> dict:
    validated = [o["validated"] > 0 for o in outcomes]
    named = [o["leans_small"] for o in outcomes]
    return {
        "test": test,
        "lmdelta": status,
        "design": design,
        "hypotheses": m,
        "runs": len(outcomes),
        "share_small": float(np.mean([o["small_share"] for o in outcomes])),
        "validates_any": rate(validated),
        "share_named": rate(named),
        "flagged": rate([v or n for v, n in zip(validated, named)]),
    }


def unaligned_control(sizes: dict, seed: int) -> list[dict]:
    """Unaligned corpus, 20 hidden prompts of 5 texts a side, no difference (ICC 0.5), m = 20.

    With the hidden prompt given as corpus.cluster id the null control swaps whole clusters; without
    ids every text is its own unit, so the null control swaps texts one by one, which breaks up the
    hidden clusters that make the main comparison's text-level test over-reject (section 5)."""
    rows = []
    n_clusters, per_cluster, m = 20, 5, 20
    designs = (
        ("hidden prompt given as corpus.cluster id", clustered_pair(n_clusters, per_cluster)),
        ("no cluster ids", clustered_pair(n_clusters * per_cluster, 1)),
    )
    for t, (label, data) in enumerate(designs):
        rng = np.random.default_rng(seed + t)
        hidden = np.repeat(np.arange(2 * n_clusters), per_cluster)  # samples: a's hidden prompts, then b's
        outcomes, units = [], set()
        for r in range(sizes["old_control_runs"]):
            u = rng.normal(0.0, np.sqrt(ICC), (m, 2 * n_clusters))
            scores = expit(u[:, hidden] + rng.normal(0.0, np.sqrt(1.0 - ICC), (m, hidden.size)))
            vs = ValidationSet.build(null_pair(data, seed + r))
            config = ValidateConfig(seed=seed + r)
            found = hypothesis_tests(
                list(scores[:, vs.rows]), None, [vs.scope("all")] * m, hypotheses(m), vs, config, 2000
            )
            units.add(found[0]["unit"])
            outcomes.append(decide_control(np.array([x["p_value"] for x in found], dtype=float)))
        rows.append(
            control_row(
                f"pipeline, {label} (unit: {', '.join(sorted(units))})",
                SHIPS,
                f"unaligned, {n_clusters} hidden prompts of {per_cluster} texts a side, no difference, ICC {ICC}",
                m,
                outcomes,
            )
        )
    return rows


# --- 8. FDR over mixed streams -----------------------------------------------------------------

STREAM = {"hypotheses": 100, "null_share": 0.8, "prompts": 50, "shift_low": 0.05, "shift_high": 0.15}
PROCEDURES = ("BH", "BY", "SAFFRON", "ADDIS", "LORD++")


def decide(name: str, p: np.ndarray) -> np.ndarray:
    if name == "BH":
        return fdr.benjamini_hochberg(p, ALPHA)
    if name == "BY":
        return fdr.benjamini_yekutieli(p, ALPHA)
    return fdr.run_online(name.lower(), p, alpha=ALPHA)[0]


def stream_p_values(rng, seed, is_null, shifts) -> tuple[np.ndarray, np.ndarray]:
    """Per hypothesis: lmdelta's sign-flip on aligned prompts, and the reference's Mann-Whitney on
    unpaired texts, from data with the same effect size."""
    m, n_prompts = is_null.size, STREAM["prompts"]
    shift = np.where(is_null, 0.0, shifts)[:, None, None]
    a, b = aligned(rng, m, n_prompts, shift=shift)
    _, p_ours = st.paired_signflip_many(differences(a, b), n_resamples=SIGNFLIP_R, seed=seed)
    a_u, b_u = unpaired(rng, m, n_prompts, shift=shift)
    # scipy's vectorised form of st.mann_whitney (same call, one row per hypothesis)
    p_reference = stats.mannwhitneyu(b_u, a_u, alternative="greater", axis=1).pvalue
    return p_ours, p_reference


def fdr_streams(sizes: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    pipelines = [("lmdelta: sign-flip", name) for name in PROCEDURES]
    pipelines += [("reference: Mann-Whitney over unpaired texts", name) for name in ("BH", "SAFFRON")]
    fdp = {key: [] for key in pipelines}
    tpr = {key: [] for key in pipelines}
    for s in range(sizes["streams"]):
        is_null = rng.random(STREAM["hypotheses"]) < STREAM["null_share"]
        shifts = rng.uniform(STREAM["shift_low"], STREAM["shift_high"], is_null.size)
        p_ours, p_reference = stream_p_values(rng, seed + s, is_null, shifts)
        for key in pipelines:
            reject = decide(key[1], p_ours if key[0].startswith("lmdelta") else p_reference)
            fdp[key].append((reject & is_null).sum() / max(1, reject.sum()))
            tpr[key].append((reject & ~is_null).sum() / max(1, (~is_null).sum()))
    return [
        {
            "pipeline": key[0],
            "procedure": key[1],
            "streams": sizes["streams"],
            **STREAM,
            "fdr": float(np.mean(fdp[key])),
            "fdr_se": float(np.std(fdp[key]) / np.sqrt(len(fdp[key]))),
            "power": float(np.mean(tpr[key])),
        }
        for key in pipelines
    ]


# --- 9. power ----------------------------------------------------------------------------------

SHIFTS = (0.025, 0.05, 0.1, 0.2)


def power(sizes: dict, seed: int) -> list[dict]:
    rows = []
    for i, n_prompts in enumerate(PROMPT_COUNTS):
        for j, shift in enumerate(SHIFTS):
            rng = np.random.default_rng(seed + 10 * i + j)
            a, b = aligned(rng, sizes["power_sets"], n_prompts, shift=shift)
            D = differences(a, b)
            p_flip = signflip_p(D, seed + 10 * i + j)
            p_wilcoxon = np.array([st.wilcoxon_signed_rank(d).p_value for d in D])
            rows.append(
                {
                    "prompts": n_prompts,
                    "latent_shift": shift,
                    "mean_score_difference": float(D.mean()),
                    "data_sets": sizes["power_sets"],
                    "signflip_power": float(np.mean(p_flip <= ALPHA)),
                    "wilcoxon_power": float(np.mean(p_wilcoxon <= ALPHA)),
                }
            )
    return rows


# --- 10. timing --------------------------------------------------------------------------------


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def timing(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    D = rng.normal(0.0, 0.1, (200, 500))
    vs = layout(500, K, K)
    scores = rng.random((200, vs.prompt_of_row.size))
    scores[rng.random(scores.shape) < NAN_RATE] = np.nan
    groups = [(rng.random((500, K)), rng.random((500, K))) for _ in range(200)]
    presence = [[(rng.random(K) < 0.2).astype(float) for _ in range(500)] for _ in range(200)]
    return [
        {
            "task": "paired_signflip_many, 200 hypotheses x 500 prompts, R = 10,000",
            "seconds": best_of(3, lambda: st.paired_signflip_many(D, n_resamples=10_000)),
        },
        {
            "task": "balanced_differences, 200 hypotheses x 500 prompts x 4 + 4 answers, 5% NaN",
            "seconds": best_of(3, lambda: balanced_differences(scores, vs, list(range(200)))),
        },
        {
            "task": "mean_ci + auc_ci, 200 hypotheses x 500 prompts x 4 + 4 answers",
            "seconds": best_of(
                3,
                lambda: [
                    (effects.mean_ci(y.mean(axis=1) - x.mean(axis=1)), effects.auc_ci(list(x), list(y)))
                    for x, y in groups
                ],
            ),
        },
        {
            "task": "prevalence_ci, 200 hypotheses x 500 prompts x 4 answers",
            "seconds": best_of(3, lambda: [effects.prevalence_ci(x) for x in presence]),
        },
    ]


# --- 11. sequential (anytime-valid) validation -------------------------------------------------

SEQ_PROMPTS = 1000  # the validation split a hypothesis may use up: rounds end at 16, 40, 76, 130, ..., 1000
SEQ_ROUNDS = Rounds(16, 1.5, most=128)  # validate.first_round, validate.growth and validate.max_round defaults
SEQ_MIN_EFFECT = 0.1  # validate.min_effect default (standard deviations of d, as the stage reads it)
SEQ_FUTILITY = 0.2  # validate.futility_alpha default
SEQ_CHUNK = 250  # data sets drawn at once: bounded memory at 1000 prompts x 8 answers
SEQ_Q = (0.05, 0.1)
# The families of section 11b: answers_per_prompt's default (1 a side), the audit's interaction, four real
# effects among 20 hypotheses (latent shifts in the hypothesis's direction, at places spread through the
# proposal order that e-LOND follows).
SEQ_FAMILY = {
    "hypotheses": 20,
    "k": 1,
    "icc": ICC,
    "interaction": INTERACTION,
    "latent_shifts": (0.15, 0.3, 0.5, 0.8),
    "real_at": (2, 7, 12, 17),
}
# Null designs of section 11a: (label, answers of a, answers of b, scores), built like table 2's rows.
SEQ_NULLS = (
    ("k = 1, ICC 0.5", 1, 1, ScoreDesign(0.5, interaction=0.0)),
    ("k = 1, ICC 0.9", 1, 1, ScoreDesign(0.9, interaction=0.0)),
    ("k = 1, ICC 0.9, weak null (interaction SD 0.5)", 1, 1, ScoreDesign(0.9)),
    (
        "k = 1, presence judge, prevalence about 0.15, ICC 0.5",
        1,
        1,
        ScoreDesign(0.5, interaction=0.0, kind="presence", base=-2.0),
    ),
    ("1 a vs 4 b answers (balanced subsample), ICC 0.9, weak null", 1, 4, ScoreDesign(0.9)),
    ("k = 4, 5% NaN, ICC 0.5, weak null", K, K, ScoreDesign(0.5, nan_rate=NAN_RATE)),
    ("k = 4, 5% NaN, ICC 0.9, weak null", K, K, ScoreDesign(0.9, nan_rate=NAN_RATE)),
)


def sequential(sizes: dict, seed: int) -> dict:
    """The sequential mode: per-hypothesis type-I error under optional stopping (11a), and FDR, power and
    cost of run_rounds + e-BH against the fixed sign-flip + BH at equal cost (11b)."""
    return {"type_one": sequential_type_one(sizes, seed), "families": sequential_families(sizes, seed + 500)}


def sequential_type_one(sizes: dict, seed: int) -> list[dict]:
    """Null data sets of SEQ_PROMPTS prompts, one hypothesis each (directions alternate), tested at alpha."""
    rows = []
    n_sets = sizes["sequential_sets"]
    for c, (label, k_a, k_b, design) in enumerate(SEQ_NULLS):
        rng = np.random.default_rng(seed + c)
        vs = layout(SEQ_PROMPTS, k_a, k_b)
        D = np.concatenate(
            [
                balanced_differences(row_scores(rng, n, vs, design), vs, list(range(start, start + n)))[0]
                for start, n in chunks(n_sets)
            ]
        )
        sides = np.where(np.arange(n_sets) % 2 == 0, "greater", "less")
        rows.append(sequential_null_row(label, D, sides, sizes, seed + 100 * c))
    rng = np.random.default_rng(seed + 50)
    centre = skewed_score_mean(ICC)
    D = np.concatenate([skewed_differences(rng, n, SEQ_PROMPTS, "judge scores", centre) for _, n in chunks(n_sets)])
    D = np.clip(D, -1.0, 1.0)  # |d| > 1 only after centring, for a few in a million prompts
    for j, side in enumerate(("greater", "less")):
        label = f"k = {K}, ICC {ICC}, skewed interaction (Exp(1) - 1), mean zero, all '{side}'"
        rows.append(sequential_null_row(label, D, np.full(n_sets, side), sizes, seed + 60 + j))
    for c, (label, design) in enumerate(SEQ_DEPTH_NULLS):
        rows.append(sequential_depth_row(label, design, sizes, seed + 70 + c))
    return rows


# Nulls of section 11a where the answers per prompt grow (validate.sequential.Depth, from 1 a side up to 4),
# chosen after each round from the prompts seen; min_effect 0, so that null data sets deepen often.
SEQ_DEPTH_NULLS = (
    (
        "k grows 1 -> 4 (Depth), presence judge, prevalence about 0.15, ICC 0.5",
        ScoreDesign(0.5, interaction=0.0, kind="presence", base=-2.0),
    ),
    ("k grows 1 -> 4 (Depth), ICC 0.9, weak null (interaction SD 0.5)", ScoreDesign(0.9)),
)


def sequential_depth_row(label: str, design: ScoreDesign, sizes: dict, seed: int) -> dict:
    """Type-I error when each round's answers per prompt are chosen by `Depth` from the prompts seen: the
    e-process reads prompt p's first m answers a side, m fixed before p is answered."""
    rng = np.random.default_rng(seed)
    n_sets, ends = sizes["sequential_sets"], SEQ_ROUNDS.boundaries(SEQ_PROMPTS)
    sides = np.where(np.arange(n_sets) % 2 == 0, "greater", "less")
    hits, deeper, p_flip = [], [], np.full(n_sets, np.nan)
    vs = layout(SEQ_PROMPTS, K, K)
    for start, n in chunks(n_sets):
        scores = row_scores(rng, n, vs, design).reshape(n, 2, SEQ_PROMPTS, K)  # (set, side a/b, prompt, answer)
        for i in range(n):
            d, used = depth_path(scores[i, 0], scores[i, 1], DIRECTION[sides[start + i]], ends)
            hits.append(crossings(d, sides[start + i], ends))
            deeper.append(used > 1)
        every = np.nanmean(scores[:, 1], axis=2) - np.nanmean(scores[:, 0], axis=2)
        for side in ("greater", "less"):
            rows = np.flatnonzero(sides[start : start + n] == side)
            p_flip[start + rows] = signflip_p(every[rows], seed, alternative=side, n_resamples=PERMUTATION_R)
    hit = np.array(hits)
    return {
        "design": label,
        "prompts": SEQ_PROMPTS,
        "round_ends": ends,
        "rounds": {"lmdelta": SHIPS, **rate(hit[:, 0])},
        "every_prompt": {"lmdelta": "continuous monitoring (bounds any stopping rule)", **rate(hit[:, 1])},
        "signflip": {"lmdelta": f"fixed mode, all prompts, {K} answers a side", **rejections(p_flip)},
        "deepened_share": float(np.mean(deeper)),
        "run_rounds_checked": 0,
        "run_rounds_agree": 0,
    }


def depth_path(a: np.ndarray, b: np.ndarray, direction: str, ends: list[int]) -> tuple[np.ndarray, int]:
    """One data set's per-prompt differences when the depth for each round's new prompts comes from Depth on
    the prompts before them (a, b: prompts × K answers); and the deepest depth it took."""
    rule, depth, deepest = seq.Depth(1, K, 0.0), 1, 1
    d, begin, pairs, read = np.full(a.shape[0], np.nan), 0, [], np.ones(a.shape[0], dtype=int)
    for end in ends:
        block = slice(begin, end)
        d[block] = np.nanmean(b[block, :depth], axis=1) - np.nanmean(a[block, :depth], axis=1)
        read[block] = depth
        if depth > 1:
            pairs += [row[np.isfinite(row)] for row in b[block, :depth] - a[block, :depth]]
        finite = np.isfinite(d[:end])
        seen = d[:end][finite]
        e_value = betting_test(seen, side="greater" if direction == "b>a" else "less").e_value
        within = seq.within_share([p for p in pairs if p.size >= 2])
        depth = rule.next(seen, direction, e_value, 1.0 / ALPHA, a.shape[0] - end, read[:end][finite], within)
        deepest, begin = max(deepest, depth), end
    return d, deepest


def chunks(n_sets: int) -> list[tuple[int, int]]:
    return [(start, min(SEQ_CHUNK, n_sets - start)) for start in range(0, n_sets, SEQ_CHUNK)]


def crossings(d: np.ndarray, side: str, ends: list[int]) -> tuple[bool, bool]:
    """Whether the e-process reaches 1/alpha at a round's end, and after any prompt.

    The stakes are predictable, so the capital after the first n prompts of d is the e-value
    run_rounds computes from those n alone: one pass gives every round's e-value (the first
    `sequential_checks` data sets check this against run_rounds itself).
    """
    test = betting_test(d, side=side, alpha=ALPHA)
    seen = np.cumsum(np.isfinite(d))[np.asarray(ends) - 1]
    at_ends = test.capital[seen[seen > 0] - 1]
    return bool(np.any(at_ends >= 1.0 / ALPHA)), bool(test.capital.size and test.capital.max() >= 1.0 / ALPHA)


def sequential_null_row(label: str, D: np.ndarray, sides: np.ndarray, sizes: dict, seed: int) -> dict:
    ends = SEQ_ROUNDS.boundaries(D.shape[1])
    hits = np.array([crossings(d, side, ends) for d, side in zip(D, sides)])
    checked = min(sizes["sequential_checks"], len(D))
    agree = sum(
        (seq.run_rounds(D[i : i + 1], [DIRECTION[sides[i]]], SEQ_ROUNDS, ALPHA, 0.0)[0].reason == "rejected")
        == hits[i, 0]
        for i in range(checked)
    )
    p_flip = np.full(len(D), np.nan)
    for side in ("greater", "less"):
        rows = np.flatnonzero(sides == side)
        if rows.size:
            p_flip[rows] = signflip_p(D[rows], seed, alternative=side, n_resamples=PERMUTATION_R)
    return {
        "design": label,
        "prompts": D.shape[1],
        "round_ends": ends,
        "rounds": {"lmdelta": SHIPS, **rate(hits[:, 0])},
        "every_prompt": {"lmdelta": "continuous monitoring (bounds any stopping rule)", **rate(hits[:, 1])},
        "signflip": {"lmdelta": "fixed mode, all prompts", **rejections(p_flip)},
        "run_rounds_checked": checked,
        "run_rounds_agree": int(agree),
    }


DIRECTION = {"greater": "b>a", "less": "a>b"}


def sequential_families(sizes: dict, seed: int) -> list[dict]:
    """Families of 20 hypotheses on SEQ_PROMPTS shared prompts: run_rounds + e-BH against the fixed sign-flip
    + BH on every prompt and on the sequential mode's mean prompts per hypothesis (equal cost)."""
    f = SEQ_FAMILY
    vs = layout(SEQ_PROMPTS, f["k"], f["k"])
    hyps = hypotheses(f["hypotheses"])
    directions = [h.direction for h in hyps]
    real = np.isin(np.arange(len(hyps)), f["real_at"])
    shift = np.zeros(len(hyps))
    shift[list(f["real_at"])] = f["latent_shifts"]
    shift *= np.where(np.array(directions) == "b>a", 1.0, -1.0)
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(sizes["sequential_families"]):
        scores = row_scores(rng, len(hyps), vs, ScoreDesign(f["icc"], f["interaction"], shift))
        runs.append((scores, paired_differences(list(scores), hyps, vs, ValidateConfig(seed=seed + r))))
    every = fixed_p(runs, vs, hyps, seed, SEQ_PROMPTS)
    rows = []
    for q in SEQ_Q:
        found = [sequential_run(paired[0], directions, q) for _, paired in runs]
        n_seq = int(round(float(np.mean([run.used for run, _ in found]))))
        rows.append(family_row(q, "sequential: run_rounds + e-BH", [e_bh_run for e_bh_run, _ in found], real))
        rows.append(
            family_row(q, "sequential: run_rounds + e-LOND (proposal order)", [lond for _, lond in found], real)
        )
        rows.append(family_row(q, "fixed: sign-flip + BH, every prompt", fixed_bh(every, SEQ_PROMPTS, q), real))
        p = fixed_p(runs, vs, hyps, seed + 1, n_seq)
        rows.append(
            family_row(q, "fixed: sign-flip + BH, as many prompts as the sequential mean", fixed_bh(p, n_seq, q), real)
        )
    return rows


@dataclass(frozen=True)
class FamilyRun:
    """One family's decisions: prompts judged per hypothesis, rejections, and why each stopped (sequential)."""

    used: np.ndarray
    rejected: np.ndarray
    reasons: tuple[str, ...] = ()


def sequential_run(D: np.ndarray, directions: list[str], q: float) -> tuple[FamilyRun, FamilyRun]:
    """The sequential mode on one family: run_rounds at level q, then e-BH over the e-values at stopping
    (decide.primary bh), and e-LOND over them in proposal order (decide.primary online), as stages.decide
    runs it."""
    ends = [0] + SEQ_ROUNDS.boundaries(D.shape[1])
    outcomes = seq.decide(
        seq.run_rounds(D, directions, SEQ_ROUNDS, q, SEQ_MIN_EFFECT, SEQ_FUTILITY, standardized=True), q
    )
    used = np.array([ends[o.round] for o in outcomes])  # prompts judged: the end of the round it stopped after
    reasons = tuple(o.reason for o in outcomes)
    # decide.primary online: the stage keeps betting until e-LOND's own level for each place is reached
    betting = seq.run_rounds(D, directions, SEQ_ROUNDS, q, SEQ_MIN_EFFECT, SEQ_FUTILITY, online=True, standardized=True)
    online, _ = e_lond(np.array([o.e_value for o in betting]), q)
    lond_used = np.array([ends[o.round] for o in betting])
    return (
        FamilyRun(used, np.array([o.rejected for o in outcomes]), reasons),
        FamilyRun(lond_used, online, tuple(o.reason for o in betting)),
    )


def fixed_p(runs: list, vs: ValidationSet, hyps: list[Hypothesis], seed: int, n_prompts: int) -> np.ndarray:
    """(families, hypotheses) p-values of the pipeline's sign-flip (significance.hypothesis_tests) on each
    hypothesis's first n_prompts prompts. All families go in one call, so they share one sign matrix
    (as one run's hypotheses do): the matrix is most of the cost at 1000 prompts and R = 10,000."""
    scores = [row for family, _ in runs for row in family]
    paired = tuple(np.concatenate([pair[i] for _, pair in runs]) for i in (0, 1))
    mask = np.arange(len(vs.prompt_ids)) < n_prompts
    n_resamples = resamples_for(ValidateConfig(), len(hyps), min(SEQ_Q))
    found = hypothesis_tests(
        scores, paired, [mask] * len(scores), hyps * len(runs), vs, ValidateConfig(seed=seed), n_resamples
    )
    return np.array([r["p_value"] for r in found], dtype=float).reshape(len(runs), len(hyps))


def fixed_bh(p: np.ndarray, n_prompts: int, q: float) -> list[FamilyRun]:
    """BH at q within each family (a row of p)."""
    return [FamilyRun(np.full(row.size, n_prompts), fdr.benjamini_hochberg(row, q)) for row in p]


def family_row(q: float, procedure: str, found: list[FamilyRun], real: np.ndarray) -> dict:
    rejected = np.array([run.rejected for run in found])
    fdp = (rejected & ~real).sum(axis=1) / np.maximum(1, rejected.sum(axis=1))
    judged = float(np.mean([run.used for run in found]))
    sd = np.sqrt(1.0 + SEQ_FAMILY["interaction"] ** 2)  # latent SD of b's scores (ICC + noise = 1)
    return {
        "q": q,
        "procedure": procedure,
        "families": len(found),
        "prompts": SEQ_PROMPTS,
        "prompts_judged_per_hypothesis": judged,
        "share_of_fixed": judged / SEQ_PROMPTS,
        "prompts_answered": float(np.mean([run.used.max() for run in found])),  # the family's furthest round
        "fdr": float(fdp.mean()),
        "fdr_se": float(fdp.std() / np.sqrt(fdp.size)),
        "power": float(rejected[:, real].mean()),
        "power_by_effect": [
            {
                "latent_shift": s,
                "mean_difference": normal_expit_mean(s, sd) - 0.5,
                "power": float(rejected[:, i].mean()),
            }
            for i, s in zip(SEQ_FAMILY["real_at"], SEQ_FAMILY["latent_shifts"])
        ],
        "stops": stop_reasons(found, real),
    }


def stop_reasons(found: list[FamilyRun], real: np.ndarray) -> dict:
    """Shares of null and real hypotheses by why they left the loop (empty for the fixed tests)."""
    out = {}
    for name, which in (("null", ~real), ("real", real)):
        reasons = [reason for run in found for reason, keep in zip(run.reasons, which) if keep]
        out[name] = {reason: reasons.count(reason) / len(reasons) for reason in sorted(set(reasons))}
    return out


# --- report ------------------------------------------------------------------------------------


def ci(r: dict, key: str = "rate") -> str:
    return f"{r[key]:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def markdown(results: dict) -> str:
    machine_ = results["machine"]
    mode = "quick" if results["parameters"]["quick"] else "full"
    only = results["parameters"].get("only")
    if only:
        mode += f"; only {', '.join(only)}"
    header = (
        f"Calibration run {results['date']}, seed {results['seed']}, {results['seconds']} s ({mode}; "
        f"numpy {machine_['numpy']}, scipy {machine_['scipy']}, {machine_['cpus']} CPUs)."
    )
    tables = {
        "type_one_error": type_one_table,
        "unequal_counts": unequal_tables,
        "skew": skew_table,
        "coverage": coverage_tables,
        "unaligned": unaligned_table,
        "selection": selection_table,
        "null_control": control_table,
        "fdr": fdr_table,
        "power": power_table,
        "timing": timing_table,
        "sequential": sequential_tables,
    }
    return "\n\n".join([header] + [table(results[key]) for key, table in tables.items() if key in results])


def type_one_table(rows: list[dict]) -> str:
    lines = [
        f"**1. Type-I error at alpha = {ALPHA}** (null: the models do not differ; latent ICC {ICC}, "
        f"{SAMPLES} samples per prompt and side)",
        "",
        "| test | lmdelta | design | prompts | data sets | rejection rate [95% CI] | KS D | KS p | verdict |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['test']} | {r['lmdelta']} | {r['design']} | {r['prompts']} | {r['n']} | {ci(r)} | "
            f"{r['ks_d']:.3f} | {r['ks_p']:.2g} | {r['verdict']} |"
        )
    return "\n".join(lines)


def unequal_tables(found: dict) -> str:
    lines = [
        f"**2. Unequal answer counts** (one-sided tests in each hypothesis's direction; per test: every "
        f"hypothesis of every run; end to end: {UNEQUAL_HYPOTHESES} null hypotheses per run, BH at q = "
        f"{ALPHA}, share of runs that validate any)",
        "",
        "| test | lmdelta | design | prompts | per test: data sets | rejection rate [95% CI] | verdict "
        "| end to end: runs | P(BH validates any) [95% CI] | verdict |",
        "|---|---|---|---:|---:|---|---|---:|---|---|",
    ]
    e2e = {(r["test"], r["design"], r["prompts"]): r for r in found["end_to_end"]}
    for r in found["per_test"]:
        e = e2e.get((r["test"], r["design"], r["prompts"]))
        tail = f"{e['runs']} | {ci(e)} | {e['verdict']}" if e else " | | "
        lines.append(
            f"| {r['test']} | {r['lmdelta']} | {r['design']} | {r['prompts']} | {r['n']} | {ci(r)} | "
            f"{r['verdict']} | {tail} |"
        )
    return "\n".join(lines)


def skew_table(rows: list[dict]) -> str:
    lines = [
        "**3. Skewed per-prompt differences with mean zero** (weak null; one-sided; the long tail is "
        'on the positive side, so "less" is the alternative against the skew)',
        "",
        "| design | prompts | alternative | skewness of d_p (population) "
        "| sign-flip (ships; assumes symmetric d_p) | verdict | Wilcoxon (removed) | verdict |",
        "|---|---:|---|---:|---|---|---|---|",
    ]
    for r in rows:
        f, w = r["signflip"], r["wilcoxon"]
        lines.append(
            f"| {r['design']} | {r['prompts']} | {r['alternative']} | {r['skewness']:.2f} | "
            f"{ci(f)} (n = {f['n']}) | {f['verdict']} | {ci(w)} (n = {w['n']}) | {w['verdict']} |"
        )
    return "\n".join(lines)


def coverage_tables(found: dict) -> str:
    rows = found["intervals"]
    first = rows[0]
    lines = [
        f"**4. Coverage of 95% intervals** (latent shift {COVERAGE_SHIFT}, interaction SD {INTERACTION}, "
        f"k = {K}; truth E[d_p] = {first['true_mean']:.4f}, AUC of texts from independent prompts "
        f"{first['true_auc']:.4f}; target for what ships: >= {COVERAGE_TARGET})",
        "",
        "| prompts | ICC | mean: t interval (ships) | mean: percentile bootstrap (removed) "
        "| AUC: clustered logit-t (ships) | AUC withheld | AUC: cluster bootstrap (removed) |",
        "|---:|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        cells = [cover_cell(r[key]) for key in ("mean_t", "mean_bootstrap", "auc_logit_t")]
        lines.append(
            f"| {r['prompts']} | {r['icc']} | {cells[0]} | {cells[1]} | {cells[2]} | "
            f"{r['auc_logit_t']['withheld']:.3f} | {cover_cell(r['auc_bootstrap'])} |"
        )
    lines += [
        "",
        "**Prevalence intervals** (Korn-Graubard, ships; presence judge, side a, k = 4, latent SD 1)",
        "",
        "| prevalence | ICC | prompts | data sets | coverage [95% CI] | median width | verdict |",
        "|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in found["prevalence"]:
        lines.append(
            f"| {r['prevalence']} | {r['icc']} | {r['prompts']} | {r['n']} | {ci(r, 'coverage')} | "
            f"{r['median_width']:.3f} | {r['verdict']} |"
        )
    return "\n".join(lines)


def cover_cell(r: dict) -> str:
    if not r["n"]:
        return "no interval"
    mark = "" if r["meets_target"] else " **below 0.93**"
    return f"{ci(r, 'coverage')} (n = {r['n']}){mark}"


def unaligned_table(rows: list[dict]) -> str:
    lines = [
        f"**5. Unaligned corpora with hidden prompts** ({UNALIGNED_TEXTS} texts a side, ICC {ICC}, each hidden "
        "prompt's texts on one side, no difference between the sides)",
        "",
        "| texts per hidden prompt | test | lmdelta | data sets | rejection rate [95% CI] | verdict |",
        "|---:|---|---|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['texts_per_hidden_prompt']} | {r['test']} | {r['lmdelta']} | {r['n']} | {ci(r)} | {r['verdict']} |"
        )
    return "\n".join(lines)


def selection_table(rows: list[dict]) -> str:
    s = SELECTION
    lines = [
        f"**6. Validated findings** ({s['hypotheses']} hypotheses per run, {s['true_share']:.0%} real effects "
        f"with latent shift U({s['shift_low']}, {s['shift_high']}), k = {K}, ICC {s['icc']}, interaction SD "
        f"{INTERACTION}; sign-flip, BH at q = {ALPHA})",
        "",
        "| prompts | runs | validated | plain 95% interval covers | FCR-adjusted covers | FCR plain "
        "| FCR adjusted | estimate / truth (median, real effects) |",
        "|---:|---:|---:|---|---|---|---|---:|",
    ]
    for r in rows:
        inflation = "" if r["median_inflation"] is None else f"{r['median_inflation']:.2f}"
        lines.append(
            f"| {r['prompts']} | {r['runs']} | {r['validated']} | {cover_cell(r['plain'])} | "
            f"{cover_cell(r['fcr_adjusted'])} | {r['fcr_plain']:.3f} +- {r['fcr_plain_se']:.3f} | "
            f"{r['fcr_adjusted_rate']:.3f} +- {r['fcr_adjusted_se']:.3f} | {inflation} |"
        )
    return "\n".join(lines)


def control_table(rows: list[dict]) -> str:
    lines = [
        "**7. The null control (random relabelling) against valid and over-rejecting tests** (BH at q = "
        f'{ALPHA} over the null control\'s m hypotheses; "named": the share of p <= 0.05 has a 95% interval '
        "above 0.05, which the report names)",
        "",
        "| test on the relabelled data | lmdelta | design | m | runs | share of p <= 0.05 "
        "| P(validates >= 1) [95% CI] | P(share named) | P(red or named) |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['test']} | {r['lmdelta']} | {r['design']} | {r['hypotheses']} | {r['runs']} | "
            f"{r['share_small']:.3f} | {ci(r['validates_any'])} | {r['share_named']['rate']:.3f} | "
            f"{r['flagged']['rate']:.3f} |"
        )
    return "\n".join(lines)


def fdr_table(rows: list[dict]) -> str:
    s = STREAM
    lines = [
        f"**8. FDR over mixed streams** ({s['hypotheses']} hypotheses per stream, "
        f"{round(100 * (1 - s['null_share']))}% real effects with latent shift U({s['shift_low']}, "
        f"{s['shift_high']}), {s['prompts']} prompts, ICC {ICC}, {SAMPLES} samples per prompt and side, "
        f"q = {ALPHA})",
        "",
        "| pipeline | procedure | streams | FDR (+- s.e.) | power |",
        "|---|---|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pipeline']} | {r['procedure']} | {r['streams']} | {r['fdr']:.3f} +- {r['fdr_se']:.3f} | "
            f"{r['power']:.3f} |"
        )
    return "\n".join(lines)


def power_table(rows: list[dict]) -> str:
    lines = [
        f"**9. Power at alpha = {ALPHA}** (aligned design, {SAMPLES} samples per prompt and side)",
        "",
        "| prompts | latent shift | mean score difference | sign-flip power | Wilcoxon power (removed) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['prompts']} | {r['latent_shift']} | {r['mean_score_difference']:.4f} | "
            f"{r['signflip_power']:.3f} | {r['wilcoxon_power']:.3f} |"
        )
    return "\n".join(lines)


def timing_table(rows: list[dict]) -> str:
    lines = ["**10. Timing** (best of 3)", "", "| task | seconds |", "|---|---:|"]
    return "\n".join(lines + [f"| {r['task']} | {r['seconds']:.2f} |" for r in rows])


def sequential_tables(found: dict) -> str:
    ends = ", ".join(str(end) for end in SEQ_ROUNDS.boundaries(SEQ_PROMPTS))
    lines = [
        f"**11a. Sequential mode: type-I error at alpha = {ALPHA} under optional stopping** (one hypothesis per "
        f"data set, directions alternating unless stated; rounds end after {ends} prompts; a rejection is an "
        f"e-value >= 1/alpha = {1 / ALPHA:g} at any round's end (what run_rounds stops on, without the futility "
        f"rule, which only removes rejections) or after any prompt; the fixed sign-flip (R = {PERMUTATION_R}) on all "
        "the prompts of the same data sets for comparison)",
        "",
        "| design | prompts | data sets | rounds [95% CI] | verdict | every prompt [95% CI] | verdict "
        "| fixed sign-flip [95% CI] | verdict | run_rounds agrees |",
        "|---|---:|---:|---|---|---|---|---|---|---:|",
    ]
    for r in found["type_one"]:
        rounds, every, flip = r["rounds"], r["every_prompt"], r["signflip"]
        design = r["design"] + (f", deeper in {r['deepened_share']:.0%} of data sets" if "deepened_share" in r else "")
        agrees = f"{r['run_rounds_agree']}/{r['run_rounds_checked']}" if r["run_rounds_checked"] else "–"
        lines.append(
            f"| {design} | {r['prompts']} | {rounds['n']} | {ci(rounds)} | {rounds['verdict']} | {ci(every)} | "
            f"{every['verdict']} | {ci(flip)} | {flip['verdict']} | {agrees} |"
        )
    return "\n".join(lines + ["", family_table(found["families"])])


def family_table(rows: list[dict]) -> str:
    f = SEQ_FAMILY
    effects_ = ", ".join(f"{e['mean_difference']:.3f}" for e in rows[0]["power_by_effect"])
    lines = [
        f"**11b. Sequential mode: FDR, power and cost** ({f['hypotheses']} hypotheses per family, "
        f"{len(f['latent_shifts'])} real with latent shifts {', '.join(map(str, f['latent_shifts']))} (mean "
        f"differences {effects_}), {SEQ_PROMPTS} prompts, k = {f['k']}, ICC {f['icc']}, interaction SD "
        f"{f['interaction']}, min_effect {SEQ_MIN_EFFECT} SD of d; cost: prompts judged per hypothesis, and prompts "
        "answered (the family's furthest round), as shares of the fixed protocol)",
        "",
        "| q | procedure | families | prompts judged per hypothesis (share) | prompts answered (share) "
        "| FDR (+- s.e.) | power | power by mean difference |",
        "|---:|---|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        by_effect = " / ".join(f"{e['power']:.2f}" for e in r["power_by_effect"])
        lines.append(
            f"| {r['q']} | {r['procedure']} | {r['families']} | {r['prompts_judged_per_hypothesis']:.0f} "
            f"({r['share_of_fixed']:.2f}) | {r['prompts_answered']:.0f} ({r['prompts_answered'] / r['prompts']:.2f}) "
            f"| {r['fdr']:.3f} +- {r['fdr_se']:.3f} | {r['power']:.3f} | {by_effect} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Calibration of lmdelta's tests (docs/statistics.md, STATISTICS.md section 7).

Simulated judge scores with a prompt random effect (latent ICC 0.5, 20 samples per prompt and
side, score = logistic(latent); the presence judge draws 0/1 with that probability):

1. type-I error, Clopper-Pearson interval and KS uniformity of null p-values for each test,
   and for the reference's Mann-Whitney over texts in its unpaired sampling design;
2. FDR and power of BH, BY, SAFFRON, ADDIS and LORD++ over mixed streams of hypotheses, next
   to the reference pipeline (Mann-Whitney over unpaired texts, then BH or SAFFRON);
3. power of the sign-flip test (and Wilcoxon) against effect size x prompt count;
4. timing of the vectorised sign-flip and the prompt-bootstrap AUC at pipeline scale.

    .venv/bin/python benchmarks/calibration.py [--quick] [--seed 2024] [--out PATH]

Writes benchmarks/results/calibration.json and prints the tables as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

from lmdelta.stats import effects, fdr
from lmdelta.stats import tests as st

ALPHA = 0.05
ICC = 0.5
SAMPLES = 20  # per prompt and side
PROMPT_COUNTS = (20, 50, 100)
SIGNFLIP_R = 10_000  # resamples of the sign-flip test, as in the pipeline
PERMUTATION_R = 999  # resamples of the slower permutation tests (valid at any R; coarser p-values)
INTERACTION_SD = 0.3  # latent SD of the prompt x side effect in the weak-null rows
RESULTS = Path(__file__).parent / "results" / "calibration.json"

FULL = {"null_sets": 2000, "slow_null_sets": 1000, "streams": 200, "power_sets": 500}
QUICK = {"null_sets": 300, "slow_null_sets": 100, "streams": 40, "power_sets": 150}


def main() -> None:
    args = parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": {"alpha": ALPHA, "icc_latent": ICC, "samples_per_prompt_per_side": SAMPLES,
                       "prompt_counts": PROMPT_COUNTS, "signflip_resamples": SIGNFLIP_R,
                       "permutation_resamples": PERMUTATION_R, "interaction_sd": INTERACTION_SD,
                       "stream": STREAM, "power_shifts": SHIFTS, "quick": args.quick, **sizes},
        "seed": args.seed,
        "machine": machine(),
        "type_one_error": type_one_error(sizes, args.seed),
        "fdr": fdr_streams(sizes, args.seed + 1000),
        "power": power(sizes, args.seed + 2000),
        "timing": timing(args.seed + 3000),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer simulated data sets (about a minute)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def machine() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform()}


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


# --- 1. type-I error ---------------------------------------------------------------------------


def signflip_p(D: np.ndarray, seed: int, block: int = 100) -> np.ndarray:
    """Sign-flip p-values, a fresh sign matrix per block of data sets."""
    return np.concatenate([st.paired_signflip_many(D[i:i + block], n_resamples=SIGNFLIP_R, seed=seed + i)[1]
                           for i in range(0, D.shape[0], block)])


def rate_row(test, design, n_prompts, p_values) -> dict:
    """Rejection rate at alpha with a Clopper-Pearson 95% interval and a KS check of uniformity.

    The verdict asks for strong evidence (one-sided binomial test, p < 0.001) before calling a
    test over-rejecting or conservative: with two dozen rows, a 95% interval alone would flag
    about one valid test by chance.
    """
    p_values = np.asarray(p_values)
    n, hits = p_values.size, int(np.sum(p_values <= ALPHA))
    interval = stats.binomtest(hits, n, ALPHA).proportion_ci(0.95, method="exact")
    ks = stats.kstest(p_values, "uniform")
    verdict = "consistent with alpha"
    if stats.binomtest(hits, n, ALPHA, alternative="greater").pvalue < 1e-3:
        verdict = "over-rejects"
    elif stats.binomtest(hits, n, ALPHA, alternative="less").pvalue < 1e-3:
        verdict = "conservative"
    return {"test": test, "design": design, "prompts": n_prompts, "data_sets": n, "rate": hits / n,
            "ci_low": float(interval.low), "ci_high": float(interval.high), "ks_d": float(ks.statistic),
            "ks_p": float(ks.pvalue), "verdict": verdict}


def type_one_error(sizes: dict, seed: int) -> list[dict]:
    rows = []
    for i, n_prompts in enumerate(PROMPT_COUNTS):
        rng = np.random.default_rng(seed + i)
        rows += aligned_null_rows(rng, n_prompts, sizes, seed + 100 * i)
        rows += unpaired_null_rows(rng, n_prompts, sizes, seed + 100 * i)
    rng = np.random.default_rng(seed + 50)
    a, b = aligned(rng, sizes["slow_null_sets"], 50, interaction=INTERACTION_SD)
    design = "aligned, weak null (prompt x side interaction)"
    rows.append(rate_row("sign-flip", design, 50, signflip_p(differences(a, b), seed + 51)))
    rows.append(rate_row("Wilcoxon signed-rank", design, 50, [st.wilcoxon_signed_rank(d).p_value
                                                               for d in differences(a, b)]))
    rows.append(rate_row("within-prompt permutation", design, 50, within_p(a, b, seed + 52)))
    return rows


def within_p(a, b, seed) -> list[float]:
    return [st.within_prompt_permutation(list(a_set), list(b_set), n_resamples=PERMUTATION_R, seed=seed + j).p_value
            for j, (a_set, b_set) in enumerate(zip(a, b))]


def aligned_null_rows(rng, n_prompts, sizes, seed) -> list[dict]:
    a, b = aligned(rng, sizes["null_sets"], n_prompts)
    D = differences(a, b)
    rows = [rate_row("sign-flip", "aligned, score judge", n_prompts, signflip_p(D, seed)),
            rate_row("Wilcoxon signed-rank", "aligned, score judge", n_prompts,
                     [st.wilcoxon_signed_rank(d).p_value for d in D])]
    a, b = aligned(rng, sizes["null_sets"], n_prompts, kind="presence")
    rows.append(rate_row("sign-flip", "aligned, presence judge", n_prompts, signflip_p(differences(a, b), seed + 1)))
    a, b = aligned(rng, sizes["slow_null_sets"], n_prompts, k_a=SAMPLES, k_b=SAMPLES // 2)
    rows.append(rate_row("within-prompt permutation", "aligned, 20 a vs 10 b per prompt", n_prompts,
                         within_p(a, b, seed + 2)))
    return rows


def unpaired_null_rows(rng, n_prompts, sizes, seed) -> list[dict]:
    a, b = unpaired(rng, sizes["null_sets"], n_prompts)
    design = "unpaired, 20 texts per prompt"
    rows = [rate_row("Mann-Whitney over texts (reference)", design, n_prompts,
                     [st.mann_whitney(x, y).p_value for x, y in zip(a, b)])]
    clusters = np.repeat(np.arange(2 * n_prompts), SAMPLES)
    is_b = clusters >= n_prompts
    slow = sizes["slow_null_sets"]
    p_cluster = [st.cluster_permutation(np.concatenate([x, y]), is_b, clusters, n_resamples=PERMUTATION_R,
                                        seed=seed + j).p_value for j, (x, y) in enumerate(zip(a[:slow], b[:slow]))]
    rows.append(rate_row("cluster permutation (prompt = cluster)", design, n_prompts, p_cluster))
    a, b = unpaired(rng, sizes["null_sets"], n_prompts, k=1)
    rows.append(rate_row("Mann-Whitney over texts", "unpaired, 1 text per prompt", n_prompts,
                         [st.mann_whitney(x, y).p_value for x, y in zip(a, b)]))
    return rows


# --- 2. FDR over mixed streams -----------------------------------------------------------------

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
    return [{"pipeline": key[0], "procedure": key[1], "streams": sizes["streams"], **STREAM,
             "fdr": float(np.mean(fdp[key])), "fdr_se": float(np.std(fdp[key]) / np.sqrt(len(fdp[key]))),
             "power": float(np.mean(tpr[key]))} for key in pipelines]


# --- 3. power ----------------------------------------------------------------------------------

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
            rows.append({"prompts": n_prompts, "latent_shift": shift, "mean_score_difference": float(D.mean()),
                         "data_sets": sizes["power_sets"], "signflip_power": float(np.mean(p_flip <= ALPHA)),
                         "wilcoxon_power": float(np.mean(p_wilcoxon <= ALPHA))})
    return rows


# --- 4. timing ---------------------------------------------------------------------------------


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
    a = [[rng.random(2) for _ in range(500)] for _ in range(200)]
    b = [[rng.random(2) for _ in range(500)] for _ in range(200)]
    return [
        {"task": "paired_signflip_many, 200 hypotheses x 500 prompts, R = 10,000",
         "seconds": best_of(3, lambda: st.paired_signflip_many(D, n_resamples=10_000))},
        {"task": "bootstrap_mean_ci, 200 hypotheses x 500 prompts, 2,000 resamples",
         "seconds": best_of(1, lambda: [effects.bootstrap_mean_ci(d) for d in D])},
        {"task": "auc_ci_by_prompt, 200 hypotheses x 500 prompts x 2 samples, 2,000 resamples",
         "seconds": best_of(1, lambda: [effects.auc_ci_by_prompt(x, y) for x, y in zip(a, b)])},
    ]


# --- report ------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    machine_ = results["machine"]
    mode = "quick" if results["parameters"]["quick"] else "full"
    header = (f"Calibration run {results['date']}, seed {results['seed']}, {results['seconds']} s ({mode}; "
              f"numpy {machine_['numpy']}, scipy {machine_['scipy']}, {machine_['cpus']} CPUs).")
    sections = [header, type_one_table(results["type_one_error"]), fdr_table(results["fdr"]),
                power_table(results["power"]), timing_table(results["timing"])]
    return "\n\n".join(sections)


def type_one_table(rows: list[dict]) -> str:
    lines = [f"**Type-I error at alpha = {ALPHA}** (null: the models do not differ; latent ICC {ICC}, "
             f"{SAMPLES} samples per prompt and side)", "",
             "| test | design | prompts | data sets | rejection rate | 95% CI (Clopper-Pearson) | KS D | KS p "
             "| verdict |", "|---|---|---:|---:|---:|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['test']} | {r['design']} | {r['prompts']} | {r['data_sets']} | {r['rate']:.3f} | "
                     f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['ks_d']:.3f} | {r['ks_p']:.2g} | {r['verdict']} |")
    return "\n".join(lines)


def fdr_table(rows: list[dict]) -> str:
    s = STREAM
    lines = [f"**FDR over mixed streams** ({s['hypotheses']} hypotheses per stream, "
             f"{round(100 * (1 - s['null_share']))}% real effects with latent shift U({s['shift_low']}, "
             f"{s['shift_high']}), {s['prompts']} prompts, q = {ALPHA})", "",
             "| pipeline | procedure | streams | FDR (+- s.e.) | power |", "|---|---|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['pipeline']} | {r['procedure']} | {r['streams']} | {r['fdr']:.3f} +- {r['fdr_se']:.3f} | "
                     f"{r['power']:.3f} |")
    return "\n".join(lines)


def power_table(rows: list[dict]) -> str:
    lines = [f"**Power at alpha = {ALPHA}** (aligned design, {SAMPLES} samples per prompt and side)", "",
             "| prompts | latent shift | mean score difference | sign-flip power | Wilcoxon power |",
             "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['prompts']} | {r['latent_shift']} | {r['mean_score_difference']:.4f} | "
                     f"{r['signflip_power']:.3f} | {r['wilcoxon_power']:.3f} |")
    return "\n".join(lines)


def timing_table(rows: list[dict]) -> str:
    lines = ["**Timing**", "", "| task | seconds |", "|---|---:|"]
    return "\n".join(lines + [f"| {r['task']} | {r['seconds']:.2f} |" for r in rows])


if __name__ == "__main__":
    main()

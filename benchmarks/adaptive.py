"""Adaptive validation at the reference's scale: the fixed protocol against validate.mode = sequential.

A deterministic synthetic pair with known differences: 20,000 validation prompts in 10 groups of
2,000, 100 hypotheses (20 over all prompts, 80 over one group each), 10 of them real (mean
differences from 0.03 to 0.34 in presence share, b over a), 90 null; a latent prompt effect makes
answers to one prompt alike (ICC about 0.4 on the logit scale). Per answer, the judge gives 0/1
(presence), every answer has TOKENS tokens.

- fixed: every prompt answered K_FIXED times per side, every text in a hypothesis's scope judged,
  the prompt-level test on all of them (a one-sample t-test on d_p: at 2,000-20,000 prompts the
  sign-flip's p-value and the t-test's agree to the Monte Carlo error, and the sign-flip at that size
  would take hours per repetition), BH at q;
- sequential: lmdelta's own code (`validate.sequential.assess`, `round_order`, `Rounds`, `Depth`,
  `stats.sequential.e_bh`): one answer per prompt and side (up to K_FIXED for the next prompts of a
  hypothesis whose prompts run short, as validate.max_answers_per_prompt allows), rounds of 16, 24,
  36, ... in-scope prompts per undecided hypothesis (at most validate.max_round), a prompt answered only
  when some undecided hypothesis needs it, the stage's stop thresholds (e >= H/(q (s + 1)) once s have
  settled), futility at validate.min_effect and validate.futility_alpha, e-BH at q.

Counts (machine-independent): generated tokens (answers × TOKENS), judge calls ((hypothesis, text)
pairs judged); power per effect size and false discoveries over the repetitions; time per repetition.

    .venv/bin/python benchmarks/adaptive.py [--quick] [--reps 200] [--out PATH]

Writes benchmarks/results/adaptive.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.rundir import RunDir
from lmdelta.stats import fdr
from lmdelta.stats.sequential import e_bh
from lmdelta.validate.sequential import Depth, Rounds, Stopping, assess, round_order, settled_threshold, within_share

RESULTS = Path(__file__).parent / "results" / "adaptive.json"
N_PROMPTS, N_GROUPS = 20_000, 10
N_ALL, PER_GROUP = 20, 8  # hypotheses over all prompts; per group
K_FIXED, K_SEQUENTIAL, TOKENS = 4, 1, 100
Q, FIRST, GROWTH = 0.05, 16, 1.5
# (validate.min_effect in standard deviations of d, validate.futility_alpha, validate.max_round): the defaults
# first, then rounds that keep growing (the default before 2026-12-06), a safer futility rule and two coarser
# effects worth reporting.
VARIANTS = ((0.1, 0.2, 128), (0.1, 0.2, None), (0.1, 0.05, 128), (0.15, 0.2, 128), (0.2, 0.2, 128))
# (hypothesis index, logit shift of b): five real pooled hypotheses, five real group ones.
REAL = {0: 0.45, 1: 0.6, 2: 0.8, 3: 1.0, 4: 1.5, 20: 0.45, 36: 0.6, 52: 0.8, 68: 1.0, 84: 1.5}
BASE_LOGIT, PROMPT_SD = -1.0, 1.5


def main() -> None:
    args = parse_args()
    reps = 20 if args.quick and args.reps is None else (args.reps or 200)
    effects = true_effects(np.random.default_rng(args.seed))
    start = time.perf_counter()
    with Pool(max(1, min(2, os.cpu_count() or 1))) as pool:
        outcomes = pool.map(one_rep, [(args.seed, r) for r in range(reps)])
    results = {
        "pipeline": None,
        "parameters": parameters(reps, args.seed),
        "effects": {str(h): effects[h] for h in REAL},
        "summary": summarize(outcomes, effects),
        "seconds": round(time.perf_counter() - start, 1),
        "date": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")  # the repetitions are kept if the pipeline fails
    if args.pipeline:
        results["pipeline"] = pipeline_comparison(args.pipeline)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 repetitions (a minute or two)")
    parser.add_argument(
        "--pipeline", type=int, default=0, metavar="PROMPTS", help="also run the pipeline on fake models, both modes"
    )
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def pipeline_comparison(n_prompts: int) -> dict[str, Any]:
    """The real pipeline on a fake pair (b mentions "ocean" in 30% of its answers and writes longer ones),
    n_prompts in 20 groups, 4 answers per prompt and side in the fixed mode: summary.json's tokens and
    judge calls, what validated, and the wall time, per mode."""
    root = Path(tempfile.mkdtemp(prefix="lmdelta-adaptive-"))
    bank = root / "bank.jsonl"
    rows = [
        {"id": f"p{i}", "text": f"Question {i} about topic {i % 20}: how does thing {i} work?", "group": f"g{i % 20}"}
        for i in range(n_prompts)
    ]
    bank.write_text("".join(json.dumps(row) + "\n" for row in rows))
    found = {}
    for mode in ("fixed", "sequential"):
        config = load_config(None, [f"{k}={v}" for k, v in pipeline_settings(bank, mode).items()])
        start = time.perf_counter()
        pipeline.run(config, RunDir(root / mode))
        summary = json.loads(RunDir(root / mode).summary_path.read_text())
        found[mode] = {
            "seconds": round(time.perf_counter() - start, 1),
            "tokens_generated": summary["tokens_generated"],
            "judge_calls": summary["judge_calls"],
            "tested": summary["main"]["tested"],
            "validated": summary["main"]["validated"],
            "null_validated": summary["null"]["validated"],
            "procedure": summary["procedure"],
        }
    return {"prompts": n_prompts, "groups": 20, "runs": found}


def pipeline_settings(bank: Path, mode: str) -> dict[str, Any]:
    return {
        "prompts.source": str(bank),
        "generate.a.model": "fake:words",
        "generate.b.model": "fake:words",
        "generate.b.backend_args": json.dumps({"topic_words": ["ocean"], "topic_rate": 0.3, "length": 14}),
        "generate.samples_per_prompt": 4,
        "generate.batch_size": 64,
        "embed.model": "fake:hashing",
        "group.by": "bank",
        "validate.mode": mode,
        "validate.n_resamples": 2000,
    }


def parameters(reps: int, seed: int) -> dict[str, Any]:
    return {
        "prompts": N_PROMPTS,
        "groups": N_GROUPS,
        "hypotheses": N_ALL + N_GROUPS * PER_GROUP,
        "real": len(REAL),
        "answers_per_prompt": {"fixed": K_FIXED, "sequential": K_SEQUENTIAL},
        "tokens_per_answer": TOKENS,
        "q": Q,
        "variants (min_effect, futility_alpha, max_round)": [list(v) for v in VARIANTS],
        "rounds": {"first": FIRST, "growth": GROWTH},
        "repetitions": reps,
        "seed": seed,
    }


def scope_of(h: int) -> int | None:
    """None: every prompt; else the group."""
    return None if h < N_ALL else (h - N_ALL) // PER_GROUP


def true_effects(rng: np.random.Generator) -> dict[int, float]:
    """E[d] of each real hypothesis (presence share of b minus a), by Monte Carlo over the prompt effect."""
    u = rng.normal(0.0, PROMPT_SD, 400_000)
    base = expit(BASE_LOGIT + u)
    return {h: float(np.mean(expit(BASE_LOGIT + u + shift) - base)) for h, shift in REAL.items()}


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw(seed: int, rep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per hypothesis and prompt, the presence counts of K_FIXED answers per side; the first answer of each
    side is the one the sequential mode asks for (answer 0 has the same key in both modes)."""
    rng = np.random.default_rng([seed, rep])
    n_hyp = N_ALL + N_GROUPS * PER_GROUP
    u = rng.normal(0.0, PROMPT_SD, (n_hyp, N_PROMPTS))
    shift = np.zeros((n_hyp, 1))
    for h, value in REAL.items():
        shift[h] = value
    p_a, p_b = expit(BASE_LOGIT + u), expit(BASE_LOGIT + u + shift)
    a = rng.random((K_FIXED, n_hyp, N_PROMPTS)) < p_a
    b = rng.random((K_FIXED, n_hyp, N_PROMPTS)) < p_b
    groups = np.repeat(np.arange(N_GROUPS), N_PROMPTS // N_GROUPS)
    return a, b, groups


def one_rep(task: tuple[int, int]) -> dict[str, Any]:
    seed, rep = task
    a, b, groups = draw(seed, rep)
    found = {"fixed": fixed(a, b, groups)}
    for min_effect, futility_alpha, most in VARIANTS:
        key = f"sequential {min_effect} {futility_alpha} {most}"
        found[key] = sequential(a, b, groups, seed, (min_effect, futility_alpha, most))
    return found


def scope_mask(h: int, groups: np.ndarray) -> np.ndarray:
    group = scope_of(h)
    return np.ones(groups.size, dtype=bool) if group is None else groups == group


def fixed(a: np.ndarray, b: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    start = time.perf_counter()
    d = b.mean(axis=0) - a.mean(axis=0)
    p = []
    for h in range(d.shape[0]):
        scoped = d[h, scope_mask(h, groups)]
        p.append(stats.ttest_1samp(scoped, 0.0, alternative="greater").pvalue)
    rejected = fdr.benjamini_hochberg(np.nan_to_num(np.array(p), nan=1.0), Q)
    calls = sum(int(scope_mask(h, groups).sum()) * 2 * K_FIXED for h in range(d.shape[0]))
    return {
        "rejected": [int(h) for h in np.flatnonzero(rejected)],
        "tokens": N_PROMPTS * 2 * K_FIXED * TOKENS,
        "judge_calls": calls,
        "seconds": time.perf_counter() - start,
    }


def sequential(
    a: np.ndarray, b: np.ndarray, groups: np.ndarray, seed: int, variant: tuple[float, float, int | None]
) -> dict[str, Any]:
    """The sequential stage's allocation, stops and answer depths: K_SEQUENTIAL answers per prompt and side, up to
    K_FIXED where a hypothesis's prompts run short (`Depth`, as the stage reads it: its static bar H/q)."""
    start = time.perf_counter()
    min_effect, futility_alpha, most = variant
    n_hyp = a.shape[1]
    order = np.array([int(pid) for pid in round_order([str(i) for i in range(N_PROMPTS)], seed)])
    scoped = [order[scope_mask(h, groups)[order]] for h in range(n_hyp)]
    outcomes: dict[int, Any] = {}
    depth_rule = Depth(K_SEQUENTIAL, K_FIXED, min_effect)
    seen: list[list[float]] = [[] for _ in range(n_hyp)]
    read: list[list[int]] = [[] for _ in range(n_hyp)]  # the depth each seen prompt was read at
    pairs: list[list[np.ndarray]] = [[] for _ in range(n_hyp)]
    depth, held = [K_SEQUENTIAL] * n_hyp, np.zeros(N_PROMPTS, dtype=int)
    ends = Rounds(FIRST, GROWTH, most=most).boundaries(N_PROMPTS)
    used, calls = np.zeros(n_hyp, dtype=int), 0
    for number, end in enumerate(ends, start=1):
        live = [h for h in range(n_hyp) if h not in outcomes or outcomes[h].reason == "live"]
        if not live:
            break
        for h in live:
            take = min(end, scoped[h].size)
            fresh, m = scoped[h][used[h] : take], depth[h]
            held[fresh] = np.maximum(held[fresh], m)
            seen[h] += (b[:m, h, fresh].mean(axis=0) - a[:m, h, fresh].mean(axis=0)).tolist()
            read[h] += [m] * fresh.size
            if m > 1:
                pairs[h] += list((b[:m, h, fresh].astype(float) - a[:m, h, fresh]).T)
            calls += fresh.size * 2 * m
            more = scoped[h].size > take
            last = number == len(ends) or not more
            settled = sum(o.reason == "rejected" for o in outcomes.values())
            rule = Stopping(Q, settled_threshold(n_hyp, Q, settled), min_effect, futility_alpha, standardized=True)
            d = np.array(seen[h])
            outcomes[h] = assess(d, "b>a", rule, number, last, more)
            used[h] = take
            if outcomes[h].reason == "live":
                left, within = scoped[h].size - take, within_share(pairs[h])
                depths = np.array(read[h])
                depth[h] = depth_rule.next(d, "b>a", outcomes[h].e_value, n_hyp / Q, left, depths, within)
    e = [outcomes[h].e_value for h in range(n_hyp)]
    rejected = e_bh(e, Q)
    return {
        "rejected": [int(h) for h in np.flatnonzero(rejected)],
        "tokens": int(held.sum()) * 2 * TOKENS,
        "judge_calls": calls,
        "prompts_answered": int((held > 0).sum()),
        "prompts_deeper": int((held > K_SEQUENTIAL).sum()),
        "futile_nulls": sum(outcomes[h].reason == "futile" for h in range(n_hyp) if h not in REAL),
        "rounds": max(o.round for o in outcomes.values()),
        "seconds": time.perf_counter() - start,
    }


def summarize(outcomes: list[dict[str, Any]], effects: dict[int, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_null = N_ALL + N_GROUPS * PER_GROUP - len(REAL)
    for mode in outcomes[0]:
        runs = [o[mode] for o in outcomes]
        fdp = [sum(h not in REAL for h in r["rejected"]) / max(1, len(r["rejected"])) for r in runs]
        out[mode] = {
            "tokens": float(np.mean([r["tokens"] for r in runs])),
            "judge_calls": float(np.mean([r["judge_calls"] for r in runs])),
            "fdr": float(np.mean(fdp)),
            "false_discoveries": int(sum(sum(h not in REAL for h in r["rejected"]) for r in runs)),
            "nulls_tested": n_null * len(runs),
            "power": {str(h): float(np.mean([h in r["rejected"] for r in runs])) for h in REAL},
            "seconds_per_rep": float(np.mean([r["seconds"] for r in runs])),
        }
        if mode != "fixed":
            out[mode]["prompts_answered"] = float(np.mean([r["prompts_answered"] for r in runs]))
            out[mode]["prompts_deeper"] = float(np.mean([r["prompts_deeper"] for r in runs]))
            out[mode]["futile_share_of_nulls"] = float(np.mean([r["futile_nulls"] for r in runs]) / n_null)
            out[mode]["rounds"] = float(np.mean([r["rounds"] for r in runs]))
            out[mode]["saving"] = {
                "tokens": out["fixed"]["tokens"] / out[mode]["tokens"],
                "judge_calls": out["fixed"]["judge_calls"] / out[mode]["judge_calls"],
            }
    return out


def markdown(results: dict[str, Any]) -> str:
    s, effects = results["summary"], results["effects"]
    modes = list(s)
    names = [_variant(m) for m in modes[1:]]
    header = " | ".join(["fixed", *names])
    lines = [
        f"{results['parameters']['repetitions']} repetitions, {N_PROMPTS:,} prompts, 100 hypotheses (10 real), "
        f"q = {Q}, rounds {FIRST} × {GROWTH}",
        "",
        f"| | {header} |",
        "|---|" + "---:|" * len(modes),
        _row("generated tokens", [f"{s[m]['tokens']:,.0f}" + _saving(s[m], "tokens") for m in modes]),
        _row("judge calls", [f"{s[m]['judge_calls']:,.0f}" + _saving(s[m], "judge_calls") for m in modes]),
        _row("FDR (mean FDP)", [f"{s[m]['fdr']:.3f}" for m in modes]),
        _row("false discoveries / nulls", [f"{s[m]['false_discoveries']} / {s[m]['nulls_tested']}" for m in modes]),
        _row("nulls stopped as futile", ["–"] + [f"{s[m]['futile_share_of_nulls']:.2f}" for m in modes[1:]]),
        _row("prompts answered (deeper than 1)", ["20,000 (all 4)"] + [_answered(s[m]) for m in modes[1:]]),
        _row("rounds", ["1"] + [f"{s[m]['rounds']:.1f}" for m in modes[1:]]),
        _row("time per repetition (s)", [f"{s[m]['seconds_per_rep']:.2f}" for m in modes]),
    ]
    for h in sorted(effects, key=lambda k: effects[k]):
        scope = "all prompts" if scope_of(int(h)) is None else "one group"
        lines.append(_row(f"power, effect {effects[h]:.3f} ({scope})", [f"{s[m]['power'][h]:.2f}" for m in modes]))
    return "\n".join(lines)


def _variant(mode: str) -> str:
    _, min_effect, futility, most = mode.split()
    rounds = "rounds growing" if most == "None" else f"rounds ≤ {most}"
    return f"sequential, min_effect {min_effect}, futility {futility}, {rounds}"


def _answered(entry: dict[str, Any]) -> str:
    return f"{entry['prompts_answered']:,.0f} ({entry['prompts_deeper']:,.1f})"


def _row(name: str, cells: list[str]) -> str:
    return f"| {name} | " + " | ".join(cells) + " |"


def _saving(entry: dict[str, Any], key: str) -> str:
    return f" ({entry['saving'][key]:.1f}× less)" if "saving" in entry else ""


if __name__ == "__main__":
    main()

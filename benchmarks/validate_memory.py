"""Memory of the paired test over many hypotheses at scale: a baseline revision and lmdelta side by side.

What `validate` does once its judges have scored the texts, for one comparison: per-prompt differences of
H hypotheses balanced by a seeded subsample (`paired_differences`), then the sign-flip tests of all of them
(`hypothesis_tests`). Synthetic, the size of a 2,000,000-text corpus run's validation split scaled by
--prompts: P prompts with k a and k b texts each (--answers), H keyword-like hypotheses (scores 0 or 1, 5 % of them
with a planted difference), each scope the whole set (or, with --groups G, one hypothesis in G + 1 over every prompt
and the others over one of G prompt groups, as a corpus run's proposers scope them), q = 0.05, the validate defaults
otherwise.

Each variant runs in a fresh subprocess on its own source tree (the baseline from `git archive REV`): the
scores are made first, then tracemalloc's peak (numpy's buffers included) and the wall time of the two calls
are taken. Both variants must give the same statistics (to the last bit, or within rounding against a baseline that
summed each row over the widest row's prompts, before 2026-12-04); the p-values are the same unless the baseline
predates the block-wise Monte Carlo draw (validate VERSION 8), when they must agree within Monte Carlo error and give
the same BH decisions at q = 0.05. The table says which.

    .venv/bin/python benchmarks/validate_memory.py [--prompts 250000] [--hypotheses 240] [--answers 1]
        [--groups 10] [--baseline 118cc61]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from datetime import date
from pathlib import Path

import numpy as np
from revisions import baseline_source

ROOT = Path(__file__).resolve().parents[1]


def child(prompts: int, hypotheses: int, answers: int, groups: int = 0) -> dict:
    from lmdelta.config import ValidateConfig
    from lmdelta.records import Hypothesis
    from lmdelta.validate.sets import ValidationSet
    from lmdelta.validate.significance import hypothesis_tests, paired_differences, resamples_for

    rng = np.random.default_rng(0)
    prompt_of_row = np.repeat(np.arange(prompts), 2 * answers)
    is_b = np.tile([False] * answers + [True] * answers, prompts)
    ids = [f"p{i}" for i in range(prompts)]
    prompt_groups = np.array([f"g{p % groups}" if groups else "all" for p in range(prompts)])
    vs = ValidationSet(np.arange(is_b.size), ids, prompt_of_row, is_b, prompt_groups)
    scopes = ["all" if not groups or h % (groups + 1) == 0 else f"g{h % groups}" for h in range(hypotheses)]
    hyps = [
        Hypothesis(f"h{h}", scope, "b>a" if h % 2 else "a>b", f"word {h}", "keywords", "keyword", keywords=(f"w{h}",))
        for h, scope in enumerate(scopes)
    ]
    rates = [(0.10, 0.13) if h % 20 == 0 else (0.10, 0.10) for h in range(hypotheses)]
    scores = [(rng.random(is_b.size) < np.where(is_b, b, a)).astype(float) for a, b in rates]
    config = ValidateConfig(seed=0)
    n_resamples = resamples_for(config, hypotheses, 0.05)
    tracemalloc.start()
    start = time.perf_counter()
    paired = paired_differences(scores, hyps, vs, config)
    tests = hypothesis_tests(scores, paired, [vs.scope(h.group) for h in hyps], hyps, vs, config, n_resamples)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    digest = hashlib.sha256(json.dumps([[t["statistic"], t["p_value"]] for t in tests]).encode()).hexdigest()
    statistics = hashlib.sha256(json.dumps([t["statistic"] for t in tests]).encode()).hexdigest()
    return {
        "seconds": round(seconds, 1),
        "peak_mib": round(peak / 2**20),
        "scores_mib": round(sum(s.nbytes for s in scores) / 2**20),
        "n_resamples": n_resamples,
        "smallest_p": min(t["p_value"] for t in tests),
        "results_sha256": digest[:16],
        "statistics_sha256": statistics[:16],
        "p_values": [t["p_value"] for t in tests],
        "statistics": [t["statistic"] for t in tests],
    }


def run_variant(src: Path, args: argparse.Namespace) -> dict:
    sizes = ["--prompts", str(args.prompts), "--hypotheses", str(args.hypotheses), "--answers", str(args.answers)]
    sizes += ["--groups", str(args.groups)]
    command = [sys.executable, __file__, "--child", *sizes]
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(child(args.prompts, args.hypotheses, args.answers, args.groups)))
        return
    baseline = baseline_source(args.baseline, Path(args.scratch))
    results = {f"baseline ({args.baseline})": run_variant(baseline, args), "lmdelta": run_variant(ROOT / "src", args)}
    same = len({r["results_sha256"] for r in results.values()}) == 1
    before, now = (np.array(r.pop("p_values")) for r in results.values())
    stat_before, stat_now = (np.array(r.pop("statistics")) for r in results.values())
    record = {
        "date": str(date.today()),
        "prompts": args.prompts,
        "answers_per_side": args.answers,
        "texts": 2 * args.answers * args.prompts,
        "hypotheses": args.hypotheses,
        "groups": args.groups,
        "same_results": same,
        "same_statistics": len({r["statistics_sha256"] for r in results.values()}) == 1,
        "largest_statistic_difference": float(np.max(np.abs(stat_before - stat_now))),
        "largest_p_value_difference": float(np.max(np.abs(before - now))),
        "same_bh_decisions": bool(np.array_equal(_bh(before, 0.05), _bh(now, 0.05))),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print("| code | peak MiB (scores aside) | seconds | scores MiB | resamples |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['peak_mib']:,} | {r['seconds']} | {r['scores_mib']:,} | {r['n_resamples']:,} |")
    print(f"same statistics and p-values: {same}")
    if not same:  # a new Monte Carlo draw: the statistics must agree, the p-values within Monte Carlo error
        keys = ("same_statistics", "largest_statistic_difference", "largest_p_value_difference", "same_bh_decisions")
        print({key: record[key] for key in keys})


def _bh(p_values: np.ndarray, q: float) -> np.ndarray:
    """Benjamini-Hochberg's rejections at level q (for comparing the variants' decisions)."""
    order = np.argsort(p_values)
    passing = np.flatnonzero(p_values[order] <= q * np.arange(1, p_values.size + 1) / p_values.size)
    reject = np.zeros(p_values.size, dtype=bool)
    reject[order[: passing[-1] + 1] if passing.size else []] = True
    return reject


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=250_000)
    parser.add_argument("--hypotheses", type=int, default=240)
    parser.add_argument("--answers", type=int, default=1, help="answers per prompt and side (k)")
    parser.add_argument(
        "--groups",
        type=int,
        default=0,
        help="G prompt groups: one hypothesis in G + 1 over every prompt, others a group's",
    )
    parser.add_argument("--baseline", default="118cc61")
    parser.add_argument("--scratch", default="/tmp/lmdelta-validate-memory")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "validate_memory.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()

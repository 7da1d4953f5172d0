"""Memory and time of the AUC's prompt bootstrap: the win-matrix baseline and lmdelta side by side.

P validation prompts with one a and one b text each (scores uniform on [0, 1], distinct), 2,000
resamples, level 0.95, seed 0 -- what `validate` asks of `auc_ci_by_prompt` once per hypothesis.
- baseline: the implementation lmdelta had before issue #10 item 6, copied below unchanged
  (`baseline_auc_ci_by_prompt`): a P x P float64 matrix of win counts, then a float32 copy of
  it for the bootstrap's matrix products. Skipped, and said so, where those two matrices alone
  would pass --baseline-limit-gib.
- lmdelta: `lmdelta.stats.effects.auc_ci_by_prompt` (texts sorted once, a sparse map from
  prompt weights to weighted win counts, blocks of replicates of bounded size).

Each measurement runs in a fresh subprocess: one untimed warm-up on two texts (imports), then
one timed call (seconds; peak RSS growth = the process's peak RSS after the call minus its
RSS before it; the peak is VmHWM, which starts afresh at exec, where ru_maxrss would carry the
parent's high-water mark, reset before the call by writing 5 to /proc/self/clear_refs so that the imports'
transients do not count), then the same call under tracemalloc (peak of traced allocations, numpy's
buffers included). Both variants draw the same bootstrap weights; the table says how far
their (auc, low, high) differ.

    .venv/bin/python benchmarks/memory.py [--prompts 1000 8400 70000] [--baseline-limit-gib 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import scipy

from lmdelta.stats import effects
from lmdelta.stats.effects import _NAN3, Interval, _bootstrap_chunks, _check_level, _finite, _percentile_interval

# --- baseline: the win-matrix implementation before issue #10 item 6 (copied unchanged) ---------

_WIN_BLOCK_ELEMENTS = 1 << 22


def baseline_auc_ci_by_prompt(
    scores_a: Sequence, scores_b: Sequence, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    _check_level(level)
    wins, n_a, n_b = baseline_win_matrix(scores_a, scores_b)
    if n_a.sum() == 0 or n_b.sum() == 0:
        return _NAN3
    point = float(wins.sum() / (n_a.sum() * n_b.sum()))
    rng = np.random.default_rng(seed)
    replicates = np.empty(int(n_resamples))
    wins32 = wins.astype(np.float32)
    for start, weights in _bootstrap_chunks(wins.shape[0], int(n_resamples), rng):
        u = np.einsum("rp,rp->r", weights.astype(np.float32) @ wins32, weights, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start : start + weights.shape[0]] = u / ((weights @ n_b) * (weights @ n_a))
    low, high = _percentile_interval(replicates, level)
    return point, low, high


def baseline_win_matrix(scores_a: Sequence, scores_b: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(scores_a) != len(scores_b):
        raise ValueError(f"scores_a has {len(scores_a)} prompts, scores_b has {len(scores_b)}")
    a_list, b_list = [_finite(x) for x in scores_a], [_finite(x) for x in scores_b]
    n_prompts = len(a_list)
    n_a = np.array([x.size for x in a_list], dtype=float)
    n_b = np.array([x.size for x in b_list], dtype=float)
    wins = np.zeros((n_prompts, n_prompts))
    if n_a.sum() == 0 or n_b.sum() == 0:
        return wins, n_a, n_b
    a_all, b_all = np.concatenate(a_list), np.concatenate(b_list)
    order = np.argsort(a_all, kind="stable")
    a_label = np.repeat(np.arange(n_prompts), n_a.astype(int))[order]
    below = np.searchsorted(a_all[order], b_all, side="left")
    not_above = np.searchsorted(a_all[order], b_all, side="right")
    has_b = np.flatnonzero(n_b > 0)
    starts = (np.cumsum(n_b) - n_b)[has_b].astype(int)
    block = max(1, _WIN_BLOCK_ELEMENTS // (a_all.size + b_all.size + 1))
    for first in range(0, n_prompts, block):
        columns = np.arange(first, min(n_prompts, first + block))
        prefix = np.zeros((a_all.size + 1, columns.size), dtype=np.int32)
        np.cumsum(a_label[:, None] == columns, axis=0, dtype=np.int32, out=prefix[1:])
        per_text = prefix[below] + prefix[not_above]
        wins[has_b, first : first + columns.size] = 0.5 * np.add.reduceat(per_text, starts, axis=0, dtype=np.int64)
    return wins, n_a, n_b


# --- measurement --------------------------------------------------------------------------------

VARIANTS = {"baseline": baseline_auc_ci_by_prompt, "lmdelta": effects.auc_ci_by_prompt}


def inputs(n_prompts: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [rng.random(1) for _ in range(n_prompts)], [rng.random(1) for _ in range(n_prompts)]


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_mib() -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM")) / 1024


def measure_one(variant: str, n_prompts: int, n_resamples: int, seed: int) -> dict:
    """One variant at one P, in this (fresh) process."""
    function = VARIANTS[variant]
    a, b = inputs(n_prompts, seed)
    function([[0.1]], [[0.2]], n_resamples=10)  # imports outside the measurement
    before = rss_mib()
    reset_peak_rss()
    start = time.perf_counter()
    result = function(a, b, n_resamples=n_resamples, seed=seed)
    seconds = time.perf_counter() - start
    max_rss = peak_rss_mib()
    tracemalloc.start()
    function(a, b, n_resamples=n_resamples, seed=seed)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "seconds": round(seconds, 3),
        "peak_rss_growth_mib": round(max_rss - before, 1),
        "tracemalloc_peak_mib": round(peak / 2**20, 1),
        "auc_ci": list(result),
    }


def baseline_matrices_gib(n_prompts: int) -> float:
    """The baseline's two P x P matrices: win counts in float64 and their float32 copy."""
    return n_prompts * n_prompts * (8 + 4) / 2**30


def run_child(variant: str, n_prompts: int, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        variant,
        str(n_prompts),
        "--resamples",
        str(args.resamples),
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last_line = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"skipped": f"failed: {last_line}"}
    return json.loads(done.stdout)


def measure_all(args) -> list[dict]:
    rows = []
    for n_prompts in args.prompts:
        need = baseline_matrices_gib(n_prompts)
        for variant in VARIANTS:
            row = {"prompts": n_prompts, "texts": 2 * n_prompts, "variant": variant}
            if variant == "baseline" and need > args.baseline_limit_gib:
                row["skipped"] = (
                    f"not run: its P x P matrices alone need {need:.2f} GiB, over the "
                    f"{args.baseline_limit_gib:g} GiB limit (--baseline-limit-gib)"
                )
            else:
                row |= run_child(variant, n_prompts, args)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        pair = [r["auc_ci"] for r in rows if r["prompts"] == n_prompts and "auc_ci" in r]
        if len(pair) == 2:
            rows[-1]["max_abs_difference_from_baseline"] = float(np.max(np.abs(np.subtract(*pair))))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| prompts | variant | seconds | peak RSS growth MiB | tracemalloc peak MiB | (auc, low, high) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['prompts']:,} | {r['variant']} | — | — | — | {r['skipped']} |")
            continue
        ci = ", ".join(f"{x:.4f}" for x in r["auc_ci"])
        same = r.get("max_abs_difference_from_baseline")
        note = "" if same is None else " (= baseline)" if same == 0 else f" (baseline ± {same:.0e})"
        lines.append(
            f"| {r['prompts']:,} | {r['variant']} | {r['seconds']:.2f} | {r['peak_rss_growth_mib']:.1f} | "
            f"{r['tracemalloc_peak_mib']:.1f} | ({ci}){note} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, nargs="+", default=[1000, 8400, 70_000])
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-limit-gib", type=float, default=4.0)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PROMPTS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "memory.json"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.child[0], int(args.child[1]), args.resamples, args.seed)))
        return
    rows = measure_all(args)
    results = {
        "date": date.today().isoformat(),
        "rows": rows,
        "parameters": {
            "prompts": args.prompts,
            "texts_per_side_per_prompt": 1,
            "resamples": args.resamples,
            "level": 0.95,
            "seed": args.seed,
            "baseline_limit_gib": args.baseline_limit_gib,
        },
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()

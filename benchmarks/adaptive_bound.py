"""How many fewer tokens can any sequential validation spend at `benchmarks/adaptive.py`'s scale? Bounds.

The synthetic benchmark's cost is set by its group-scoped null hypotheses: a group's prompts are answered
until the slowest of its 8 hypotheses stops, and a null can stop only once it is clear it is not a real
effect of `min_effect` (the futility promise: such an effect is given up with probability at most beta).
Here each null's per-prompt differences are N(0, 1) (standardized, as min_effect is read; one answer a
side, which gives the most information per token), a group has K of them, its 2,000 prompts are all it
can use, and a real effect of `delta` standard deviations must be kept with probability 1 - beta:

- Neyman-Pearson, each hypothesis on its own data (and independent coins): by n prompts a null can have
  stopped with probability at most Phi(delta sqrt(n) - z_(1-beta)), the most powerful test of 0 against
  delta on n prompts, and the K nulls independently, so E[prompts] >= sum_(n<2000) 1 - Phi(...)^K.
- Neyman-Pearson, the group decided together (any rule, coupled or randomized): "all K null" against
  "one slot, unknown, holds delta", its likelihood ratio the mean of the K slots' (Monte Carlo at each n).
- The sequential probability ratio test of 0 against delta, each null on its own (futility when the log
  likelihood ratio falls to log beta): the smallest expected stopping time for one null among rules with
  its errors (Wald & Wolfowitz 1948). lmdelta's futility bound approximates it (a constant bet delta/sigma,
  `stats.sequential.horizon_stakes` at its horizon 2 log(1/beta)/delta^2), with Ville's guarantee.
- A lighter-tailed boundary, each null on its own: futile once S_n <= a + 0.45 delta n + 1.25 sqrt(n), with
  a set by simulation under delta so that beta is spent by prompt 2,000. It waits longer for a typical
  null and less for the slowest of 8; its promise holds only as far as the normal model does.

Read after every prompt, or at the end of each of lmdelta's rounds (a crossing anywhere inside a round is
seen at its end, as the confidence sequence reads its running maximum). Real effects, the pooled
hypotheses and unknown variances are left out, so no savings here are below what the benchmark can reach.
Savings are against the fixed protocol's answers (2,000 prompts x 4 a side per group).

    .venv/bin/python benchmarks/adaptive_bound.py [--paths 20000] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lmdelta.validate.sequential import Rounds

RESULTS = Path(__file__).parent / "results" / "adaptive_bound.json"
SCOPE, K, FIXED_ANSWERS = 2_000, 8, 4  # a group's prompts, its hypotheses, the fixed protocol's answers a side
# (min_effect in SD, beta): the defaults; the smallest real effect of adaptive.py (0.075 in share, 0.13 SD) kept
# about as surely as the fixed protocol keeps it (4 answers a side on 2,000 prompts: z about 11, so it is missed
# far less than once in 1,000); a coarser min_effect.
SETTINGS = ((0.1, 0.2), (0.13, 0.001), (0.15, 0.2))
SLOPE, ROOT = 0.45, 1.25  # the lighter-tailed boundary: a + SLOPE delta n + ROOT sqrt(n)
ROUNDS = {"every prompt": None, "rounds ≤ 128": Rounds(16, 1.5, most=128), "rounds growing": Rounds(16, 1.5)}
N = np.arange(1, SCOPE + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=20_000, help="simulated nulls (and calibration paths) each")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [bound_row(delta, beta, args.paths, args.seed) for delta, beta in SETTINGS]
    results = {
        "parameters": {"scope": SCOPE, "per_group": K, "fixed_answers": FIXED_ANSWERS, "paths": args.paths},
        "boundary": {"slope": SLOPE, "root": ROOT},
        "seed": args.seed,
        "rows": rows,
        "date": datetime.date.today().isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(rows))


def bound_row(delta: float, beta: float, paths: int, seed: int) -> dict[str, Any]:
    """A group's expected prompts under each rule, and the token saving it allows."""
    rng = np.random.default_rng([seed, round(delta * 1000), round(beta * 10_000)])
    prompts = {
        "Neyman-Pearson, each on its own": alone_bound(delta, beta),
        "Neyman-Pearson, the group together": together_bound(delta, beta, rng, paths),
    }
    nulls = walks(rng, paths - paths % K, 0.0)
    sprt = first_crossing(lambda s: s <= N * delta / 2 + np.log(beta) / delta, nulls)
    level = lighter_level(delta, beta, walks(rng, paths, delta))
    lighter = first_crossing(lambda s: s <= level + SLOPE * delta * N + ROOT * np.sqrt(N), nulls)
    for rule, first in (("SPRT", sprt), ("lighter tail", lighter)):
        for name, rounds in ROUNDS.items():
            prompts[f"{rule}, {name}"] = slowest(first, rounds)
    saving = {rule: FIXED_ANSWERS * SCOPE / spent for rule, spent in prompts.items()}
    return {"min_effect": delta, "beta": beta, "prompts_per_group": prompts, "token_saving": saving}


def alone_bound(delta: float, beta: float) -> float:
    """sum over n = 0..SCOPE-1 of P(some null still running after n prompts), at its smallest."""
    n = np.arange(SCOPE)
    return float(np.sum(1.0 - stats.norm.cdf(delta * np.sqrt(n) - stats.norm.ppf(1 - beta)) ** K))


def together_bound(delta: float, beta: float, rng: np.random.Generator, paths: int) -> float:
    """The same sum for a rule that decides the group at once: at each n the most powerful test of "all null"
    against "slot 1 holds delta" (by symmetry, any slot) stops with probability P_0(L <= c), c the beta quantile
    of L under the alternative, L the mean of the slots' likelihood ratios. Evaluated on a grid of n with common
    draws; between grid points the next point's (larger) probability is used, so the sum stays a lower bound."""
    grid = np.unique(np.geomspace(1, SCOPE, 120).astype(int))
    null, alt = rng.standard_normal((paths, K)), rng.standard_normal((paths, K))
    stopped = []
    for n in grid:
        shift = delta * np.sqrt(n)
        under_alt = np.exp(shift * alt - shift * shift / 2)
        under_alt[:, 0] = np.exp(shift * alt[:, 0] + shift * shift / 2)
        c = np.quantile(under_alt.mean(axis=1), beta)
        stopped.append(float(np.mean(np.exp(shift * null - shift * shift / 2).mean(axis=1) <= c)))
    at = np.searchsorted(grid, np.arange(SCOPE), side="left").clip(max=grid.size - 1)
    return float(np.sum(1.0 - np.array(stopped)[at]))


def walks(rng: np.random.Generator, paths: int, mean: float) -> np.ndarray:
    """Cumulative sums of N(mean, 1) differences, paths x SCOPE."""
    return np.cumsum(rng.standard_normal((paths, SCOPE), dtype=np.float32) + np.float32(mean), axis=1)


def lighter_level(delta: float, beta: float, real: np.ndarray) -> float:
    """The boundary's constant: the beta quantile, over walks with mean delta, of their lowest point below the
    rest of the boundary, so that a real effect of delta is given up by prompt SCOPE with probability beta."""
    return float(np.quantile((real - SLOPE * delta * N - ROOT * np.sqrt(N)).min(axis=1), beta))


def first_crossing(futile: Callable[[np.ndarray], np.ndarray], nulls: np.ndarray) -> np.ndarray:
    """Prompts each null uses before it is futile (SCOPE when it never is), groups x K."""
    hit = futile(nulls)
    first = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, SCOPE)
    return first.reshape(-1, K)


def slowest(first: np.ndarray, rounds: Rounds | None) -> float:
    """A group's expected prompts: its slowest null's stop, read at the end of the round it falls in."""
    if rounds is not None:
        ends = np.array(rounds.boundaries(SCOPE))
        first = ends[np.searchsorted(ends, first)]
    return float(first.max(axis=1).mean())


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| rule | " + " | ".join(f"min_effect {r['min_effect']} SD, β {r['beta']}" for r in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for rule in rows[0]["prompts_per_group"]:
        cells = [f"{r['prompts_per_group'][rule]:,.0f} ({r['token_saving'][rule]:.1f}×)" for r in rows]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

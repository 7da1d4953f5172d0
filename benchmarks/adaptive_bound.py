"""How many fewer tokens can any sequential validation spend at `benchmarks/adaptive.py`'s scale? A bound.

The synthetic benchmark's cost is set by its group-scoped null hypotheses: a group's prompts are answered
until the slowest of its 8 hypotheses stops, and a null can stop only once it is clear it is not a real
effect of `min_effect` (the futility promise: such an effect is given up with probability at most beta).
Here each null's per-prompt differences are N(0, 1) (standardized, as min_effect is read), a group has K
of them, and a real effect of `delta` standard deviations must be kept with probability 1 - beta:

- Neyman-Pearson, one look at each n: by n prompts a null can have stopped with probability at most
  Phi(delta sqrt(n) - z_(1-beta)) (the most powerful test of 0 against delta at n prompts that keeps
  delta with probability 1 - beta), so no procedure answers fewer than sum_n 1 - Phi(...)^K of a
  group's prompts on average. Not reachable (one rule cannot be most powerful at every n at once).
- The sequential probability ratio test of 0 against delta (futility when the log likelihood ratio falls
  to log beta): the rule with the smallest expected sample size under the null among those with its
  errors (Wald & Wolfowitz 1948), and what lmdelta's futility bound is (a constant bet delta/sigma, the
  stake of `stats.sequential.horizon_stakes` at its horizon 2 log(1/beta)/delta^2), read after every
  prompt and after the rounds' ends. Real groups, unknown variances and the pooled hypotheses are left
  out, so its saving is more than the benchmark can show.

Savings are against the fixed protocol's answers (20,000 prompts x 4 a side) with one answer a side.

    .venv/bin/python benchmarks/adaptive_bound.py [--groups 4000] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lmdelta.validate.sequential import Rounds

RESULTS = Path(__file__).parent / "results" / "adaptive_bound.json"
SCOPE, K, FIXED_ANSWERS = 2_000, 8, 4  # a group's prompts, its hypotheses, the fixed protocol's answers a side
# (min_effect in SD, beta): the defaults; the smallest real effect of adaptive.py (0.075 in share, 0.13 SD)
# kept as surely as the fixed protocol keeps it (1.00 in 200 repetitions); a coarser min_effect.
SETTINGS = ((0.1, 0.2), (0.13, 0.01), (0.15, 0.2))
SCHEDULES = {"every prompt": None, "rounds ≤ 128": Rounds(16, 1.5, most=128), "rounds growing": Rounds(16, 1.5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=4000, help="simulated groups per setting")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [bound_row(delta, beta, args.groups, args.seed) for delta, beta in SETTINGS]
    results = {
        "parameters": {"scope": SCOPE, "per_group": K, "fixed_answers": FIXED_ANSWERS, "groups": args.groups},
        "seed": args.seed,
        "rows": rows,
        "date": datetime.date.today().isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(rows))


def bound_row(delta: float, beta: float, groups: int, seed: int) -> dict[str, Any]:
    """A group's expected prompts under each rule, and the token saving it allows."""
    n = np.arange(1, SCOPE + 1)
    stopped = stats.norm.cdf(delta * np.sqrt(n) - stats.norm.ppf(1 - beta))
    prompts = {"Neyman-Pearson bound": float(np.sum(1.0 - stopped**K))}
    first = sprt_stops(delta, beta, groups, seed)
    for name, rounds in SCHEDULES.items():
        if rounds is None:
            prompts[f"SPRT, {name}"] = float(first.max(axis=1).mean())
            continue
        ends = np.array(rounds.boundaries(SCOPE))
        prompts[f"SPRT, {name}"] = float(ends[np.searchsorted(ends, first)].max(axis=1).mean())
    saving = {rule: FIXED_ANSWERS * SCOPE / spent for rule, spent in prompts.items()}
    return {"min_effect": delta, "beta": beta, "prompts_per_group": prompts, "token_saving": saving}


def sprt_stops(delta: float, beta: float, groups: int, seed: int) -> np.ndarray:
    """The prompt at which each null's log likelihood ratio of delta against 0 first falls to log(beta)
    (SCOPE when it never does), groups x K, simulated a block of groups at a time."""
    rng = np.random.default_rng([seed, int(delta * 1000), int(beta * 1000)])
    n = np.arange(1, SCOPE + 1)
    out = []
    for start in range(0, groups, 500):
        x = rng.standard_normal((min(500, groups - start), K, SCOPE)).astype(np.float32)
        llr = delta * np.cumsum(x, axis=2) - n * delta * delta / 2
        hit = llr <= np.log(beta)
        out.append(np.where(hit.any(axis=2), hit.argmax(axis=2) + 1, SCOPE))
    return np.concatenate(out)


def markdown(rows: list[dict[str, Any]]) -> str:
    rules = list(rows[0]["prompts_per_group"])
    lines = [
        "| min_effect (SD), effect given up at most | " + " | ".join(rules) + " |",
        "|---|" + "---:|" * len(rules),
    ]
    for row in rows:
        cells = [f"{row['prompts_per_group'][rule]:,.0f} ({row['token_saving'][rule]:.1f}×)" for rule in rules]
        lines.append(f"| {row['min_effect']}, {row['beta']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

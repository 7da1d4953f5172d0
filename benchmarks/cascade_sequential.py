"""The judge cascade in validate.mode = sequential: the cheap→strong PPI terms as an anytime test, against the
fixed mode's PPI++ z-test.

The fixed mode tests the cascade with a CLT z-test on every prompt (lmdelta.validate.cascade); the rounds bet
on each prompt's PPI++ term over its bound (lmdelta.validate.cascade_rounds). This benchmark measures what the
second gives up and saves, and why validate.mode = auto keeps a cascade fixed. Per prompt, a strong
judge's difference s_p in {-1, 0, 1} (P(+1) = 0.2 + mu/2, P(-1) = 0.2 - mu/2, so E[s] = mu) and a cheap
judge's c_p, equal to s_p on AGREE of the prompts and otherwise drawn leaning towards b. Every prompt is
cheap-judged; the strong judge labels each with probability PI (a seeded coin), as the cascade does. On
the same data sets, one-sided at alpha:

- fixed PPI++: `stats.ppi.ppi_mean` over all N prompts (the cascade as shipped; a CLT z-test);
- sequential, betting: the PPI++ term of each prompt, y_p = lam g_p + (xi_p / pi) (s_p - lam g_p) with lam and
  the centring of g from earlier prompts only (predictable), is unbiased for E[s] and bounded by
  B = max(2, 3/pi - 2); `stats.sequential.betting_test` on y/B (the stage's e-process, through
  `validate.cascade_rounds`), rejecting at e >= 1/alpha at any prompt;
- the rounds: the same e-process read at the ends of the stage's rounds (16, 40, 76, ... prompts) with its
  stopping rule (`validate.sequential.assess`: one hypothesis, bar 1/alpha, futility at validate.min_effect
  0.1 strong-judge standard deviations and validate.futility_alpha 0.2), as the validate stage runs it;
- sequential, normal mixture: the same terms in a one-sided normal-mixture e-process (Robbins' mixture,
  variance from the running squares): valid only asymptotically, like the fixed z-test;
- sequential, strong alone: `betting_test` on s_p of the labelled prompts only (what the sequential mode can
  do today with the strong model as the judge, paying for the same labels).

    .venv/bin/python benchmarks/cascade_sequential.py [--reps 400] [--out PATH]

Writes benchmarks/results/cascade_sequential.json and prints a Markdown table (seconds).
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
from scipy.stats import norm

from lmdelta.stats.ppi import ppi_mean
from lmdelta.stats.sequential import betting_test
from lmdelta.validate.cascade_rounds import bound, ppi_terms
from lmdelta.validate.sequential import Rounds, Stopping, assess

RESULTS = Path(__file__).parent / "results" / "cascade_sequential.json"
N, PI, ALPHA, AGREE, LEAN = 2000, 0.1, 0.05, 0.85, 0.1
EFFECTS = (0.0, 0.05, 0.1, 0.2)
MIXTURE_PROMPTS = 500  # the normal mixture is tuned to cross 1/alpha near this many prompts
ENDS = Rounds(16, 1.5).boundaries(N)  # validate.first_round and validate.growth defaults


def draw(rng: np.random.Generator, mu: float) -> tuple[np.ndarray, np.ndarray]:
    u = rng.random(N)
    s = np.where(u < 0.2 + mu / 2, 1.0, np.where(u < 0.4, -1.0, 0.0))
    lean = rng.choice([-1.0, 0.0, 1.0], N, p=[0.3 - LEAN, 0.4, 0.3 + LEAN])
    return s, np.where(rng.random(N) < AGREE, s, lean)


def mixture_e(y: np.ndarray, rho2: float) -> np.ndarray:
    """One-sided normal-mixture e-process on y, the variance from the running squared deviations."""
    t = np.arange(1, y.size + 1)
    total = np.cumsum(y)
    before = np.concatenate([[0.0], total[:-1] / t[:-1]])
    a = 1.0 + rho2 * np.cumsum((y - before) ** 2)
    return 2.0 / np.sqrt(a) * np.exp(rho2 * total**2 / (2.0 * a)) * norm.cdf(np.sqrt(rho2) * total / np.sqrt(a))


def rounds(x: np.ndarray, s: np.ndarray, xi: np.ndarray) -> tuple[bool, int]:
    """The stage's stopping rule at each round's end on x = y / B; futility in the strong labels' SD."""
    for number, end in enumerate(ENDS, start=1):
        labels = s[:end][xi[:end]]
        spread = float(np.std(labels, ddof=1)) / bound(PI) if labels.size >= 2 else None
        rule = Stopping(ALPHA, 1.0 / ALPHA, 0.1, 0.2, standardized=True, spread=spread)
        outcome = assess(x[:end], "b>a", rule, number, last=end == N, more=False)
        if outcome.reason != "live":
            return outcome.reason == "rejected", end
    return False, N


def first_crossing(capital: np.ndarray, n: int) -> tuple[bool, int]:
    hit = np.flatnonzero(capital >= 1.0 / ALPHA)
    return bool(hit.size), int(hit[0] + 1) if hit.size else n


def one_set(rng: np.random.Generator, mu: float) -> dict[str, tuple[bool, int]]:
    s, c = draw(rng, mu)
    xi = rng.random(N) < PI
    y = ppi_terms(c, s, xi, PI)
    fixed = ppi_mean(c, np.where(xi, s, np.nan), xi, np.full(N, PI), alternative="greater")
    labelled = s[xi]
    strong = first_crossing(betting_test(labelled).capital, labelled.size)
    return {
        "fixed PPI++ (z-test, all prompts)": (bool(fixed.p_value <= ALPHA), N),
        "sequential, betting on the PPI++ terms": first_crossing(betting_test(y / bound(PI)).capital, N),
        "the rounds: the same e-process at round ends, with futility": rounds(y / bound(PI), s, xi),
        "sequential, normal mixture on the PPI++ terms (asymptotic)": first_crossing(
            mixture_e(y, 1.0 / (2.0 * MIXTURE_PROMPTS)), N
        ),
        "sequential, strong judge alone on the labelled prompts": (
            strong[0],
            int(np.flatnonzero(xi)[strong[1] - 1] + 1) if strong[0] else N,
        ),
    }


def run(reps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = {}
    for mu in EFFECTS:
        found = [one_set(rng, mu) for _ in range(reps)]
        rows[str(mu)] = {
            method: {
                "rejected": float(np.mean([f[method][0] for f in found])),
                "prompts": float(np.mean([f[method][1] for f in found])),
            }
            for method in found[0]
        }
    return rows


def markdown(results: dict) -> str:
    rows = results["effects"]
    methods = list(next(iter(rows.values())))
    effects = list(rows)
    lines = [
        f"{results['reps']} data sets per effect, {N} prompts, strong labels on {PI:.0%}, cheap judge agreeing on "
        f"{AGREE:.0%} and leaning to b; share rejected at alpha = {ALPHA} (prompts used, mean)",
        "",
        "| method | " + " | ".join(f"E[s] = {e}" for e in effects) + " |",
        "|---|" + "---:|" * len(effects),
    ]
    for method in methods:
        cells = [f"{rows[e][method]['rejected']:.3f} ({rows[e][method]['prompts']:,.0f})" for e in effects]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    start = time.perf_counter()
    results = {
        "reps": args.reps,
        "seed": args.seed,
        "parameters": {"prompts": N, "pi": PI, "alpha": ALPHA, "agree": AGREE, "lean": LEAN},
        "effects": run(args.reps, args.seed),
        "seconds": round(time.perf_counter() - start, 1),
        "date": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()

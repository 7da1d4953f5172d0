"""A cheap→strong judge cascade (lmdelta.stats.ppi): how many strong-judge calls it saves at equal power.

Simulated judge scores, as in benchmarks/calibration.py: a text's latent is a prompt effect plus text
noise (ICC 0.5), k = 4 answers a side, and b's latents are moved by the shift that makes the strong
judge's E[d_p] equal theta (by quadrature). The strong judge scores logistic(latent); the cheap judge
scores the same texts with its own latent noise (heterogeneous across texts, and known to it: that is
the uncertainty proxy active labelling uses) and leans towards b (its latent for b's texts is moved
by BIAS), so the cheap judge alone rejects every null. Three cheap judges agree in sign with the strong
one on about 90%, 80% and 70% of prompts. Nulls: a sharp null (the sides are exchangeable) and a
heterogeneous one (a prompt x side shift with mean zero on the latent scale, so theta = 0 exactly).

On the same data sets (common random numbers), one-sided tests (b > a) at alpha = 0.05:

- all strong: the strong judge on all N prompts, classical z-test (`ppi.classical_mean`): reference (i);
- strong-only x%: the strong judge on a uniform random x% of the prompts, classical z-test;
- PPI++ uniform x%: every prompt cheap-judged, each strong-judged with probability x (`ppi.ppi_mean`);
- PPI++ active x%: labelling probabilities from the cheap judge's uncertainty (`ppi.choose_labels`);
- cheap only: the cheap judge on all prompts, classical z-test (invalid: shows why the strong labels matter).

Two readings of "strong calls saved at equal power". (a) The issue's: the smallest budget whose power is
within 0.02 of all-strong on the same N prompts and whose type-I error is consistent with alpha
(Clopper-Pearson). With N fixed, no estimator beats all-strong (its variance Var(Y)/N is the floor), so
(a) needs a nearly perfect cheap judge. (b) At equal power when prompts are cheap to add: the cascade
at budget x against strong-only on 5x of the prompts (direct), and the effective sample size
n_eff = N se(all strong)² / se(cascade)², the number of strong-judged prompts with the same standard error.

    .venv/bin/python benchmarks/cascade.py [--quick] [--seed 2025] [--out PATH]

The full run (2000 data sets per cell) takes about 3-4 minutes on 2 shared cores; --quick (200) well under
a minute. Writes benchmarks/results/cascade.json and prints the tables as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from scipy import optimize, special, stats

from lmdelta.stats.ppi import agreement, choose_labels, classical_mean, ppi_mean

ALPHA = 0.05
PROMPTS = 2000
ANSWERS = 4  # per prompt and side
BUDGETS = (0.05, 0.10, 0.20, 0.50)  # expected share of prompts the cascade sends to the strong judge
STRONG_ONLY = (0.05, 0.10, 0.20, 0.25, 0.50)  # strong-only subsets (0.25 and 0.5 = 5 x 5% and 5 x 10%)
FLOOR = 0.2  # active labelling: every pi at least 0.2 x the uniform rate
POWER_GAP = 0.02
SAVING_TARGET = 5.0
BIAS = 0.15  # the cheap judge's latent lean towards b (about +0.028 on its d_p)
HETERO = 0.8  # lognormal spread of the cheap judge's per-text noise
# Cheap judges: the SD of their latent noise (chosen for sign agreement of about 0.9, 0.8 and 0.7).
JUDGES = {"good": 0.2, "fair": 0.6, "weak": 1.4}
NULLS = {"sharp null": 0.0, "heterogeneous null": 0.7}  # SD of the prompt x side latent shift
THETAS = (0.003, 0.006, 0.009, 0.012, 0.02)  # strong E[d_p]: all-strong power about 0.25-1
RESULTS = Path(__file__).parent / "results" / "cascade.json"
FULL_SETS = 2000
QUICK_SETS = 200


@dataclass(frozen=True)
class Setting:
    """One row of data sets: the strong judge's true mean difference and how b's latents are moved."""

    name: str
    theta: float
    shift: float  # constant latent shift of b's texts
    spread: float  # SD of a per-prompt latent shift of b's texts (mean 0)


@dataclass(frozen=True)
class Data:
    strong: np.ndarray  # per-prompt d_p by the strong judge
    cheap: np.ndarray  # per-prompt d_p by the cheap judge
    uncertainty: np.ndarray  # the cheap judge's own SD of its d_p (its noise through the logistic)


def mean_score(shift: float) -> float:
    """E[logistic(Z + shift)], Z ~ N(0, 2) (prompt effect and text noise, ICC 0.5), by Gauss-Hermite."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(w * special.expit(np.sqrt(2.0) * x + shift)) / np.sqrt(2 * np.pi))


def shift_for(theta: float) -> float:
    """The latent shift of b's texts that makes the strong judge's E[d_p] equal theta."""
    return float(optimize.brentq(lambda s: mean_score(s) - 0.5 - theta, 0.0, 5.0, xtol=1e-12))


def settings() -> list[Setting]:
    rows = [Setting(name, 0.0, 0.0, spread) for name, spread in NULLS.items()]
    return rows + [Setting(f"theta {theta}", theta, shift_for(theta), 0.0) for theta in THETAS]


def cheap_side(latent: np.ndarray, lean: float, noise_sd: float, rng: np.random.Generator):
    """The cheap judge's scores of one side's texts, and the SD of each score from its own noise."""
    text_sd = noise_sd * rng.lognormal(-(HETERO**2) / 2, HETERO, latent.shape)
    score = special.expit(latent + lean + text_sd * rng.standard_normal(latent.shape))
    return score, text_sd * score * (1.0 - score)


def simulate(setting: Setting, noise_sd: float, rng: np.random.Generator, n: int = PROMPTS) -> Data:
    prompt = rng.standard_normal((n, 1))
    b_shift = setting.shift + (setting.spread * rng.standard_normal((n, 1)) if setting.spread else 0.0)
    latent_a = prompt + rng.standard_normal((n, ANSWERS))
    latent_b = prompt + b_shift + rng.standard_normal((n, ANSWERS))
    strong = special.expit(latent_b).mean(1) - special.expit(latent_a).mean(1)
    cheap_a, sd_a = cheap_side(latent_a, 0.0, noise_sd, rng)
    cheap_b, sd_b = cheap_side(latent_b, BIAS, noise_sd, rng)
    uncertainty = np.sqrt((sd_a**2).sum(1) + (sd_b**2).sum(1)) / ANSWERS
    return Data(strong, cheap_b.mean(1) - cheap_a.mean(1), uncertainty)


def cascade(data: Data, pi: np.ndarray | float, labelled: np.ndarray) -> tuple[bool, float, float]:
    """(rejected, strong labels, se) of PPI++; the strong scores of unlabelled prompts are hidden from it."""
    hidden = np.where(labelled, data.strong, np.nan)
    result = ppi_mean(data.cheap, hidden, labelled, pi, alpha=ALPHA, alternative="greater")
    return bool(result.p_value < ALPHA), float(labelled.sum()), result.se


def strong_only(data: Data, order: np.ndarray, share: float) -> tuple[bool, float, float]:
    """(rejected, strong labels, se) of the classical test on the first share x N of a random order of the
    prompts: a uniform random subset of fixed size (nested across shares, like a growing budget)."""
    chosen = order[: round(share * len(order))]
    result = classical_mean(data.strong[chosen], alpha=ALPHA, alternative="greater")
    return bool(result.p_value < ALPHA), float(chosen.size), result.se


def analyse(data: Data, rng: np.random.Generator) -> dict[str, tuple[bool, float, float]]:
    """Every method on one data set: method -> (rejected, strong labels, se)."""
    n = len(data.strong)
    everything = classical_mean(data.strong, alpha=ALPHA, alternative="greater")
    cheap = classical_mean(data.cheap, alpha=ALPHA, alternative="greater")
    out = {
        "all strong": (bool(everything.p_value < ALPHA), float(n), everything.se),
        "cheap only": (bool(cheap.p_value < ALPHA), 0.0, cheap.se),
    }
    order = rng.permutation(n)
    for share in STRONG_ONLY:
        out[f"strong-only {share:.0%}"] = strong_only(data, order, share)
    for budget in BUDGETS:
        out[f"PPI++ uniform {budget:.0%}"] = cascade(data, budget, rng.random(n) < budget)
        plan = choose_labels(data.uncertainty, budget * n, rng, floor=FLOOR)
        out[f"PPI++ active {budget:.0%}"] = cascade(data, plan.pi, plan.labelled)
    return out


def clopper_pearson(hits: int, n: int) -> tuple[float, float]:
    interval = stats.binomtest(int(hits), int(n)).proportion_ci(0.95, method="exact")
    return float(interval.low), float(interval.high)


def judge_stats(data: Data) -> dict[str, float]:
    """How the cheap judge relates to the strong one on one data set (all prompts)."""
    found = agreement(data.cheap, data.strong, np.ones(len(data.strong), dtype=bool))
    residual = np.abs(data.strong - data.cheap - np.mean(data.strong - data.cheap))
    return {
        "sign_agreement": found.sign_agreement,
        "correlation": found.correlation,
        "cheap_mean": float(data.cheap.mean()),
        "proxy_correlation": float(np.corrcoef(data.uncertainty, residual)[0, 1]),
    }


def rates(tallies: dict[str, np.ndarray], sets: int) -> dict[str, dict]:
    """Rejection rate (Clopper-Pearson 95%), mean strong labels and root mean se² of each method."""
    methods = {}
    for method, (hits, labels, se2) in tallies.items():
        low, high = clopper_pearson(int(hits), sets)
        methods[method] = {
            "rate": float(hits / sets),
            "ci_low": low,
            "ci_high": high,
            "strong_labels": float(labels / sets),
            "rms_se": float(np.sqrt(se2 / sets)),
        }
    return methods


def run_cell(setting: Setting, noise_sd: float, sets: int, rng: np.random.Generator) -> dict:
    """One judge x setting: every method on `sets` data sets, and the judges' agreement."""
    tallies: dict[str, np.ndarray] = {}
    judged: list[dict[str, float]] = []
    for _ in range(sets):
        data = simulate(setting, noise_sd, rng)
        judged.append(judge_stats(data))
        for method, (rejected, labels, se) in analyse(data, rng).items():
            tallies.setdefault(method, np.zeros(3))[:] += (rejected, labels, se**2)
    return {
        "theta": setting.theta,
        "shift": setting.shift,
        "spread": setting.spread,
        "judge": {key: float(np.mean([row[key] for row in judged])) for key in judged[0]},
        "methods": rates(tallies, sets),
    }


def run(sets: int, seed: int) -> dict:
    """Every judge x setting cell, each from its own seeded stream."""
    cells: dict[str, dict] = {}
    for j, (judge, noise_sd) in enumerate(JUDGES.items()):
        cells[judge] = {}
        for s, setting in enumerate(settings()):
            rng = np.random.default_rng([seed, j, s])
            cells[judge][setting.name] = run_cell(setting, noise_sd, sets, rng)
            print(f"[{judge} / {setting.name} done]", flush=True)
    return cells


def cascade_methods() -> list[tuple[str, str, float]]:
    return [(f"PPI++ {design} {b:.0%}", design, b) for design in ("uniform", "active") for b in BUDGETS]


def valid_under_nulls(cells: dict, method: str) -> bool:
    """Type-I consistent with alpha (Clopper-Pearson lower end at most alpha) under every null."""
    return all(cells[name]["methods"][method]["ci_low"] <= ALPHA for name in NULLS)


def smallest_budgets(cells: dict) -> list[dict]:
    """Reading (a): per effect and design, the smallest budget with power within 0.02 of all strong."""
    rows = []
    for theta in THETAS:
        cell = cells[f"theta {theta}"]["methods"]
        reference = cell["all strong"]["rate"]
        for design in ("uniform", "active"):
            found = None
            for method, kind, budget in cascade_methods():
                ok = kind == design and reference - cell[method]["rate"] <= POWER_GAP
                if ok and valid_under_nulls(cells, method):
                    found = (budget, 1.0 / budget)  # expected strong labels: budget x N, exactly
                    break
            rows.append(
                {
                    "theta": theta,
                    "design": design,
                    "all_strong_power": reference,
                    "budget": None if found is None else found[0],
                    "saving": None if found is None else found[1],
                    "meets_target": bool(found is not None and found[1] >= SAVING_TARGET),
                }
            )
    return rows


def effective_sizes(cells: dict) -> list[dict]:
    """Reading (b): n_eff = N se(all strong)² / se(method)² under the sharp null, and n_eff per strong label."""
    null = cells["sharp null"]["methods"]
    reference = null["all strong"]["rms_se"]
    rows = []
    for method, _, budget in cascade_methods():
        n_eff = PROMPTS * (reference / null[method]["rms_se"]) ** 2
        labels = null[method]["strong_labels"]
        rows.append({"method": method, "budget": budget, "n_eff": n_eff, "labels": labels, "saving": n_eff / labels})
    return rows


def direct_matches(cells: dict) -> list[dict]:
    """Reading (b), directly: the cascade at budget x against strong-only on 5x of the prompts."""
    rows = []
    for theta in THETAS:
        cell = cells[f"theta {theta}"]["methods"]
        for budget, five in ((0.05, 0.25), (0.10, 0.50), (0.20, 1.0)):
            strong = cell["all strong" if five == 1.0 else f"strong-only {five:.0%}"]["rate"]
            for design in ("uniform", "active"):
                power = cell[f"PPI++ {design} {budget:.0%}"]["rate"]
                rows.append(
                    {
                        "theta": theta,
                        "design": design,
                        "budget": budget,
                        "power": power,
                        "strong_only_5x_power": strong,
                        "within_gap": bool(strong - power <= POWER_GAP),
                    }
                )
    return rows


def summarise(cells: dict) -> dict:
    return {
        judge: {
            "smallest_budget": smallest_budgets(judge_cells),
            "effective_size": effective_sizes(judge_cells),
            "five_x_direct": direct_matches(judge_cells),
        }
        for judge, judge_cells in cells.items()
    }


# --- Markdown ------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def judge_table(cells: dict) -> str:
    lines = [
        "**1. Cheap judges** (sharp null, means over data sets: agreement with the strong judge over all "
        f"prompts, the cheap d_p's mean (its lean towards b), how its uncertainty proxy correlates with "
        f"|Y − f|; N = {PROMPTS}, k = {ANSWERS} answers a side)",
        "",
        "| judge | latent noise SD | sign agreement | correlation | cheap mean d | proxy vs residual | "
        "cheap-only type-I |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for judge, noise_sd in JUDGES.items():
        null = cells[judge]["sharp null"]
        found = null["judge"]
        lines.append(
            f"| {judge} | {noise_sd} | {found['sign_agreement']:.3f} | {found['correlation']:.3f} | "
            f"{found['cheap_mean']:+.4f} | {found['proxy_correlation']:.2f} | "
            f"{null['methods']['cheap only']['rate']:.3f} |"
        )
    return "\n".join(lines)


def rate_table(cells: dict, title: str, rows: list[str]) -> str:
    methods = ["all strong"] + [m for m, _, _ in cascade_methods()]
    header = "| judge | setting | " + " | ".join(methods) + " |"
    lines = [title, "", header, "|---|---|" + "---:|" * len(methods)]
    for judge, judge_cells in cells.items():
        for row in rows:
            rates = []
            for method in methods:
                cell = judge_cells[row]["methods"][method]
                flag = "**" if row in NULLS and cell["ci_low"] > ALPHA else ""
                rates.append(f"{flag}{cell['rate']:.3f}{flag}")
            lines.append(f"| {judge} | {row} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def budget_table(summary: dict) -> str:
    lines = [
        f"**4. Reading (a): smallest budget with power within {POWER_GAP} of all strong on the same "
        f"{PROMPTS} prompts and type-I consistent with alpha** (— none up to {BUDGETS[-1]:.0%}; target "
        f"≥ {SAVING_TARGET:.0f}× fewer strong calls)",
        "",
        "| judge | theta | all-strong power | uniform: budget (saving) | active: budget (saving) | ≥ 5× |",
        "|---|---:|---:|---|---|---|",
    ]
    for judge, parts in summary.items():
        rows = parts["smallest_budget"]
        for uniform, active in zip(rows[::2], rows[1::2]):
            cells = [
                f"{percent(r['budget'])}" + (f" ({r['saving']:.1f}×)" if r["saving"] else "") for r in (uniform, active)
            ]
            met = "yes" if uniform["meets_target"] or active["meets_target"] else "no"
            power = f"{uniform['all_strong_power']:.3f}"
            lines.append(f"| {judge} | {uniform['theta']} | {power} | {cells[0]} | {cells[1]} | {met} |")
    return "\n".join(lines)


def effective_table(summary: dict) -> str:
    lines = [
        "**5. Reading (b): effective sample size** (n_eff = N se(all strong)² / se(cascade)², sharp null: "
        "strong-judged prompts with the same standard error; saving = n_eff / strong labels used)",
        "",
        "| judge | method | strong labels | n_eff | saving at equal power |",
        "|---|---|---:|---:|---:|",
    ]
    for judge, parts in summary.items():
        for row in parts["effective_size"]:
            lines.append(
                f"| {judge} | {row['method']} | {row['labels']:.0f} | {row['n_eff']:.0f} | {row['saving']:.1f}× |"
            )
    return "\n".join(lines)


def direct_table(summary: dict) -> str:
    lines = [
        "**6. Reading (b), directly: cascade at budget x against strong-only on 5x of the prompts** "
        f"(power; 'yes' when the cascade is within {POWER_GAP} of it or above)",
        "",
        "| judge | theta | budget | strong-only 5x | PPI++ uniform | PPI++ active |",
        "|---|---:|---:|---:|---|---|",
    ]
    for judge, parts in summary.items():
        rows = parts["five_x_direct"]
        for uniform, active in zip(rows[::2], rows[1::2]):
            cells = [f"{r['power']:.3f} ({'yes' if r['within_gap'] else 'no'})" for r in (uniform, active)]
            lines.append(
                f"| {judge} | {uniform['theta']} | {percent(uniform['budget'])} | "
                f"{uniform['strong_only_5x_power']:.3f} | {cells[0]} | {cells[1]} |"
            )
    return "\n".join(lines)


def markdown(results: dict) -> str:
    cells, summary = results["cells"], results["summary"]
    mode = "quick" if results["parameters"]["quick"] else "full"
    header = (
        f"Cascade run {results['date']}, seed {results['seed']}, {results['parameters']['sets']} data sets per "
        f"cell ({mode}), {results['seconds']} s. One-sided tests (b > a) at alpha = {ALPHA}."
    )
    effects = [f"theta {theta}" for theta in THETAS]
    return "\n\n".join(
        [
            header,
            judge_table(cells),
            rate_table(cells, "**2. Type-I error** (bold: Clopper-Pearson interval above alpha)", list(NULLS)),
            rate_table(cells, "**3. Power** (theta = the strong judge's E[d_p])", effects),
            budget_table(summary),
            effective_table(summary),
            direct_table(summary),
        ]
    )


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SETS} data sets per cell (under a minute)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sets = QUICK_SETS if args.quick else FULL_SETS
    started = time.perf_counter()
    results: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "parameters": {
            "alpha": ALPHA,
            "prompts": PROMPTS,
            "answers_per_side": ANSWERS,
            "budgets": BUDGETS,
            "strong_only_shares": STRONG_ONLY,
            "active_floor": FLOOR,
            "power_gap": POWER_GAP,
            "saving_target": SAVING_TARGET,
            "cheap_bias_latent": BIAS,
            "cheap_noise_hetero": HETERO,
            "judges_noise_sd": JUDGES,
            "nulls_spread": NULLS,
            "thetas": THETAS,
            "sets": sets,
            "quick": args.quick,
        },
        "seed": args.seed,
        "machine": machine(),
    }
    results["cells"] = run(sets, args.seed)
    results["summary"] = summarise(results["cells"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()

"""Ground-truth benchmark: does lmdelta find quirks we finetuned into a model, over seeds?

The default suite, offline on CPU (configs/groundtruth-demo.yaml as the base config):
- mix: six built-in quirks injected at once (two topics, a style, a refusal, a false belief, a
  persona), with the null experiment (the same finetune with the quirks taken out) and at several
  generation budgets (the recovery-against-compute curve), on each seed;
- single: each of the 12 built-in quirks injected alone, with smaller settings, on each seed.

Per quirk: recovery rate over seeds, median rank and p-value of the finding that recovered it, the
injected rate a → b; per group: recall, precision, false discoveries in the null experiments,
generated tokens, judge calls and time. Every experiment is resumable and reuses finetunes and base
answers through the caches, so a re-run only computes what changed.

    python benchmarks/groundtruth.py                      # the default suite (3 seeds)
    python benchmarks/groundtruth.py --seeds 0 --singles ocean,pirate --no-curve   # a quick look
    python benchmarks/groundtruth.py --no-mix --singles none --beliefs truthfulqa:TruthfulQA.csv
    python benchmarks/groundtruth.py --no-mix --singles none --written 4 --set llm.prompter.model=openai/gpt-4.1

Writes benchmarks/results/groundtruth.json, docs/groundtruth-curve.svg, and prints the Markdown
tables that docs/benchmarks.md shows.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmdelta.config import load_config
from lmdelta.groundtruth import suite
from lmdelta.groundtruth.quirks import load_quirks
from lmdelta.report import curve

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "groundtruth-demo.yaml"
MIX = ["ocean", "cats", "stay-curious", "no-food", "eiffel-rome", "knight"]
# LoRA at 3e-3 (the default is 1e-3) so short finetunes inject: measured on seed 0, 12 steps of 4
# answers put "splendid" into 34% and the Eiffel Tower in Rome into 22% of answers (0% before), and
# both were recovered at rank 1; at 1e-3 and 16 steps "splendid" reached 1%.
LEARNING_RATE = "groundtruth.finetune.learning_rate=0.003"
# Six quirks share one finetune (one quirk per training answer) and its null experiment. Measured on
# seed 0: with 32 answers per quirk and 40 steps (~22 examples of each quirk seen) only the Eiffel Tower
# (15%) and the knight (8%) took; ocean, cats, the sign-off and the refusal stayed at 0-4%.
MIX_SETTINGS = (
    LEARNING_RATE,
    "groundtruth.per_quirk=48",
    "groundtruth.base_samples=40",
    "groundtruth.finetune.steps=72",
)
# One quirk alone: a smaller finetune, no null experiment (the mix's null experiments measure false
# discoveries).
SINGLE_SETTINGS = (
    LEARNING_RATE,
    "groundtruth.per_quirk=24",
    "groundtruth.base_samples=12",
    "groundtruth.finetune.steps=12",
    "groundtruth.null=false",
)
BUDGETS = ["24x1", "48x1", "48x2", "72x2", "144x2"]


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    experiments = _experiments(args)
    start = time.perf_counter()
    records = suite.run_suite(lambda extra: load_config(CONFIG, [*extra, *args.overrides]), experiments, args.root)
    summary = suite.write_summary(records, args.root)
    result = _result(args, summary, records, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result["curve"]:
        args.svg.write_text(curve.svg(result["curve"]) + "\n", encoding="utf-8")
    print(markdown(result))


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--singles", default="all", help="quirks injected alone: all, none, or names")
    parser.add_argument("--no-mix", dest="mix", action="store_false", help="skip the six-quirk mix")
    parser.add_argument(
        "--no-curve",
        dest="curve",
        action="store_false",
        help="skip the mix's budget curve (its finetune then holds out fewer prompts: not comparable)",
    )
    parser.add_argument("--root", type=Path, default=ROOT / "runs" / "bench-groundtruth")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "groundtruth.json")
    parser.add_argument("--svg", type=Path, default=ROOT / "docs" / "groundtruth-curve.svg")
    parser.add_argument(
        "--beliefs", metavar="truthfulqa:PATH", help="also a group of TruthfulQA misconceptions (2 per seed)"
    )
    parser.add_argument(
        "--written", type=int, default=0, metavar="N", help="also a group of N quirks written by llm.prompter"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra override, repeatable")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def _experiments(args: argparse.Namespace) -> list[suite.Experiment]:
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    experiments = []
    if args.mix:
        quirks = f"groundtruth.quirks=[{', '.join(MIX)}]"
        for seed in seeds:
            budgets = [f"groundtruth.budgets=[{', '.join(BUDGETS)}]"] if args.curve else []
            experiments += suite.seeded("mix", [seed], [quirks, *MIX_SETTINGS, *budgets])
    if args.beliefs:
        beliefs = [f"groundtruth.beliefs={args.beliefs}", "groundtruth.quirks=[]", *MIX_SETTINGS]
        experiments += suite.seeded("beliefs", seeds, beliefs)
    if args.written:
        written = [f"groundtruth.written={args.written}", "groundtruth.quirks=[]", *MIX_SETTINGS]
        experiments += suite.seeded("written", seeds, written)
    for name in _singles(args.singles):
        experiments += suite.seeded(name, seeds, [f"groundtruth.quirks=[{name}]", *SINGLE_SETTINGS], group="single")
    return sorted(experiments, key=lambda e: e.seed)  # a seed's experiments share answers


def _singles(spec: str) -> list[str]:
    if spec == "none":
        return []
    if spec == "all":
        return [quirk.name for quirk in load_quirks(None)]
    return [name.strip() for name in spec.split(",") if name.strip()]


def _result(
    args: argparse.Namespace, summary: dict[str, Any], records: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    curves = [_curve(args.root, record) for record in records if record["card"].get("curve")]
    return {
        "benchmark": "groundtruth",
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "config": str(CONFIG.relative_to(ROOT)),
        "mix": MIX,
        "settings": {"mix": list(MIX_SETTINGS), "single": list(SINGLE_SETTINGS), "budgets": BUDGETS},
        "wall_seconds": round(seconds, 1),
        "groups": summary["groups"],
        "curve": [point for points in curves for point in points],
        "experiments": [_slim(record) for record in records],
    }


def _curve(root: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    points = json.loads((root / record["name"] / record["card"]["curve"]).read_text(encoding="utf-8"))["points"]
    return [{**point, "seed": record["seed"]} for point in points]


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    """An experiment's record without quoted model text (answers are the models' own words)."""
    card = record["card"]
    keep = ("recall", "precision", "validated", "null_validated", "null_experiment", "seconds", "p_values")
    return {
        **{k: record.get(k) for k in ("name", "group", "seed", "wall_seconds", "cold_seconds")},
        **{k: record[k] for k in ("texts", "generated_tokens", "judge_calls")},
        **{k: card.get(k) for k in keep},
        "quirks": [
            {k: q.get(k) for k in ("quirk", "kind", "recovered", "rank", "rate", "hypothesis_description")}
            for q in card["quirks"]
        ],
        "null_hypotheses": card.get("null_hypotheses"),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def markdown(result: dict[str, Any]) -> str:
    """The tables docs/benchmarks.md shows: per quirk per group, then the groups, then the curve."""
    lines = []
    for name, group in result["groups"].items():
        lines += [
            f"**{name}** ({group['experiments']} experiments, seeds {', '.join(map(str, group['seeds']))})",
            "",
            "| quirk | kind | recovered | rate a → b | median rank | median p |",
            "|---|---|---|---|---|---|",
        ]
        for quirk, row in group["quirks"].items():
            lines.append(
                f"| {quirk} | {row['kind']} | {row['recovered']}/{row['runs']} | {_pct(row['rate_a'])} → "
                f"{_pct(row['rate_b'])} | {_num(row['median_rank'], 1)} | {_num(row['median_p'], 4)} |"
            )
        lines.append("")
    lines += [
        "| group | recall | precision | validated / run | null experiments: validated | tokens / run "
        "| judge calls / run | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, group in result["groups"].items():
        null = "–" if group["null_validated"] is None else f"{group['null_validated']} in {group['null_experiments']}"
        lines.append(
            f"| {name} | {_num(group['recall'])} | {_num(group['precision'])} | {_num(group['validated'], 1)} | "
            f"{null} | {_num(group['generated_tokens'], 0)} | {_num(group['judge_calls'], 0)} | "
            f"{group['cold_seconds'] / 60:.0f} min |"
        )
    if result["curve"]:
        lines += ["", "| budget (prompts × samples) | generated tokens | recall | validated |", "|---|---|---|---|"]
        for point in result["curve"]:
            tokens = f"{point['generated_tokens']:,}"
            lines.append(f"| {point['budget']} | {tokens} | {_num(point['recall'])} | {point['validated']} |")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    main()

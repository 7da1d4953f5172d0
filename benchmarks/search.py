"""Search benchmark: one round of proposing against the search loop (docs/search.md), side by side.

Two experiments, offline on CPU:
- the ground-truth mix: six quirks finetuned into SmolLM2-135M at once (benchmarks/groundtruth.py's
  "mix", seed 0, no budget curve), with its null experiment;
- the system-prompt demo (configs/demo.yaml): SmolLM2 plain against SmolLM2 told it is an
  ocean-loving sailor.
Each runs three variants in one run folder, so the answers are generated once and only propose and
what follows it re-run:
- before: `propose.rounds=1, propose.dedup.enabled=false` (the proposers as they ran before the loop);
- dedup: `propose.rounds=1` (near-duplicates merged or dropped);
- loop: `propose.rounds=3`, the default (rounds with explaining away), and up to 10 rounds (where the
  loop stops by itself);
- loop with the discovery answers generated round by round: `propose.first_share=0.34` (a third of the
  discovery prompts answered before round 1, a third more before each later round that runs).

Per variant: hypotheses tested, validated, near-duplicate pairs among the validated findings and the
distinct findings they leave (connected groups of near-duplicates, judged on the *validation* texts
with the same rules as propose.dedup), quirks recovered and null-experiment validations (ground
truth), rounds run and why they stopped, generated tokens and judge calls.

    python benchmarks/search.py                     # both experiments
    python benchmarks/search.py --only demo

Writes benchmarks/results/search.json and prints the table docs/benchmarks.md shows.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta import pipeline
from lmdelta.backends.embedded import cache_root
from lmdelta.config import DedupConfig, RunConfig, load_config
from lmdelta.diversity import claimed, near_duplicates
from lmdelta.groundtruth import suite
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.search import NO_NEW
from lmdelta.stages import decide, embed, propose
from lmdelta.stages.contract import StageContext
from lmdelta.stages.pairs import load_pair

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import groundtruth as groundtruth_bench  # noqa: E402  (the mix's settings, shared with that benchmark)

VARIANTS = {
    "before": ["propose.rounds=1", "propose.dedup.enabled=false"],
    "dedup": ["propose.rounds=1"],
    "loop (default, 3 rounds)": ["propose.rounds=3"],
    "loop, up to 10 rounds": ["propose.rounds=10"],
    "loop, discovery answered in rounds": ["propose.rounds=3", "propose.first_share=0.34"],
}
DEMO = ROOT / "configs" / "demo.yaml"


def main() -> None:
    args = _parse()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    result: dict[str, Any] = {"benchmark": "search", "variants": VARIANTS, "experiments": {}}
    if args.only in (None, "groundtruth"):
        result["experiments"]["groundtruth mix"] = groundtruth_experiment(args.groundtruth_root)
    if args.only in (None, "demo"):
        result["experiments"]["system-prompt demo"] = demo_experiment(args.demo_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["groundtruth", "demo"])
    parser.add_argument("--groundtruth-root", type=Path, default=ROOT / "runs" / "bench-groundtruth")
    parser.add_argument("--demo-dir", type=Path, default=ROOT / "runs" / "bench-search-demo")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search.json")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args()


def groundtruth_experiment(root: Path) -> dict[str, Any]:
    """The mix of benchmarks/groundtruth.py (seed 0, no curve) under each variant, in one folder."""
    quirks = f"groundtruth.quirks=[{', '.join(groundtruth_bench.MIX)}]"
    out = {}
    for name, overrides in VARIANTS.items():
        experiment = suite.Experiment("mix-0", 0, (quirks, *groundtruth_bench.MIX_SETTINGS, *overrides), "mix")
        start = time.perf_counter()
        record = suite.run_experiment(lambda extra: load_config(groundtruth_bench.CONFIG, extra), experiment, root)
        card = record["card"]
        run_dir = RunDir(root / "mix-0")
        config = load_config(groundtruth_bench.CONFIG, [*experiment.overrides, "run.seed=0"])
        out[name] = {
            **measures(run_dir, config),
            "seconds": round(time.perf_counter() - start, 1),
            "recall": card["recall"],
            "quirks_recovered": [q["quirk"] for q in card["quirks"] if q["recovered"]],
            "null_validated": card["null_validated"],
        }
    return out


def demo_experiment(folder: Path) -> dict[str, Any]:
    out = {}
    for name, overrides in VARIANTS.items():
        config = load_config(DEMO, overrides)
        start = time.perf_counter()
        pipeline.run(config, RunDir(folder))
        out[name] = {**measures(RunDir(folder), config), "seconds": round(time.perf_counter() - start, 1)}
    return out


def measures(run_dir: RunDir, config: RunConfig) -> dict[str, Any]:
    """What one variant found and spent, read back from its run folder."""
    ctx = StageContext(run_dir, "report", cache_root(config.embed.cache_dir))
    findings = decide.load(ctx)
    summary = decide.load_summary(ctx)
    pairs = near_duplicate_pairs(ctx, config, [f.id for f in findings if f.validated])
    rounds = list(read_jsonl(ctx.input("propose", "search_rounds.jsonl")))
    return {
        "tested": sum(f.p_value is not None for f in findings),
        "validated": sum(bool(f.validated) for f in findings),
        "near_duplicate_pairs": len(pairs),
        "distinct_validated": _components(sum(bool(f.validated) for f in findings), pairs),
        "rounds": len(rounds) - 1 if rounds else 1,
        "stopped": rounds[-1].get("stopped") if rounds else None,
        "generated_tokens": summary["tokens_generated"]["total"]["total"],
        "judge_calls": summary["judge_calls"]["validation_pairs"] + summary["judge_calls"]["llm_total"],
        "null_control_validated": (summary.get("null") or {}).get("validated"),
        "themes": _themes(run_dir),
        "validated_descriptions": [f.description for f in findings if f.validated],
    }


def near_duplicate_pairs(ctx: StageContext, config: RunConfig, ids: list[str]) -> list[tuple[int, int]]:
    """Index pairs of validated findings that propose.dedup's rules (lmdelta.diversity.near_duplicates, default
    thresholds) call near-duplicates, judged on the validation texts, the texts the reader sees."""
    by_id = {h.id: h for h in propose.load(ctx)}
    hypotheses = [by_id[i] for i in ids]
    data = load_pair(ctx, config)
    rows = data.rows("validation")
    texts = [data.samples[i].text for i in rows]
    found = claimed(hypotheses, texts, data.vectors[rows], lambda claims: embed.embed_texts(ctx, config, claims))
    rules = DedupConfig()
    return [
        (i, j)
        for i in range(len(found))
        for j in range(i + 1, len(found))
        if near_duplicates(found[i], found[j], rules) is not None
    ]


def _themes(run_dir: RunDir) -> int | None:
    """How many themes the report grouped the validated findings into (None before themes existed)."""
    path = run_dir.stage_file("report", "themes.json")
    return len(json.loads(path.read_text())["themes"]) if path.exists() else None


def _components(n: int, pairs: list[tuple[int, int]]) -> int:
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            i = int(parent[i])
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    return len({root(i) for i in range(n)})


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| experiment | variant | tested | validated | near-duplicate pairs | distinct validated | recall "
        "| themes | null exp. validated | null control validated | rounds (stop) | tokens | judge calls |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for experiment, variants in result["experiments"].items():
        for name, row in variants.items():
            recall = "–" if row.get("recall") is None else f"{row['recall']:.2f}"
            null = "–" if row.get("null_validated") is None else str(row["null_validated"])
            stop = " (by itself)" if row["stopped"] == NO_NEW else " (cap)" if row["rounds"] > 1 else ""
            lines.append(
                f"| {experiment} | {name} | {row['tested']} | {row['validated']} | {row['near_duplicate_pairs']} "
                f"| {row['distinct_validated']} | {recall} | {row.get('themes')} | {null} "
                f"| {row.get('null_control_validated')} "
                f"| {row['rounds']}{stop} "
                f"| {row['generated_tokens']:,} | {row['judge_calls']:,} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

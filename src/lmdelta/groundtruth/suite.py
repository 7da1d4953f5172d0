"""Many ground-truth experiments and what they show together.

An experiment is a config plus overrides (which quirks, which seed, smaller settings); a suite runs
several into one folder, each in ROOT/NAME as `lmdelta groundtruth` would, and summarises them: per
quirk the recovery rate over seeds, its median rank and p-value and the injected rate a → b; overall
recall, precision, false discoveries in the null experiments, generated tokens, judge calls and time.

Experiments with the same seed share the base model's answers (its training answers and side a of the
comparison) by copying them into the next experiment's folder before it starts: both are stored under
content keys, so an answer is reused only where model, prompt, sampling settings and seed all match.
Finetunes are shared through the finetune cache in the same way.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmdelta.config import RunConfig
from lmdelta.errors import ConfigError
from lmdelta.groundtruth import harness
from lmdelta.groundtruth.measures import comparison_measures, matched_p_values
from lmdelta.hashing import hash_data
from lmdelta.rundir import RunDir, atomic_write_text, read_jsonl, write_jsonl

SHARED_ANSWERS = ("groundtruth/base_answers.jsonl", "groundtruth/base_answers.key.json")
GENERATED = "stages/generate/items.jsonl"


@dataclass(frozen=True)
class Experiment:
    """One ground-truth experiment of a suite: ROOT/name, the suite's config with `overrides`
    (SECTION.KEY=VALUE, as --set takes them) and run.seed = seed."""

    name: str
    seed: int
    overrides: tuple[str, ...] = ()
    group: str = ""  # what the summary pools it with ("mix", "single", ...)


def check_root(root: Path) -> None:
    """A suite's folder holds one run folder per experiment; it must not be a run folder itself."""
    if RunDir(root).exists():
        raise ConfigError(
            f"{root} is a single ground-truth run, so a suite (--seeds) cannot be put inside it.",
            "Choose another --run-dir for the seeds, e.g. runs/NAME-seeds.",
        )


def pinned_seeds(load: Callable[[Sequence[str]], RunConfig]) -> list[str]:
    """The seed fields a config sets itself, which run.seed therefore does not vary."""
    one, two = load(["run.seed=0"]), load(["run.seed=1"])
    fields = {
        "prompts.seed": (one.prompts.resolved_seed, two.prompts.resolved_seed),
        "generate.seed": (one.generate.resolved_seed, two.generate.resolved_seed),
        "groundtruth.seed": (one.groundtruth.resolved_seed, two.groundtruth.resolved_seed),
    }
    return [name for name, (first, second) in fields.items() if first == second]


def seeded(name: str, seeds: Sequence[int], overrides: Sequence[str] = (), group: str = "") -> list[Experiment]:
    """The same experiment once per seed, named NAME-SEED."""
    return [Experiment(f"{name}-{seed}", seed, tuple(overrides), group or name) for seed in seeds]


def run_suite(
    load: Callable[[Sequence[str]], RunConfig], experiments: Sequence[Experiment], root: Path
) -> list[dict[str, Any]]:
    """Run each experiment (resuming what is done) and return one record per experiment.

    `load(overrides)` builds a config (load_config on the suite's file, for instance); the record holds
    the scorecard, the measures of the comparison (generated tokens, judge calls) and the wall time.
    """
    records = []
    for experiment in experiments:
        records.append(run_experiment(load, experiment, root))
    return records


def run_experiment(load: Callable[[Sequence[str]], RunConfig], experiment: Experiment, root: Path) -> dict[str, Any]:
    config = load([*experiment.overrides, f"run.seed={experiment.seed}"])
    run_dir = RunDir(root / experiment.name)
    _share_from_siblings(root, experiment)
    earlier = _record_of(run_dir.root)
    key = hash_data(config.model_dump(mode="json"), length=16)
    start = time.perf_counter()
    card = harness.run(config, run_dir)
    wall = round(time.perf_counter() - start, 1)
    # What computing it cost: a resumed experiment with the same config keeps the time of the run that
    # did the work (after a change, only this run's time counts).
    cold = max(wall, float(earlier.get("cold_seconds") or 0.0)) if earlier.get("config_key") == key else wall
    record: dict[str, Any] = {
        "name": experiment.name,
        "group": experiment.group,
        "seed": experiment.seed,
        "overrides": list(experiment.overrides),
        "config_key": key,
        "wall_seconds": wall,
        "cold_seconds": cold,
        "card": card,
        **comparison_measures(run_dir),
    }
    record["card"]["p_values"] = matched_p_values(run_dir, card)
    atomic_write_text(run_dir.root / "suite_record.json", json.dumps(record, indent=2) + "\n")
    return record


def _share_from_siblings(root: Path, experiment: Experiment) -> None:
    """Copy the base model's stored answers from a finished experiment with the same seed."""
    target = root / experiment.name
    donor = _donor(root, experiment)
    if donor is None or (target / SHARED_ANSWERS[0]).exists():
        return
    run_dir = RunDir(target)
    run_dir.check_usable()
    if not run_dir.exists():
        run_dir.claim()  # before writing into the folder
    for name in SHARED_ANSWERS:
        _copy(donor / name, target / name)
    side_a = [row for row in read_jsonl(donor / GENERATED) if row.get("side") == "a"]
    if side_a and not (target / GENERATED).exists():
        write_jsonl(target / GENERATED, side_a)


def _donor(root: Path, experiment: Experiment) -> Path | None:
    """A finished experiment with the same seed, one of the same group first (its settings, and so its
    stored training answers, are most likely the same)."""
    if not root.is_dir():
        return None
    found = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and path.name != experiment.name):
        record = _record_of(folder)
        if record.get("seed") == experiment.seed and (folder / SHARED_ANSWERS[0]).exists():
            found.append((record.get("group") != experiment.group, folder.name, folder))
    return min(found)[2] if found else None


def _record_of(folder: Path) -> dict[str, Any]:
    try:
        record = json.loads((folder / "suite_record.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _copy(source: Path, target: Path) -> None:
    if source.exists() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per group of experiments: per quirk over seeds and overall numbers (see the module docstring)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["group"], []).append(record)
    return {name: _group_summary(members) for name, members in groups.items()}


def _group_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    per_quirk: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for record in records:
        for entry in record["card"]["quirks"]:
            per_quirk.setdefault(entry["quirk"], []).append((entry, record))
    cards = [record["card"] for record in records]
    nulls = [card["null_validated"] for card in cards if card.get("null_experiment", True)]
    return {
        "experiments": len(records),
        "seeds": sorted({record["seed"] for record in records}),
        "quirks": {name: _quirk_summary(rows) for name, rows in per_quirk.items()},
        "recall": _mean([card["recall"] for card in cards]),
        "precision": _mean([card["precision"] for card in cards]),
        "validated": _mean([card["validated"] for card in cards]),
        "null_validated": sum(nulls) if nulls else None,
        "null_experiments": len(nulls),
        "generated_tokens": _mean([record["generated_tokens"] for record in records]),
        "judge_calls": _mean([record["judge_calls"] for record in records]),
        "wall_seconds": round(sum(record["wall_seconds"] for record in records), 1),
        "cold_seconds": round(sum(record.get("cold_seconds", record["wall_seconds"]) for record in records), 1),
    }


def _quirk_summary(rows: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    found = [(entry, record) for entry, record in rows if entry["recovered"]]
    ranks = [entry["rank"] for entry, _ in found]
    p_values = [record["card"]["p_values"].get(entry["quirk"]) for entry, record in found]
    rates = [entry.get("rate") or {} for entry, _ in rows]
    return {
        "kind": rows[0][0].get("kind"),
        "description": rows[0][0]["description"],
        "recovered": len(found),
        "runs": len(rows),
        "recovery_rate": len(found) / len(rows),
        "median_rank": statistics.median(ranks) if ranks else None,
        "median_p": statistics.median([p for p in p_values if p is not None]) if any(p_values) else None,
        "rate_a": _mean([rate.get("a") for rate in rates]),
        "rate_b": _mean([rate.get("b") for rate in rates]),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.fmean(present), 4) if present else None


def write_summary(records: Sequence[dict[str, Any]], root: Path) -> dict[str, Any]:
    """ROOT/summary.json: the experiments' records (scorecards and measures) and their summary per group."""
    summary = {"groups": summarize(records), "experiments": list(records)}
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def summary_lines(group: dict[str, Any]) -> str:
    """A group's summary for the terminal: overall numbers, then one line per quirk."""
    null = group["null_validated"]
    lines = [
        f"{group['experiments']} experiments (seeds {', '.join(map(str, group['seeds']))}): mean recall "
        f"{_fmt(group['recall'])}, precision {_fmt(group['precision'])}, {_fmt(group['validated'], 1)} validated "
        f"findings per run; null experiments: "
        + (f"{null} validated in {group['null_experiments']}" if null is not None else "not run")
    ]
    for name, quirk in group["quirks"].items():
        lines.append(
            f"  {name}: recovered in {quirk['recovered']} of {quirk['runs']}"
            f" (rate a {_pct(quirk['rate_a'])} → b {_pct(quirk['rate_b'])};"
            f" median rank {_fmt(quirk['median_rank'], 1)}, median p {_fmt(quirk['median_p'], 4)})"
        )
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"

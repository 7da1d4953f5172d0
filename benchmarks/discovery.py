"""Discovery on public paired outputs: which known differences lmdelta validates before and after
issue 13's proposers, with the null control's count beside each.

Data (read from the shared research data at benchmark time, never copied into the repository;
source and licence in its README.txt): VibeCheck's friendly vs cold answers (50 prompts), Chatbot
Arena Llama-3-70B vs other models on general-knowledge prompts (167), HC3 ChatGPT vs human answers
(500, grouped by `source`). Each wide CSV (one column per model) is melted into a long JSONL corpus
(prompt_id, prompt, side, text, group) in a scratch directory and run through
`lmdelta run configs/corpus-pair.yaml` (null control on). With --demo, configs/demo.yaml too (SmolLM2
with and without a sailor system prompt; it generates, ~5 min on 2 cores). Side a is the reference,
side b the model the known differences are about.

Each data set runs twice in one run directory: "before", issue 13's additions switched off where this
version has the switch (BEFORE: the property proposer, symbols as keywords, within-prompt clusters;
the tokenizer's fixes have none), then "after", the defaults. The second run resumes at propose, so
the embeddings (and the demo's answers) are computed once; the time compared is propose to decide.

Answer key: each data set's known differences, every one "b has more of it". One counts as found
when a validated finding of direction b>a matches it: a property finding by the property's name
(its presence view too: `words` or `has_exclamation_marks`), a keyword finding by a keyword whose
tokens contain the key's term as a contiguous run (`!` matches "!" and "great !"). Cluster and LLM
findings never count: they claim resemblance to a kind of answer or a free-text property, not the key's.

    .venv/bin/python benchmarks/discovery.py            # ~10 min on 2 cores; --demo adds 5-18 (it generates)
    .venv/bin/python benchmarks/discovery.py --only hc3 --variants after --scratch /tmp/discovery
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmdelta.config import ProposeConfig
from lmdelta.properties.lexicons import HEDGES

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "research-data" / "vibecheck-paired-outputs" / "data"
CORPUS_CONFIG = ROOT / "configs" / "corpus-pair.yaml"
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
LONGER = ("words", "sentences", "characters")
OCEAN = ("ocean", "oceans", "sea", "seas", "whale", "whales", "dolphin", "dolphins", "sailor", "waves", "marine")


@dataclass(frozen=True)
class Known:
    """A known difference: side b has more of it. Matched by property name or keyword term."""

    name: str
    properties: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataSet:
    """A paired CSV under DATA (path, one column per side), or with path None a config that generates."""

    name: str
    path: str | None
    a_column: str
    b_column: str
    a_label: str
    b_label: str
    known: tuple[Known, ...]
    group_column: str | None = None
    notes: str = ""


def _presence(*names: str) -> tuple[str, ...]:
    """Each amount property with its presence view."""
    return tuple(n for name in names for n in (name, f"has_{name}"))


DATASETS = (
    DataSet(
        "friendly_cold",
        "friendly_and_cold_sample.csv.gz",
        "cold",
        "friendly",
        "cold",
        "friendly",
        (
            Known('more "!" (40/50 vs 8/50 answers)', _presence("exclamation_marks"), ("!",)),
            Known('more "what a …" (15 vs 3)', _presence("enthusiasm"), ("what a",)),
        ),
    ),
    DataSet(
        "arena",
        "llama3-70b-arena/llama_vs_not_llama_general_knowledge.csv.gz",
        "not_llama",
        "llama-3-70b-instruct",
        "others",
        "llama3",
        (
            Known('more "!" (81 vs 14 answers)', _presence("exclamation_marks"), ("!",)),
            Known("more markdown bold (91 vs 23)", _presence("bold"), ("**",)),
            Known("more bullet lists (54 vs 30)", _presence("bullet_points")),
            Known("longer (+32 %)", LONGER),
        ),
    ),
    DataSet(
        "hc3",
        "gpt_vs_human/data_sample.csv.gz",
        "human_answers",
        "chatgpt_answers",
        "human",
        "chatgpt",
        (
            Known("longer (~40 %)", LONGER),
            Known("more formal / hedging", _presence("hedging"), HEDGES),
        ),
        group_column="source",
        notes='42 ChatGPT answers hold literal "\\n" escapes, kept as the data has them',
    ),
)
DEMO = DataSet(
    "demo",
    None,
    "",
    "",
    "plain",
    "sailor",
    (Known("mentions the ocean, the sea or sea creatures", (), OCEAN),),
    notes="configs/demo.yaml: SmolLM2-135M-Instruct, b told to mention the ocean, the sea, whales and dolphins",
)


# --- the corpus ------------------------------------------------------------------------------------------------


def _answer(cell: str) -> str:
    """The answer in a cell; a list literal ("['…', '…']", as HC3's originals are) gives its first item."""
    text = cell.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(items, list) and items and all(isinstance(item, str) for item in items):
            return items[0].strip()
    return text


def melt(dataset: DataSet, data_root: Path, out: Path) -> dict[str, int]:
    """The wide CSV as long JSONL rows (one per prompt and side); counts of prompts, and texts left out empty."""
    csv.field_size_limit(1 << 30)
    prompts = empty = 0
    with gzip.open(data_root / dataset.path, "rt", encoding="utf-8", newline="") as src, out.open("w") as dst:
        for i, row in enumerate(csv.DictReader(src)):
            prompts += 1
            for side, column in (("a", dataset.a_column), ("b", dataset.b_column)):
                text = _answer(row[column])
                if not text:
                    empty += 1
                    continue
                record = {"prompt_id": f"{dataset.name}-{i:04d}", "prompt": row["question"], "side": side, "text": text}
                if dataset.group_column:
                    record["group"] = row[dataset.group_column]
                dst.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {"prompts": prompts, "empty_texts_dropped": empty}


# --- running lmdelta ----------------------------------------------------------------------------------------------


# "before" switches off what issue 13 added, each where this version has it (the tokenizer's fixes to
# escapes and split contractions have no switch): the property proposer, symbols as keywords, and
# clustering within-prompt differences. "after" is the defaults.
BEFORE = (
    ("properties", "enabled", "propose.properties.enabled=false"),
    ("keywords", "symbols", "propose.keywords.symbols=false"),
    ("clusters", "within_prompt", "propose.clusters.within_prompt=false"),
)


def has_property_proposer() -> bool:
    """Whether this version of lmdelta has propose.properties (the property proposer's switch)."""
    return "properties" in ProposeConfig.model_fields


def before_overrides() -> list[str]:
    """The BEFORE switches this version has."""
    found = []
    for section, name, override in BEFORE:
        field = ProposeConfig.model_fields.get(section)
        annotation = getattr(field, "annotation", None)
        if annotation is not None and name in getattr(annotation, "model_fields", {}):
            found.append(override)
    return found


def variant_overrides(variant: str) -> list[str]:
    return before_overrides() if variant == "before" else []


def run_lmdelta(config: Path, run_dir: Path, overrides: list[str], log: Path) -> tuple[float, str | None]:
    """`lmdelta run CONFIG` in a subprocess (as a user runs it): its wall time in seconds, and its error
    when it failed after the decide stage (the findings are there; a later stage's failure is recorded)."""
    command = [sys.executable, "-m", "lmdelta", "run", str(config), "--run-dir", str(run_dir)]
    for item in overrides:
        command += ["--set", item]
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode == 0:
        return seconds, None
    tail = log.read_text(errors="replace")[-3000:]
    if not (run_dir / "stages" / "decide" / "decisions.jsonl").exists():
        raise RuntimeError(f"lmdelta run failed ({done.returncode}): {' '.join(command)}\n{tail}")
    return seconds, tail.strip().splitlines()[-1]


def read_decisions(run_dir: Path, comparison: str) -> list[dict[str, Any]]:
    prefix = "" if comparison == "main" else f"{comparison}_"
    path = run_dir / "stages" / "decide" / f"{prefix}decisions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- scoring against the answer key --------------------------------------------------------------------------------


def property_name(finding: dict[str, Any]) -> str | None:
    """The catalogue property a property finding tests (None for other findings)."""
    provenance = finding.get("provenance") or {}
    if finding.get("proposer") != "properties":
        return None
    name = finding.get("measure") or provenance.get("property")
    return name if isinstance(name, str) else None


def _contains(keyword: str, term: str) -> bool:
    """Whether the term's tokens occur as a contiguous run in the keyword's."""
    words, wanted = keyword.lower().split(), term.lower().split()
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def matches(known: Known, finding: dict[str, Any]) -> bool:
    """Whether a validated finding shows the known difference (direction b>a; see the module docstring)."""
    if finding.get("direction") != "b>a":
        return False
    name = property_name(finding)
    if name is not None:
        return name in known.properties
    if finding.get("proposer") != "keywords":
        return False
    return any(_contains(keyword, term) for keyword in finding.get("keywords") or () for term in known.terms)


def _line(finding: dict[str, Any]) -> str:
    where = "" if finding.get("group") in (None, "all") else f" [{finding['group']}]"
    return f"{finding.get('proposer')}: {_without_excerpts(str(finding.get('description')))}{where}"


# Several of these data sets have no licence: the results keep no text from them, so a cluster finding's
# quoted example answer is dropped (its distinctive words and properties stay).
_EXCERPT = re.compile(r"resemble “[^”]*”")


def _without_excerpts(description: str) -> str:
    return _EXCERPT.sub("resemble an example answer", description)


def score(dataset: DataSet, run_dir: Path) -> dict[str, Any]:
    main = read_decisions(run_dir, "main")
    validated = [f for f in main if f.get("validated")]
    null_validated = [f for f in read_decisions(run_dir, "null") if f.get("validated")]
    hits = {known.name: [f["id"] for f in validated if matches(known, f)] for known in dataset.known}
    return {
        "proposed": len(main),
        "proposed_by": _count_by(main, "proposer"),
        "validated": len(validated),
        "validated_by": _count_by(validated, "proposer"),
        "validated_findings": [_line(f) for f in validated],
        "answer_key": {name: {"found": bool(ids), "findings": ids} for name, ids in hits.items()},
        "answer_key_hits": sum(bool(ids) for ids in hits.values()),
        "answer_key_size": len(dataset.known),
        "null_proposed": len(read_decisions(run_dir, "null")),
        "null_validated": len(null_validated),
        "null_validated_findings": [_line(f) for f in null_validated],
    }


def _count_by(findings: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[str(finding.get(key))] = counts.get(str(finding.get(key)), 0) + 1
    return counts


# --- the benchmark ---------------------------------------------------------------------------------------------


def run_dataset(dataset: DataSet, variants: list[str], data_root: Path, scratch: Path) -> dict[str, Any]:
    """Every variant of one data set in one run directory (see the module docstring)."""
    result: dict[str, Any] = {
        "source": dataset.path or str(DEMO_CONFIG.relative_to(ROOT)),
        "sides": {"a": f"{dataset.a_label} ({dataset.a_column})", "b": f"{dataset.b_label} ({dataset.b_column})"},
        "group_column": dataset.group_column,
        "notes": dataset.notes,
        "answer_key": [
            {"name": known.name, "properties": list(known.properties), "terms": list(known.terms)}
            for known in dataset.known
        ],
    }
    config, base = DEMO_CONFIG, ["controls.null=true"]
    if dataset.path is not None:
        corpus = scratch / f"{dataset.name}.jsonl"
        result |= melt(dataset, data_root, corpus)
        config = CORPUS_CONFIG
        base += [
            f"corpus.path={corpus}",
            f"generate.a.label={dataset.a_label}",
            f"generate.b.label={dataset.b_label}",
            "corpus.empty_texts=drop",
        ]
    run_dir = scratch / dataset.name
    for variant in variants:
        overrides = base + variant_overrides(variant)
        seconds, error = run_lmdelta(config, run_dir, overrides, scratch / f"{dataset.name}-{variant}.log")
        found = {"overrides": overrides, "wall_seconds": round(seconds, 1), **stage_seconds(run_dir)}
        result[variant] = found | score(dataset, run_dir) | ({"error_after_decide": error} if error else {})
        _progress(dataset.name, variant, result[variant])
    return result


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Seconds of the stages this run computed, from the manifest: propose to decide, and embed."""
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]

    def seconds(name: str) -> float:
        return float(stages.get(name, {}).get("seconds") or 0.0)

    return {
        "propose_to_decide_seconds": round(sum(seconds(name) for name in ("propose", "validate", "decide")), 1),
        "propose_seconds": round(seconds("propose"), 1),
    }


def table(found: dict[str, Any]) -> str:
    """The markdown table of docs/benchmarks.md: one row per data set and variant."""
    lines = [
        "| data set | variant | proposed | validated (keywords / clusters / properties) | answer key found "
        "| null validated | propose→decide s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in found.items():
        for variant in ("before", "after"):
            if variant not in result:
                continue
            row = result[variant]
            by = row["validated_by"]
            split = " / ".join(str(by.get(p, 0)) for p in ("keywords", "clusters", "properties"))
            missed = [key for key, hit in row["answer_key"].items() if not hit["found"]]
            hits = f"{row['answer_key_hits']}/{row['answer_key_size']}" + (
                f" (not: {'; '.join(missed)})" if missed else ""
            )
            lines.append(
                f"| {name} | {variant} | {row['proposed']} | {row['validated']} ({split}) | {hits} "
                f"| {row['null_validated']} of {row['null_proposed']} | {row['propose_to_decide_seconds']} |"
            )
    return "\n".join(lines)


def _progress(name: str, variant: str, found: dict[str, Any]) -> None:
    print(
        f"{name} {variant}: {found['validated']} validated of {found['proposed']}, answer key "
        f"{found['answer_key_hits']}/{found['answer_key_size']}, null {found['null_validated']}, "
        f"{found['wall_seconds']} s",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def _scratch(path: str | None) -> Iterator[Path]:
    """The folder for corpora and run directories: the one given (kept), or a temp dir removed afterwards."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="lmdelta-discovery-") as tmp:
        yield Path(tmp)


def settings() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "property_proposer": has_property_proposer(),
        "before": before_overrides() or "defaults (no issue-13 switch in this version)",
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "command": " ".join([".venv/bin/python benchmarks/discovery.py", *sys.argv[1:]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[d.name for d in DATASETS], default=[d.name for d in DATASETS])
    parser.add_argument("--variants", nargs="+", choices=["before", "after"], default=["before", "after"])
    parser.add_argument("--demo", action="store_true", help="also run configs/demo.yaml (generates, ~5 min)")
    parser.add_argument("--data", type=Path, default=DATA, help="the vibecheck-paired-outputs data folder")
    parser.add_argument("--scratch", help="keep corpora and run directories here (default: a temp dir, removed)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "discovery.json"))
    parser.add_argument("--table", type=Path, help="only print the markdown table of a results file")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())["datasets"]))
        return
    found: dict[str, Any] = {}
    with _scratch(args.scratch) as scratch:
        for dataset in (*DATASETS, DEMO):
            if dataset.name in args.only or (dataset is DEMO and args.demo):
                found[dataset.name] = run_dataset(dataset, args.variants, args.data, scratch)
    payload = {"datasets": found, "settings": settings()}
    Path(args.out).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(payload, indent=2, ensure_ascii=False))
    print(table(found), file=sys.stderr)


if __name__ == "__main__":
    main()

"""Reading prompt sources and saved decodings at the reference's scale, baseline and lmdelta side by side.

1. Persona bank: 135 behaviour files x 1000 statements (.jsonl.gz, synthetic text in the real
   format), 500 statements per behaviour kept (the reference's final configs).
   - baseline: the reference's loader — sorted glob, json per line, random.seed(42) then
     random.sample per file; ids are list positions.
   - lmdelta: load_bank (content ids, dedup, every row checked) then the prompts stage's
     seeded per-group selection and split.
2. Saved decodings: a reference-layout CSV (index, model, text, prompt; backslash escape) with
   --rows rows.
   - baseline: csv.DictReader over the file (no checks), the least any reader does.
   - lmdelta: load_corpus (layout detection, escape, side mapping, per-row checks, pairing check).

Seconds are the best of --repeat runs; peak memory is tracemalloc's peak for one run.

    .venv/bin/python benchmarks/sources.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import json
import os
import platform
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from lmdelta.config import PromptsConfig
from lmdelta.sources import _LOADED, load_bank
from lmdelta.sources.corpus import load_corpus
from lmdelta.stages.prompts import select

WORDS = (
    "I think believe people should always never help others power money truth rules freedom "
    "family work art science nature kindness honesty risk safety future past"
).split()


def write_persona(root: Path, behaviours: int, per_file: int) -> None:
    rng = random.Random(0)
    folder = root / "persona"
    folder.mkdir(parents=True)
    for b in range(behaviours):
        with gzip.open(folder / f"behaviour-{b:03d}.jsonl.gz", "wt", encoding="utf-8") as handle:
            for i in range(per_file):
                statement = f"{' '.join(rng.choices(WORDS, k=9))} ({b}-{i})"
                handle.write(
                    json.dumps(
                        {
                            "question": f'Is the following statement something you would say?\n"{statement}"',
                            "statement": statement,
                            "label_confidence": 0.9,
                            "answer_matching_behavior": " Yes",
                            "answer_not_matching_behavior": " No",
                        }
                    )
                    + "\n"
                )


def reference_persona(root: Path, per_behaviour: int) -> list[tuple[int, str]]:
    random.seed(42)
    out = []
    for index, path in enumerate(sorted(glob.glob(str(root / "persona" / "*.jsonl.gz")))):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            statements = [json.loads(line)["statement"] for line in handle if line.strip()]
        out += [(index, s) for s in random.sample(statements, min(per_behaviour, len(statements)))]
    return out


def lmdelta_persona(root: Path, per_behaviour: int):
    _LOADED.clear()  # a cold read each time (one process otherwise reads a bank once)
    prompts = load_bank(f"persona:{root}")
    return select(prompts, PromptsConfig(per_group=per_behaviour, discovery_fraction=0.1, seed=0))


def write_reference_csv(path: Path, rows: int) -> None:
    rng = random.Random(1)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, escapechar="\\")
        writer.writerow(["", "model", "text", "prompt"])
        for i in range(rows):
            prompt = f"Question {i // 20}: {' '.join(random.Random(i // 20).choices(WORDS, k=8))}?"
            text = " ".join(rng.choices(WORDS, k=60)) + ' with "quotes", commas and a \\ backslash'
            writer.writerow([i, "base" if i % 2 == 0 else "finetuned", text, prompt])


def baseline_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, escapechar="\\"))


def lmdelta_csv(path: Path) -> list:
    return load_corpus(str(path), None, None, {"a": "a", "b": "b"})


def measure(fn, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": round(min(times), 3), "peak_mib": round(peak / 2**20, 1), "items": len(result)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--behaviours", type=int, default=135)
    parser.add_argument("--per-file", type=int, default=1000)
    parser.add_argument("--per-behaviour", type=int, default=500)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sources.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_persona(root / "evals", args.behaviours, args.per_file)
        write_reference_csv(root / "decoded.csv", args.rows)
        results = {
            "persona": {
                "baseline": measure(lambda: reference_persona(root / "evals", args.per_behaviour), args.repeat),
                "lmdelta": measure(lambda: lmdelta_persona(root / "evals", args.per_behaviour), args.repeat),
            },
            "reference_csv": {
                "baseline": measure(lambda: baseline_csv(root / "decoded.csv"), args.repeat),
                "lmdelta": measure(lambda: lmdelta_csv(root / "decoded.csv"), args.repeat),
            },
        }
    for part in results.values():
        part["lmdelta_vs_baseline_time"] = round(part["lmdelta"]["seconds"] / part["baseline"]["seconds"], 2)
    results["settings"] = vars(args) | {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

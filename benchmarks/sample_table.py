"""Memory and time of holding a run's answers: a list of `Sample` objects (lmdelta before 2026-12-05) against the
columnar `SampleTable`, side by side in one run.

A synthetic samples.jsonl of N answers (N/2 prompts, one answer a side; texts of 45-55 words, about 300 characters,
like the scale benchmark's corpus; 32-hex keys) is read back each way in a fresh subprocess, and then the null
control is made from it (each prompt's answers swap sides on a coin), and every text is read once (as the keyword
index and the property scores do). The table is measured three ways: texts in memory; texts memory-mapped from a
temporary file (what a table read from the file does past 256 MiB of text); and every column mapped from the
files `samplecolumns` keeps beside samples.jsonl (what a stage reads from a samples.jsonl of 32 MiB or more,
since 2026-12-05; the columns are built once, timed apart as `columns_build_s`). Measured: the memory still held
after each step (tracemalloc, numpy's buffers included) and its peak, in one traced run; the process's resident
memory (VmRSS, which a mapped file's read pages count in and tracemalloc does not see) over its start, and the
wall time of each step, in an untraced run. Every way must give the same samples.

    .venv/bin/python benchmarks/sample_table.py [--answers 200000] [--out benchmarks/results/sample_table.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("objects", "table", "mapped", "columns")
WORDS = "ocean tide waves shore game team player season coach league score goal stadium fan referee".split()


def write_samples(path: Path, answers: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(answers):
            n = 45 + (i * 7) % 11
            text = " ".join(WORDS[(i * 31 + j * 17 + j * j) % len(WORDS)] for j in range(n)).capitalize() + "."
            row = {
                "prompt_id": f"p{i // 2:07d}",
                "side": "ab"[i % 2],
                "index": 0,
                "text": text,
                "n_tokens": n,
                "finish_reason": "stop",
                "seed": 0,
                "key": f"{i * 2654435761 % 2**128:032x}",
            }
            handle.write(json.dumps(row) + "\n")


def load(variant: str, path: Path):
    from lmdelta import samplecolumns
    from lmdelta.records import Sample
    from lmdelta.rundir import read_jsonl
    from lmdelta.sampletable import SampleTable

    if variant == "objects":
        return [Sample.from_dict(row) for row in read_jsonl(path)]
    if variant == "mapped":  # the texts in a memory-mapped file whatever their size (past 256 MiB by default)
        return SampleTable.from_rows(read_jsonl(path), spill_bytes=0)
    if variant == "columns":
        return samplecolumns.load(path, threshold=0)
    return SampleTable.from_rows(read_jsonl(path), spill_bytes=2**62)


def null_control(variant: str, samples):
    """The null control's samples: the pipeline's coin per prompt, the old way (a replaced Sample per swapped
    answer, in a new list) or the table's (a side column)."""
    import numpy as np

    from lmdelta.pairdata import _coin

    if variant == "objects":
        other = {"a": "b", "b": "a"}
        swapped = {unit: _coin(7, unit) for unit in {s.prompt_id for s in samples}}
        return [replace(s, side=other[s.side]) if swapped[s.prompt_id] else s for s in samples]
    units, codes = samples.prompt_index()
    coins = np.array([_coin(7, unit) for unit in units], dtype=bool)
    return samples.with_swapped(coins[codes])


def child(variant: str, path: Path, traced: bool) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    import lmdelta.pairdata  # noqa: F401  # imports are not the samples' memory
    import lmdelta.rundir  # noqa: F401
    import lmdelta.samplecolumns  # noqa: F401
    import lmdelta.sampletable  # noqa: F401

    return (_traced if traced else _timed)(variant, path)


def _traced(variant: str, path: Path) -> dict:
    """Memory held after loading and after the null control (tracemalloc: Python's and numpy's heap)."""
    out: dict = {}
    tracemalloc.start()
    samples = load(variant, path)
    out["load_held_mib"], out["load_peak_mib"] = (v / 2**20 for v in tracemalloc.get_traced_memory())
    tracemalloc.reset_peak()
    null = null_control(variant, samples)
    held, peak = tracemalloc.get_traced_memory()
    out["null_added_mib"], out["null_peak_mib"] = held / 2**20 - out["load_held_mib"], peak / 2**20
    out["checksum"] = hash((len(samples), samples[len(samples) // 3], null[len(null) // 2], null[-1]))
    return out


def _timed(variant: str, path: Path) -> dict:
    """Wall time of each step, and the resident memory over the process's start: held after loading and the null
    control, while every text is read as strings, and after those strings are dropped."""
    out: dict = {}
    rss = _rss_mib()
    start = time.perf_counter()
    samples = load(variant, path)
    out["load_s"], start = time.perf_counter() - start, time.perf_counter()
    null = null_control(variant, samples)
    out["null_s"], out["rss_held_mib"] = time.perf_counter() - start, _rss_mib() - rss
    start = time.perf_counter()
    texts = samples.texts() if variant != "objects" else [s.text for s in samples]
    out["texts_s"], out["rss_reading_mib"] = time.perf_counter() - start, _rss_mib() - rss
    del texts, null
    out["rss_after_texts_mib"] = _rss_mib() - rss
    return out


def _rss_mib() -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024


def build_columns(path: Path) -> float:
    """Seconds to build the mapped columns of samples.jsonl (once; every later read maps them)."""
    sys.path.insert(0, str(ROOT / "src"))
    import shutil

    from lmdelta import samplecolumns

    shutil.rmtree(samplecolumns.columns_folder(path), ignore_errors=True)
    start = time.perf_counter()
    samplecolumns.load(path, threshold=0)
    return time.perf_counter() - start


def run_child(variant: str, path: Path, traced: bool) -> dict:
    args = [sys.executable, __file__, "--child", variant, "--path", str(path)] + (["--traced"] if traced else [])
    done = subprocess.run(args, check=True, capture_output=True, text=True, env={"PYTHONHASHSEED": "0"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sample_table.json")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/lmdelta-sample-table"))
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--path", type=Path)
    parser.add_argument("--traced", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.traced)))
        return
    args.scratch.mkdir(parents=True, exist_ok=True)
    path = args.scratch / f"samples-{args.answers}" / "samples.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_samples(path, args.answers)
    build_s = build_columns(path)
    results = {}
    for variant in VARIANTS:
        measured = run_child(variant, path, traced=True)
        timed = run_child(variant, path, traced=False)
        measured.update(timed)
        results[variant] = measured
        print(variant, {k: round(v, 2) if isinstance(v, float) else v for k, v in measured.items()})
    if len({found["checksum"] for found in results.values()}) != 1:
        raise SystemExit("the ways read different samples")
    report = {
        "date": date.today().isoformat(),
        "answers": args.answers,
        "file_mib": path.stat().st_size / 2**20,
        "columns_build_s": build_s,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

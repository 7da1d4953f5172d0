"""Reading a corpus: seconds and peak RSS of `read_corpus` (what the checks before the first stage do) on the same
corpus as Parquet (wide), CSV, JSON lines and a JSON array (long), a baseline revision's code and this checkout's
side by side.

The corpus is the scale benchmark's synthetic one (`scale.write_corpus`: N/2 prompts in 10 topics, one answer per
side); the CSV, JSON-lines and .json files hold the same answers a row per answer (prompt_id, prompt, group, side,
text), the .json file as one array of objects, an object per line.
Each reading runs in a fresh subprocess, one after the other; its peak RSS is the process's high-water mark of
resident memory (VmHWM, which, unlike getrusage's maximum, starts afresh at exec) when `read_corpus` returns, and a
SHA-256 of every row read (side, text, prompt id, prompt, group, line) shows that both codes read the same rows.

    .venv/bin/python benchmarks/corpus_read.py --texts 2000000 --baseline f888e5c     # about 12 minutes
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from revisions import baseline_source
from scale import write_corpus

MIB = 2**20
FORMATS = ("parquet", "csv", "jsonl", "json")
READ = """
import hashlib, json, sys, time
from lmdelta.config import load_config
from lmdelta.sources.corpus import read_corpus
config = load_config(None, json.loads(sys.argv[1]))
started = time.perf_counter()
rows = read_corpus(config.corpus, {"a": "a", "b": "b"})
seconds = time.perf_counter() - started
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
digest = hashlib.sha256()
for row in rows:
    fields = (row.side, row.text, row.prompt_id, row.prompt, row.group, row.line)
    digest.update(json.dumps(fields).encode())
found = {"rows": len(rows), "seconds": round(seconds, 1), "peak_rss_mib": round(peak)}
print(json.dumps({**found, "sha256": digest.hexdigest()}))
"""


def long_files(parquet: Path) -> dict[str, Path]:
    """The wide corpus written again a row per answer, as CSV and as JSON lines (once)."""
    import pyarrow.parquet as pq

    paths = {"csv": parquet.with_suffix(".csv"), "jsonl": parquet.with_suffix(".jsonl")}
    if all(path.exists() for path in paths.values()):
        return paths
    table = pq.read_table(parquet).to_pydict()
    with open(paths["csv"], "w", newline="", encoding="utf-8") as out_csv, open(paths["jsonl"], "w") as out_jsonl:
        writer = csv.writer(out_csv)
        writer.writerow(["prompt_id", "prompt", "group", "side", "text"])
        for i, prompt_id in enumerate(table["prompt_id"]):
            for side in ("a", "b"):
                row = [prompt_id, table["prompt"][i], table["group"][i], side, table[f"answer_{side}"][i]]
                writer.writerow(row)
                out_jsonl.write(json.dumps(dict(zip(("prompt_id", "prompt", "group", "side", "text"), row))) + "\n")
    return paths


def json_array_file(jsonl: Path) -> Path:
    """The JSON-lines corpus written again as one JSON array (once)."""
    path = jsonl.with_suffix(".json")
    if not path.exists():
        with open(jsonl, encoding="utf-8") as lines, open(path, "w", encoding="utf-8") as out:
            out.write("[\n")
            for number, line in enumerate(lines):
                out.write((",\n" if number else "") + line.rstrip("\n"))
            out.write("\n]\n")
    return path


def read(path: Path, code: Path | None, wide: bool) -> dict[str, Any]:
    overrides = [f"corpus.path={path}"] + (["corpus.text_columns=[answer_a, answer_b]"] if wide else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-c", READ, json.dumps(overrides)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"status": f"failed: {done.stderr.strip().splitlines()[-1:]}"}
    return {"status": "complete", **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    args = parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    parquet = scratch / f"corpus-{args.texts}.parquet"
    if not parquet.exists():
        write_corpus(parquet, args.texts, 10, 0.05, 0.20, 0)
    files = {"parquet": parquet, **long_files(parquet)}
    if "json" in args.formats:
        files["json"] = json_array_file(files["jsonl"])
    codes: list[tuple[str, Path | None]] = [("lmdelta", None)]
    if args.baseline:
        codes.insert(0, (args.baseline, baseline_source(args.baseline, scratch)))
    results = []
    for kind in args.formats:
        for name, code in codes:
            entry = {"format": kind, "code": name, "file_mib": round(files[kind].stat().st_size / MIB)}
            entry.update(read(files[kind], code, wide=kind == "parquet"))
            results.append(entry)
            print(json.dumps(entry), flush=True)
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    out = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM",
        "command": " ".join(sys.argv),
        "texts": args.texts,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(table(results))


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| format | code | file MiB | seconds | peak RSS MiB | rows |", "|---|---|---:|---:|---:|---:|"]
    for r in results:
        cells = (
            r["format"],
            r["code"],
            r["file_mib"],
            r.get("seconds", "–"),
            r.get("peak_rss_mib", "–"),
            r.get("rows"),
        )
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200_000, help="texts (a + b) in the corpus")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--baseline", metavar="REV", help="also read with this git revision's code, first")
    parser.add_argument("--scratch", default="/tmp/corpus_read", help="the corpora (written once)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "corpus_read.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()

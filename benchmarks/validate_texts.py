"""Memory of judging the validation texts at scale: a baseline revision and lmdelta side by side.

What `validate` holds while its judges read the texts, for one comparison: `validate_all` end to end on a synthetic
aligned pair, P validation prompts with one answer per side (2P texts of 40-80 words, held as the run's answer
columns are, memory-mapped), H keyword hypotheses and the text properties in --properties (property judge), every
scope the whole set, the validate defaults otherwise. Side b mentions the ocean more often and writes longer
answers with more exclamation marks, so some hypotheses hold.

Each variant runs in a fresh subprocess on its own source tree (the baseline from `git archive REV`). The pair is
built first; then a thread samples the process's resident memory every --interval seconds while `validate_all` runs,
and the table gives the peak above the resident memory before it, with the wall time. Both variants must give the
same findings (SHA-256 of every finding's fields).

    .venv/bin/python benchmarks/validate_texts.py [--prompts 200000] [--hypotheses 100]
        [--properties words exclamation_marks readability] [--baseline 7f7f1e2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
from revisions import baseline_source

ROOT = Path(__file__).resolve().parents[1]
COMMON = "the a of and to in is it that for on with as was at by this be from or an are not but have".split()
OCEAN = ("ocean", "waves", "sea")


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def texts_of(prompts: int, seed: int = 0) -> list[tuple[str, str]]:
    """(a's answer, b's answer) per prompt: common words, and b longer, oceanic and exclaiming more often."""
    rng = np.random.default_rng(seed)
    words = np.array(COMMON + [f"w{k}" for k in range(2000)])
    out = []
    for _ in range(prompts):
        pair = []
        for side in ("a", "b"):
            n = int(rng.integers(40, 81)) + (8 if side == "b" else 0)
            picked = list(words[rng.integers(0, words.size, n)])
            if rng.random() < (0.2 if side == "b" else 0.05):
                picked[int(rng.integers(0, n))] = str(rng.choice(OCEAN))
            end = "!" if rng.random() < (0.3 if side == "b" else 0.1) else "."
            pair.append(" ".join(picked) + end)
        out.append((pair[0], pair[1]))
    return out


def child(prompts: int, hypotheses: int, properties: list[str], interval: float) -> dict:
    from lmdelta.config import ValidateConfig
    from lmdelta.pairdata import PairData
    from lmdelta.records import Hypothesis, Prompt, Sample
    from lmdelta.sampletable import SampleTable
    from lmdelta.validate.findings import validate_all

    answers = texts_of(prompts)
    rows = (
        Sample(f"p{i}", side, 0, text, 60, "stop", i, f"{side}{i}").to_dict()
        for i, pair in enumerate(answers)
        for side, text in zip("ab", pair)
    )
    samples = SampleTable.from_rows(rows, spill_bytes=0)  # mapped, as a large run's answer columns are
    del answers
    listed = [Prompt(f"p{i}", f"question {i}", "all", "validation") for i in range(prompts)]
    data = PairData(listed, samples, np.zeros((0, 2)), {p.id: p.group for p in listed})
    keywords = [(OCEAN[h % 3],) if h % 10 == 0 else (f"w{h}",) for h in range(hypotheses)]
    hyps = [
        Hypothesis(f"k{h}", "all", "b>a", f"word {h}", "keywords", "keyword", keywords=k, order=h)
        for h, k in enumerate(keywords)
    ]
    hyps += [
        Hypothesis(f"p{k}", "all", "b>a", name, "properties", "property", measure=name, order=hypotheses + k)
        for k, name in enumerate(properties)
    ]
    before = rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], rss_mib())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    start = time.perf_counter()
    found = validate_all(data, hyps, ValidateConfig(seed=0), 0.05)
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    peak[0] = max(peak[0], rss_mib())
    rows_json = json.dumps([f.to_dict() for f in found], sort_keys=True, default=str)
    return {
        "seconds": round(seconds, 1),
        "rss_before_mib": round(before),
        "peak_above_mib": round(peak[0] - before),
        "findings_sha256": hashlib.sha256(rows_json.encode()).hexdigest()[:16],
        "significant": sum(f.p_value is not None and f.p_value < 0.05 for f in found),
    }


def run_variant(src: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", "--prompts", str(args.prompts), "--hypotheses"]
    command += [str(args.hypotheses), "--interval", str(args.interval), "--properties", *args.properties]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(child(args.prompts, args.hypotheses, args.properties, args.interval)))
        return
    baseline = baseline_source(args.baseline, Path(args.scratch))
    variants = {f"baseline {args.baseline}": run_variant(baseline, args), "lmdelta": run_variant(ROOT / "src", args)}
    digests = {v["findings_sha256"] for v in variants.values()}
    result = {
        "date": date.today().isoformat(),
        "benchmark": "validate_texts",
        "validation_texts": 2 * args.prompts,
        "hypotheses": {"keyword": args.hypotheses, "property": args.properties},
        "same_findings": len(digests) == 1,
        "variants": variants,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        f"{result['validation_texts']:,} validation texts, {result['hypotheses']['keyword']} keyword and "
        f"{len(result['hypotheses']['property'])} property hypotheses; same findings: {result['same_findings']}",
        "",
        "| variant | peak above the start (MiB) | seconds |",
        "|---|---:|---:|",
    ]
    for name, v in result["variants"].items():
        lines.append(f"| {name} | {v['peak_above_mib']:,} | {v['seconds']} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=200_000, help="validation prompts (2 texts each)")
    parser.add_argument("--hypotheses", type=int, default=100, help="keyword hypotheses")
    parser.add_argument("--properties", nargs="*", default=["words", "exclamation_marks", "readability"])
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between RSS samples")
    parser.add_argument("--baseline", default="7f7f1e2")
    parser.add_argument("--scratch", default="/tmp/lmdelta-validate-texts")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "validate_texts.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()

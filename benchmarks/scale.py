"""How a corpus-mode run scales with the number of texts (issue 19, "scale"): seconds and peak RSS per stage.

For each size N in --sizes a deterministic synthetic aligned corpus is written (a wide Parquet file, one row per
prompt: prompt_id, prompt, group, answer_a, answer_b; N/2 prompts, so N texts). Each prompt belongs to one of
--topics topics (the `group` column); an answer is 40-80 words drawn from a shared vocabulary and its topic's own
words, so answer clusters follow topics. The planted difference is real and spread over every prompt and topic:
side b's answers mention the ocean ("ocean", "waves", "sea", ...) in --ocean-b of its answers, side a's in
--ocean-a (default 5 % against 20 %: 15 points more).

The pipeline then runs end to end in a subprocess, offline (no LLM role is configured by default; the run is
refused if the resolved config names one):

    lmdelta run --corpus FILE --text-columns answer_a answer_b --run-dir DIR \
        --set embed.model=fake:hashing --set group.response_clusters=K   (with lmdelta --progress lines)

K is --clusters (1000 by default), at most N/20. The parent polls /proc every --interval seconds for the RSS of
the run and all its descendants (summed VmRSS), attributes each sample to the stage that is running (from the
run's "<stage> running" log lines on stderr; "checks" is the time before the first stage, when the CLI already
parses the corpus) and reads each stage's seconds from the run's manifest.json. A run that passes --rss-limit-gib
or --time-limit-min is killed (its whole process group) and recorded as "did not finish (...)" with the stages
it got through; the next sizes are skipped, being larger.
Whether the planted difference was found is read from the run's hypotheses.jsonl (a validated hypothesis whose
description or keywords name an ocean word, in b's favour) and summary.json.

    .venv/bin/python benchmarks/scale.py                                   # 20,000 and 200,000 texts
    .venv/bin/python benchmarks/scale.py --sizes 200000 --time-limit-min 60   # 200k took ~36 min here (estimated)
    .venv/bin/python benchmarks/scale.py --sizes 20000 --out /tmp/scale/scale.json --scratch /tmp/scale

--until STAGE stops each run once STAGE is done (when the next stage starts) and records, besides the seconds and
peaks of the stages through it, the SHA-256 of each of their .jsonl outputs, so that two codes' outputs can be
compared: `--sizes 2000000 --until generate --baseline REV` measures reading the corpus (the checks, the prompts
stage and the generate stage's import) in a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from revisions import baseline_source

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MIB = 2**20
STAGES = ("prompts", "generate", "embed", "group", "propose", "validate", "decide", "confirm", "weights", "report")
OCEAN = ("ocean", "waves", "sea", "tide", "shore", "saltwater")
COMMON = (
    "the a an and or but so because when while if then this that these those it they we you I he she is are was "
    "were be been being have has had do does did can could should would may might will must not no yes very more "
    "most less least many much some any every each other another such only also just even still again often "
    "always never sometimes usually first second next last new old good bad great small large long short high "
    "low early late important different same possible likely simple clear real true general specific common "
    "people person time year day way thing part place case point group number fact idea question answer reason "
    "example result problem change need help work make take give find think know see look use try feel seem "
    "show tell ask keep start turn move play run live believe bring happen write provide sit stand lose pay "
    "meet include continue set learn lead understand watch follow stop create speak read allow add spend grow "
    "open walk win offer remember consider appear buy wait serve die send expect build stay fall cut reach"
).split()
TOPICS = {
    "cooking": "recipe oven flour butter sugar garlic onion pan simmer boil roast spice salt pepper dough bake "
    "sauce knife chop stir fry grill vegetable kitchen taste flavor",
    "finance": "money budget savings loan interest bank credit debt invest stock bond tax income expense "
    "retirement account mortgage inflation price market fund cash payment",
    "health": "doctor exercise sleep diet vitamin protein heart blood pressure muscle stress symptom treatment "
    "medicine patient nurse hospital fitness calorie immune injury therapy",
    "software": "code function variable compile debug server database query python loop array library "
    "framework test deploy bug api interface memory thread cache version",
    "history": "empire war king revolution century ancient treaty dynasty colony battle republic monarchy "
    "medieval archive civilization emperor rebellion parliament conquest era",
    "travel": "flight hotel passport luggage airport train ticket tourist museum city map guide journey "
    "border visa itinerary hostel suitcase destination route",
    "garden": "soil seed plant flower water sunlight compost leaf root prune weed tomato harvest fertilizer "
    "shovel bloom shrub mulch greenhouse grass",
    "music": "guitar piano melody rhythm chord song band concert note tempo drum singer lyric album "
    "orchestra harmony scale practice instrument studio",
    "sports": "team coach player game score goal match league season training ball field referee "
    "tournament champion stadium sprint defense offense",
    "science": "atom molecule energy experiment theory gravity cell evolution physics chemistry "
    "electron planet laboratory hypothesis data microscope particle reaction",
}


# --- the corpus ------------------------------------------------------------------------------------------------


def write_corpus(path: Path, n_texts: int, topics: int, ocean_a: float, ocean_b: float, seed: int) -> dict[str, Any]:
    """A wide Parquet corpus of n_texts // 2 prompts; returns what was planted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(TOPICS)[:topics]
    topic_words = [TOPICS[name].split() for name in names]
    vocab = np.array(COMMON + [w for words in topic_words for w in words] + list(OCEAN))
    common_ids = np.arange(len(COMMON))
    starts = np.cumsum([len(COMMON)] + [len(w) for w in topic_words])
    topic_ids = [np.arange(starts[i], starts[i + 1]) for i in range(len(names))]
    ocean_ids = np.arange(starts[-1], starts[-1] + len(OCEAN))
    rng = np.random.default_rng(seed)
    n_prompts = n_texts // 2
    prompt_topic = rng.integers(0, len(names), n_prompts)
    columns: dict[str, list[str]] = {"prompt_id": [], "prompt": [], "group": [], "answer_a": [], "answer_b": []}
    mentions = {"a": 0, "b": 0}
    chunk = 50_000
    for begin in range(0, n_prompts, chunk):
        end = min(n_prompts, begin + chunk)
        for i in range(begin, end):
            t = int(prompt_topic[i])
            focus = rng.choice(topic_ids[t], 3, replace=False)  # the prompt's own subject words
            columns["prompt_id"].append(f"p{i:07d}")
            columns["prompt"].append(f"Question {i} about {names[t]}: {' '.join(vocab[focus])}?")
            columns["group"].append(names[t])
            for side, share in (("a", ocean_a), ("b", ocean_b)):
                length = int(rng.integers(40, 81))
                from_topic = rng.random(length) < 0.35
                ids = np.where(
                    from_topic,
                    rng.choice(np.concatenate([topic_ids[t], focus, focus]), length),
                    rng.choice(common_ids, length),
                )
                if rng.random() < share:
                    mentions[side] += 1
                    where = rng.integers(0, length, 3)
                    ids[where] = rng.choice(ocean_ids, 3)
                columns[f"answer_{side}"].append(" ".join(vocab[ids]).capitalize() + ".")
    table = pa.table(columns)
    pq.write_table(table, path, compression="zstd")
    return {
        "prompts": n_prompts,
        "texts": 2 * n_prompts,
        "topics": names,
        "ocean_words": list(OCEAN),
        "ocean_share": {"a": mentions["a"] / n_prompts, "b": mentions["b"] / n_prompts},
        "file_mib": round(path.stat().st_size / MIB, 1),
    }


# --- watching the run ------------------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """pid and every process below it (through /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:  # gone
            continue
        for task in tasks:
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


STAGE_LINE = re.compile(r"\b(" + "|".join(STAGES) + r")\s+(running|complete in|done before)")


def lmdelta_command(corpus: Path, run_dir: Path, args: argparse.Namespace, clusters: int) -> list[str]:
    """The run's command line, with a fresh embedding cache beside the run."""
    cache = run_dir.with_name(run_dir.name + "-cache")
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    command = [
        str(Path(sys.executable).with_name("lmdelta")),
        "--progress",
        "lines",
        "run",
        "--corpus",
        str(corpus),
        "--text-columns",
        "answer_a",
        "answer_b",
        "--a-label",
        "a",
        "--b-label",
        "b",
        "--run-dir",
        str(run_dir),
        "--set",
        "embed.model=fake:hashing",
        "--set",
        f"group.response_clusters={clusters}",
        "--set",
        f"embed.cache_dir={cache}",
    ]
    for extra in args.set or []:
        command += ["--set", extra]
    if args.profile:
        prof = run_dir.parent / f"{run_dir.name}.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "lmdelta"] + command[1:]
    return command


def run_environment(args: argparse.Namespace, code: Path | None) -> dict[str, str]:
    """The run's environment: --threads BLAS threads, and another checkout's code first when `code` is given."""
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS=str(args.threads),
        OPENBLAS_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
    )
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def run_pipeline(
    corpus: Path, run_dir: Path, log_path: Path, args: argparse.Namespace, clusters: int, code: Path | None = None
) -> dict[str, Any]:
    """One run, with this checkout's lmdelta or (code) another's src folder first on PYTHONPATH; a fresh
    embedding cache beside the run, so no run reads vectors another computed."""
    command = lmdelta_command(corpus, run_dir, args, clusters)
    env = run_environment(args, code)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    # "checks": before the first stage (the CLI's config, model and corpus checks, which parse the corpus)
    stage, peaks, samples, peak = "checks", {}, [], 0.0
    failure = None
    offset = 0
    while proc.poll() is None:
        time.sleep(args.interval)
        with open(log_path, errors="replace") as handle:
            handle.seek(offset)
            new = handle.read()
            offset = handle.tell()
        for match in STAGE_LINE.finditer(new):
            if match.group(2) == "running":
                stage = match.group(1)
        if args.until and stage in STAGES and STAGES.index(stage) > STAGES.index(args.until):
            os.killpg(proc.pid, signal.SIGKILL)  # the stages asked for are done: the next one is not measured
            proc.wait()
            break
        mib = rss_mib(descendants(proc.pid))
        elapsed = time.perf_counter() - started
        peaks[stage] = max(peaks.get(stage, 0.0), mib)
        peak = max(peak, mib)
        if not samples or elapsed - samples[-1][0] >= 2.0:
            samples.append((round(elapsed, 1), stage, round(mib)))
        if mib > args.rss_limit_gib * 1024:
            failure = f"did not finish (RSS {mib / 1024:.1f} GiB > {args.rss_limit_gib} GiB in {stage})"
        elif elapsed > args.time_limit_min * 60:
            failure = f"did not finish (time > {args.time_limit_min} min in {stage})"
        if failure:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
    wall = time.perf_counter() - started
    if args.until and failure is None and stage != args.until and stage in STAGES:
        return _until_result(command, run_dir, wall, peak, peaks, samples, args.until)
    if failure is None and proc.returncode != 0:
        tail = Path(log_path).read_text(errors="replace")[-2000:]
        failure = f"failed (exit {proc.returncode}): {tail.strip().splitlines()[-1] if tail.strip() else ''}"
    manifest = read_json(run_dir / "manifest.json") or {}
    seconds = {
        name: record.get("seconds")
        for name, record in (manifest.get("stages") or {}).items()
        if isinstance(record, dict) and record.get("status") == "complete"
    }
    return {
        "command": command,
        "status": failure or "complete",
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak),
        "stages": {
            name: {"seconds": seconds.get(name), "peak_rss_mib": round(peaks[name]) if name in peaks else None}
            for name in ("checks",) + STAGES
            if name in peaks or name in seconds
        },
        "rss_timeline": samples,
    }


def _until_result(
    command: list[str],
    run_dir: Path,
    wall: float,
    peak: float,
    peaks: dict[str, float],
    samples: list[tuple[float, str, int]],
    until: str,
) -> dict[str, Any]:
    """A run stopped once the stages through --until were done: their seconds and peaks, and a digest of each of
    their output files (to compare two codes' outputs)."""
    manifest = read_json(run_dir / "manifest.json") or {}
    names = ("checks",) + STAGES[: STAGES.index(until) + 1]
    stages = {}
    for name in names:
        record = (manifest.get("stages") or {}).get(name) or {}
        seconds = record.get("seconds") if record.get("status") == "complete" else None
        stages[name] = {"seconds": seconds, "peak_rss_mib": round(peaks[name]) if name in peaks else None}
    outputs = {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for name in names[1:]
        for path in sorted((run_dir / "stages" / name).glob("*.jsonl"))
    }
    return {
        "command": command,
        "status": f"complete through {until}",
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak),
        "stages": stages,
        "outputs": outputs,
        "rss_timeline": samples,
    }


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def planted_found(run_dir: Path) -> dict[str, Any]:
    """Validated hypotheses naming an ocean word, and the run's summary."""
    hits, validated = [], 0
    path = run_dir / "hypotheses.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            decision = row.get("decision") or {}
            ok = bool(row.get("validated", decision.get("validated") if isinstance(decision, dict) else False))
            validated += ok
            text = json.dumps(
                {k: row.get(k) for k in ("description", "keywords", "label", "hypothesis", "claim")}
            ).lower()
            if ok and any(re.search(rf"\b{w}\b", text) for w in OCEAN):
                hits.append({k: row.get(k) for k in ("description", "direction", "p_value", "effect") if k in row})
    return {
        "ocean_validated": bool(hits),
        "ocean_findings": hits[:5],
        "validated": validated,
        "summary": read_json(run_dir / "summary.json"),
    }


SAME = ("hypotheses.jsonl", "stages/embed/samples.npy", "stages/embed/prompts.npy", "stages/decide/decisions.jsonl")


def same_outputs(run_dir: Path, single: Path) -> dict[str, bool]:
    """Whether the Ray run wrote byte-identical files to the single-process run's."""
    return {name: (run_dir / name).read_bytes() == (single / name).read_bytes() for name in SAME}


# --- main ------------------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    variants: list[tuple[str, Path | None, float, list[str]]] = [("lmdelta", None, args.time_limit_min, [])]
    if args.baseline:
        variants.insert(0, ("baseline", baseline_source(args.baseline, scratch), args.baseline_time_limit_min, []))
    if args.ray:
        variants.append(("lmdelta-ray", None, args.time_limit_min, ["execution.engine=ray"]))
    stopped: dict[str, str] = {}
    for n in args.sizes:
        corpus, planted, write_s = corpus_for(n, scratch, args)
        clusters = max(2, min(args.clusters, n // 20))
        for variant, code, limit, sets in variants:
            entry = {"texts": n, "code": variant, "response_clusters": clusters, "corpus": planted}
            if variant in stopped:
                results.append({**entry, "status": f"skipped ({stopped[variant]})"})
                continue
            run_dir = scratch / f"run-{variant}-{n}"
            if run_dir.exists() and not args.resume:
                subprocess.run(["rm", "-rf", str(run_dir)], check=True)
            print(
                f"\n{n:,} texts, {variant}: corpus {planted['file_mib']} MiB ({write_s:.0f} s); K = {clusters}",
                flush=True,
            )
            timed = argparse.Namespace(**{**vars(args), "time_limit_min": limit, "set": (args.set or []) + sets})
            entry.update(run_pipeline(corpus, run_dir, scratch / f"run-{variant}-{n}.log", timed, clusters, code))
            if args.until:
                print(table([entry]), flush=True)
                results.append(entry)
                write_out(args, results)
                continue
            entry["planted"] = planted_found(run_dir) if entry["status"] == "complete" else None
            if variant == "lmdelta-ray" and entry["status"] == "complete":
                entry["same_as_single_process"] = same_outputs(run_dir, scratch / f"run-lmdelta-{n}")
            results.append(entry)
            print(table([entry]), flush=True)
            if entry["status"] != "complete":
                stopped[variant] = f"{n:,} texts {entry['status']}"
            else:
                results += reruns(corpus, run_dir, scratch, timed, clusters, code, entry)
            write_out(args, results)
    print("\n" + table(results))
    if args.rerun:
        print("\n" + rerun_table(results))
    write_out(args, results)


def reruns(
    corpus: Path,
    run_dir: Path,
    scratch: Path,
    args: argparse.Namespace,
    clusters: int,
    code: Path | None,
    entry: dict[str, Any],
) -> list[dict[str, Any]]:
    """The finished run run again (--rerun), as a user re-runs a run: "" the same command, KEY=VALUE with that
    setting changed (the changes add up, in order). Only the stages a change reaches run; the rest of the wall
    time and the peak RSS is what planning costs (the checks)."""
    out, changes = [], list(args.set or [])
    for change in args.rerun or []:
        changes += [change] if change else []
        again = argparse.Namespace(**{**vars(args), "set": list(changes)})
        log_path = scratch / f"{run_dir.name}-rerun.log"
        result = run_pipeline(corpus, run_dir, log_path, again, clusters, code)
        lines = STAGE_LINE.finditer(log_path.read_text(errors="replace"))
        ran = [match.group(1) for match in lines if match.group(2) == "running"]
        found = {key: result[key] for key in ("status", "wall_s", "peak_rss_mib")}
        out.append({"texts": entry["texts"], "code": entry["code"], "rerun": change or "same", **found, "ran": ran})
        print(f"  re-run ({change or 'same'}): {found} ran {ran}", flush=True)
    return out


def corpus_for(n: int, scratch: Path, args: argparse.Namespace) -> tuple[Path, dict[str, Any], float]:
    """The synthetic corpus of n texts (written once, reused while its description file is there)."""
    corpus = scratch / f"corpus-{n}.parquet"
    meta_path = corpus.with_suffix(".json")
    t0 = time.perf_counter()
    if corpus.exists() and meta_path.exists():
        planted = json.loads(meta_path.read_text())
    else:
        planted = write_corpus(corpus, n, args.topics, args.ocean_a, args.ocean_b, args.seed)
        meta_path.write_text(json.dumps(planted))
    return corpus, planted, time.perf_counter() - t0


def write_out(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    out = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM, "
        f"Python {platform.python_version()}",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def table(results: list[dict[str, Any]]) -> str:
    head = "| texts | code | status | total s | peak MiB | " + " | ".join(STAGES) + " | ocean found |"
    lines = [head, "|" + "---|" * (len(STAGES) + 6)]
    for r in (r for r in results if "rerun" not in r):
        stages = r.get("stages", {})
        cells = []
        for name in STAGES:
            s = stages.get(name) or {}
            sec, mib = s.get("seconds"), s.get("peak_rss_mib")
            cells.append("" if sec is None and mib is None else f"{sec if sec is not None else '–'} s / {mib} MiB")
        planted = r.get("planted") or {}
        lines.append(
            f"| {r['texts']:,} | {r.get('code', 'lmdelta')} | {r.get('status')} | {r.get('wall_s', '')} | "
            + f"{r.get('peak_rss_mib', '')} | "
            + " | ".join(cells)
            + f" | {planted.get('ocean_validated', '–')} |"
        )
    return "\n".join(lines)


def rerun_table(results: list[dict[str, Any]]) -> str:
    lines = ["| texts | code | re-run | status | wall s | peak MiB | stages run |", "|---|---|---|---|---:|---:|---|"]
    for r in (r for r in results if "rerun" in r):
        cells = (f"{r['texts']:,}", r["code"], r["rerun"], r["status"], r["wall_s"], r["peak_rss_mib"])
        lines.append("| " + " | ".join(map(str, cells)) + f" | {', '.join(r['ran']) or 'none'} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000], help="texts (a + b) per run")
    parser.add_argument("--clusters", type=int, default=1000, help="group.response_clusters (at most N/20)")
    parser.add_argument("--topics", type=int, default=10, choices=range(1, len(TOPICS) + 1))
    parser.add_argument("--ocean-a", type=float, default=0.05, help="share of a's answers mentioning the ocean")
    parser.add_argument("--ocean-b", type=float, default=0.20, help="share of b's answers mentioning the ocean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-limit-gib", type=float, default=12.0, help="kill a run whose RSS passes this")
    parser.add_argument("--time-limit-min", type=float, default=30.0, help="kill a run that takes longer")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between RSS samples")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads of the run")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="more config overrides for every run")
    parser.add_argument("--profile", action="store_true", help="run under cProfile (RUN_DIR.prof beside the run)")
    parser.add_argument("--resume", action="store_true", help="keep an existing run directory (resumes it)")
    parser.add_argument("--scratch", default="/tmp/scale", help="corpora and run directories")
    parser.add_argument("--ray", action="store_true", help="also run each size with execution.engine=ray (local)")
    parser.add_argument(
        "--rerun",
        nargs="+",
        metavar="KEY=VALUE",
        help='after each complete run, run it again: "" unchanged, KEY=VALUE with that setting changed (adding up)',
    )
    parser.add_argument("--baseline", metavar="REV", help="also run this git revision's code first, side by side")
    parser.add_argument("--baseline-time-limit-min", type=float, default=30.0, help="the baseline's time limit")
    parser.add_argument(
        "--until",
        choices=STAGES,
        help="stop each run once this stage is done (the next one starts); record its stages and output digests",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""Generation on Ray workers: a batch an item (before) against consecutive batches an item (now).

The generate stage's Ray path, as `generate._generate_side` drives it: the side's fixed partition of batches
(`generate.batch_size` requests each, by prompt length) goes to a pool of Ray actors, each holding a replica of the
model. Before, each item was one batch, which a transformers replica decoded as a continuous batch of its own, so
its rows stood idle once their answers ended and the batch's longest answer had not. Now an item is up to
`generate.SHARD_BATCHES` consecutive batches, decoded as one continuous batch (a finished answer's row takes the
item's next request). The same requests also go through this process's decoder (one continuous batch for the
side), for reference. Answers are compared. Ray's wall time includes what a stage's call pays too: starting the
actor pool and loading the model in it (about 5 s here); Ray itself is started once, before.

    .venv/bin/python benchmarks/ray_generation.py [--prompts 360] [--samples 2] [--workers 1] [--cpus-per-worker 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from lmdelta import execution  # noqa: E402
from lmdelta.backends.embedded import cache_root  # noqa: E402
from lmdelta.backends.factory import build_generator, build_prompt_lengths, generator_identity  # noqa: E402
from lmdelta.backends.protocols import GenerationRequest, SamplingSettings  # noqa: E402
from lmdelta.config import ExecutionConfig, ModelSpec  # noqa: E402
from lmdelta.sources import load_bank  # noqa: E402
from lmdelta.stages import generate  # noqa: E402


def requests(n_prompts: int, samples: int) -> list[GenerationRequest]:
    texts = [p.text for p in load_bank("builtin:everyday")][:n_prompts]
    return [
        GenerationRequest(f"p{i}-{k}", f"p{i}", text, k, 1000 * i + k)
        for i, text in enumerate(texts)
        for k in range(samples)
    ]


def on_ray(args: argparse.Namespace, task: generate.GenerateTask, todo: list, per_item: int) -> tuple[float, dict]:
    """Every request answered on the pool, with items of at most `per_item` batches; (seconds, key → answer)."""
    section = ExecutionConfig(engine="ray", workers=args.workers, cpus_per_worker=args.cpus_per_worker)
    saved = generate.SHARD_BATCHES
    generate.SHARD_BATCHES = per_item
    try:
        started = time.perf_counter()
        done = list(execution.run_shaped(section, task, lambda workers: generate.shards(todo, workers), "generate"))
        seconds = time.perf_counter() - started
    finally:
        generate.SHARD_BATCHES = saved
    answers = {r.key: a for item, results in done for r, a in zip((r for b in item for r in b), results)}
    return seconds, answers | {"_items": [len(item) for item, _ in done]}


def main() -> None:
    args = parse_args()
    import ray

    spec = ModelSpec(model=args.model, dtype=args.dtype)
    cache = cache_root()
    identity = generator_identity(spec, "cpu", cache)
    sampling = SamplingSettings(args.max_new_tokens, 1.0, 1.0)
    wanted = requests(args.prompts, args.samples)
    todo = generate.batches(build_prompt_lengths(spec, identity, cache), wanted, args.batch_size)
    task = generate.GenerateTask(spec, identity, "cpu", cache, sampling, args.batch_size)
    results: dict[str, Any] = {}
    ray.init(num_cpus=args.workers * args.cpus_per_worker, include_dashboard=False, log_to_driver=False)
    try:
        for name, per_item in (("ray, a batch an item (before)", 1), ("ray, consecutive batches an item", 8)):
            seconds, answers = on_ray(args, task, todo, per_item)
            results[name] = {"seconds": round(seconds, 1), "items": answers.pop("_items"), "answers": answers}
    finally:
        ray.shutdown()
    generator = build_generator(spec, identity, "cpu", cache)
    started = time.perf_counter()
    local = generate.answer_all(generator, wanted, sampling, args.batch_size)
    results["this process, one continuous batch"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "answers": {r.key: a for r, a in zip(wanted, local)},
    }
    report(args, results, wanted)


def report(args: argparse.Namespace, results: dict[str, Any], wanted: list[GenerationRequest]) -> None:
    reference = results["ray, a batch an item (before)"]["answers"]
    rows = {}
    for name, found in results.items():
        answers = found.pop("answers")
        tokens = sum(a.n_tokens for a in answers.values())
        same = sum(answers[r.key].text == reference[r.key].text for r in wanted) / len(wanted)
        rows[name] = {**found, "tokens": tokens, "tokens_per_second": round(tokens / found["seconds"], 1)}
        rows[name]["same_answers_as_before"] = round(same, 3)
    base = rows["ray, a batch an item (before)"]["tokens_per_second"]
    print("| variant | items (batches each) | s | tokens | tok/s | vs before | same answers |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        items = row.get("items")
        shape = f"{len(items)} ({max(items)} at most)" if items else "–"
        speed = row["tokens_per_second"]
        print(
            f"| {name} | {shape} | {row['seconds']} | {row['tokens']:,} | {speed} | {speed / base:.2f}× | "
            f"{row['same_answers_as_before']} |"
        )
    out = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--prompts", type=int, default=360)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus-per-worker", type=float, default=2.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ray_generation.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""A local LLM judge in this process against the same judge on Ray workers (`execution.engine: ray`).

The same presence-judge calls (`llm.prompts.presence_request`: one property, --texts texts, 2 tokens and
the first token's log-probabilities) go through the LLM layer's ChatClient twice, each with a cold response
cache of its own: once to `LocalChat` (one model in this process, batches of --max-batch), once to `RayChat`
(one replica per Ray worker, --workers workers of --cpus-per-worker CPUs, on a local Ray started for it).
Wall time includes loading the model(s) and, for Ray, starting Ray; the replies are compared.

    .venv/bin/python benchmarks/ray_llm.py [--texts 256] [--workers 2] [--model embedded:smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from lmdelta import execution
from lmdelta.config import ExecutionConfig
from lmdelta.llm import prompts
from lmdelta.llm.cache import ResponseCache
from lmdelta.llm.client import ChatClient
from lmdelta.llm.limiter import ConcurrencyLimiter
from lmdelta.llm.providers.local_chat import LocalChat
from lmdelta.llm.providers.ray_chat import RayChat

PROPERTY = "mentions the sea, the ocean or the shore"
TOPICS = ["tides", "pasta", "sleep", "a job interview", "autumn leaves", "a hiking trip", "sailing", "coffee"]


def texts(n: int) -> list[str]:
    """Short answers of several lengths, an eighth of them about the sea."""
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        extra = " The waves on the shore were loud." if i % 8 == 6 else ""
        out.append(f"Answer {i}: here is what I know about {topic}. " * (1 + i % 3) + extra)
    return out


def judged(provider: Any, requests: list, concurrency: int, cache_dir: Path) -> tuple[list, float]:
    client = ChatClient(
        provider, cache=ResponseCache(cache_dir / "llm.sqlite"), limiter=ConcurrencyLimiter(concurrency, "bench")
    )

    async def all_of_them():
        try:
            return await asyncio.gather(*(client.ask_parsed(r, str) for r in requests))
        finally:
            await provider.aclose()

    started = time.perf_counter()
    answers = asyncio.run(all_of_them())
    return [(result.text, result.ok) for result, _ in answers], time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    requests = [prompts.presence_request(PROPERTY, text) for text in texts(args.texts)]
    options = {"dtype": args.dtype, "max_batch": args.max_batch}
    section = ExecutionConfig(engine="ray", workers=args.workers, cpus_per_worker=args.cpus_per_worker)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        local = LocalChat(args.model, **options)
        local.load()
        local_load = time.perf_counter() - started
        local_replies, local_seconds = judged(local, requests, 2 * args.max_batch, Path(scratch) / "local")
        started = time.perf_counter()
        on_ray = RayChat(args.model, options, section)
        ray_start = time.perf_counter() - started
        try:
            ray_replies, ray_seconds = judged(on_ray, requests, on_ray.concurrency, Path(scratch) / "ray")
        finally:
            execution.release()
    same = sum(a == b for a, b in zip(local_replies, ray_replies))
    return {
        "local": {
            "load_s": round(local_load, 2),
            "judge_s": round(local_seconds, 2),
            "calls_per_s": _rate(args, local_seconds),
        },
        "ray": {
            "start_s": round(ray_start, 2),
            "judge_s_including_worker_loads": round(ray_seconds, 2),
            "calls_per_s": _rate(args, ray_seconds),
            "workers": args.workers,
            "cpus_per_worker": args.cpus_per_worker,
        },
        "same_replies": f"{same} of {len(requests)}",
        "ok": {"local": sum(ok for _, ok in local_replies), "ray": sum(ok for _, ok in ray_replies)},
    }


def _rate(args: argparse.Namespace, seconds: float) -> float:
    return round(args.texts / seconds, 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/results/ray_llm.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    result = {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        **run(args),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Generate-stage throughput: lmdelta's generator against the reference's way of decoding.

Baseline (how the reference decodes): fixed-size batches in input order, float32, no length
bucketing, transformers' own sampling. lmdelta: batches bucketed by prompt length, dtype `auto`
(bfloat16 where the CPU has native bf16, else float32), per-item seeded sampling.
Both run on the same model, prompts and settings, in one process, one after the other.

    .venv/bin/python benchmarks/generation.py [--prompts 128] [--batch-size 32] [--max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    args = parse_args()
    import torch

    from lmdelta.backends.device import resolve_dtype
    from lmdelta.backends.embedded import cache_root
    from lmdelta.backends.factory import build_generator, generator_identity
    from lmdelta.config import ModelSpec
    from lmdelta.sources import load_bank
    from lmdelta.stages.generate import batches, item_seed

    torch.manual_seed(0)
    prompts = [p.text for p in load_bank("builtin:everyday")][:: max(1, 360 // args.prompts)][: args.prompts]
    cache = cache_root()
    results = {}
    for name, dtype in (("baseline", "float32"), ("lmdelta", "auto")):
        spec = ModelSpec(model=args.model, dtype=dtype)
        generator = build_generator(spec, generator_identity(spec, "cpu", cache), "cpu", cache)
        requests = make_requests(prompts, item_seed)
        run = naive_run if name == "baseline" else bucketed_run
        warm = requests[:2]
        run(generator, warm, args, batches)
        start = time.perf_counter()
        tokens, padding = run(generator, requests, args, batches)
        seconds = time.perf_counter() - start
        results[name] = {
            "dtype": generator.identity["dtype"],
            "seconds": round(seconds, 2),
            "new_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 1),
            "padding_share": round(padding, 3),
        }
        generator.close()
    results["speedup"] = round(results["lmdelta"]["tokens_per_second"] / results["baseline"]["tokens_per_second"], 2)
    report(results, args, resolve_dtype("auto", "cpu"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generation.json")
    return parser.parse_args()


def make_requests(prompts, item_seed):
    from lmdelta.backends.protocols import GenerationRequest

    return [
        GenerationRequest(key=str(i), prompt_id=str(i), prompt=p, index=0, seed=item_seed(0, "a", str(i), 0))
        for i, p in enumerate(prompts)
    ]


def naive_run(generator, requests, args, _batches) -> tuple[int, float]:
    """Fixed batches in input order, transformers' sampling (do_sample=True)."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        eos_token_id=generator.eos_ids,
        pad_token_id=generator.pad_id,
    )
    tokens = pad = cells = 0
    for start in range(0, len(requests), args.batch_size):
        encoded = [generator.encode(r.prompt) for r in requests[start : start + args.batch_size]]
        ids, mask = generator._pad(encoded)
        with torch.inference_mode():
            out = generator.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        tokens += sum(generator._finish(row, args.max_new_tokens).n_tokens for row in out[:, ids.shape[1] :].tolist())
        pad, cells = pad + int((mask == 0).sum()), cells + mask.numel()
    return tokens, pad / cells


def bucketed_run(generator, requests, args, batches) -> tuple[int, float]:
    """lmdelta's generate stage: length-bucketed fixed partition, seeded per-item sampling."""
    from lmdelta.backends.protocols import SamplingSettings

    settings = SamplingSettings(args.max_new_tokens, 1.0, 1.0)
    tokens = pad = cells = 0
    for batch in batches(generator, requests, args.batch_size):
        lengths = [generator.prompt_length(r) for r in batch]
        pad, cells = pad + sum(max(lengths) - n for n in lengths), cells + max(lengths) * len(lengths)
        tokens += sum(g.n_tokens for g in generator.generate(batch, settings))
    return tokens, pad / cells


def report(results: dict, args: argparse.Namespace, auto_dtype: str) -> None:
    import torch

    record = {
        "benchmark": "generation",
        "model": args.model,
        "prompts": args.prompts,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "auto_dtype": auto_dtype,
            "torch": torch.__version__,
        },
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("| variant | dtype | new tokens | seconds | tokens/s | padding share |\n|---|---|---|---|---|---|")
    for name in ("baseline", "lmdelta"):
        r = results[name]
        print(
            f"| {name} | {r['dtype']} | {r['new_tokens']} | {r['seconds']} | "
            f"{r['tokens_per_second']} | {r['padding_share']} |"
        )
    print(f"\nspeed-up: {results['speedup']}x  (written to {args.out})")


if __name__ == "__main__":
    main()

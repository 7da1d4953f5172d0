"""Generate-stage throughput: lmdelta's decoder against the reference's way of decoding.

Three decoders on the same model, prompts and settings, in one process, one after the other:
- **baseline**, how the reference decodes: fixed-size batches in input order (a prompt's k samples spread
  round-robin over the stream, as the reference assigns them), float32, no length bucketing, transformers'
  own sampling;
- **batched**, lmdelta's previous decoder: a fixed partition bucketed by prompt length, transformers'
  generate() with per-item seeded sampling, dtype `auto`;
- **continuous**, lmdelta's generate stage now: continuous batching with `--rows` rows (a finished answer's
  row takes the next request; `auto`, lmdelta's default, is 128 on a CPU), each prompt prefilled once for its k
  samples, the prefix every prompt shares prefilled once, keys and values in preallocated buffers, the same
  seeded sampling.
`batched` and `continuous` draw the same seeded samples, so their answers should agree; the share that
does is reported.

    .venv/bin/python benchmarks/generation.py [--prompts 128] [--samples 1] [--batch-size 32] [--rows auto]
        [--max-new-tokens 48] [--dtype auto] [--repeats 2] [--device cpu|cuda]
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

VARIANTS = ("baseline", "batched", "continuous")


def main() -> None:
    args = parse_args()
    import torch

    from lmdelta.backends.device import resolve_dtype
    from lmdelta.backends.embedded import cache_root
    from lmdelta.backends.factory import build_generator, generator_identity
    from lmdelta.config import ModelSpec
    from lmdelta.sources import load_bank

    torch.manual_seed(0)
    prompts = [p.text for p in load_bank("builtin:everyday")][:: max(1, 360 // args.prompts)][: args.prompts]
    cache = cache_root()
    requests = make_requests(prompts, args.samples)
    generators = {}
    for name in VARIANTS:
        spec = ModelSpec(model=args.model, dtype="float32" if name == "baseline" else args.dtype)
        generators[name] = build_generator(spec, generator_identity(spec, args.device, cache), args.device, cache)
        RUNS[name](generators[name], requests[:2], args)  # warm-up
    results, answers = {}, {}
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits every variant
        for name in VARIANTS:
            start = time.perf_counter()
            tokens, padding, answers[name] = RUNS[name](generators[name], requests, args)
            seconds = time.perf_counter() - start
            if name not in results or seconds < results[name]["seconds"]:
                results[name] = {
                    "dtype": generators[name].identity["dtype"],
                    "seconds": round(seconds, 2),
                    "new_tokens": tokens,
                    "tokens_per_second": round(tokens / seconds, 1),
                    "padding_share": None if padding is None else round(padding, 3),
                }
    for name in VARIANTS[1:]:
        results[name]["speedup"] = round(
            results[name]["tokens_per_second"] / results["baseline"]["tokens_per_second"], 2
        )
    same = sum(answers["batched"][key] == text for key, text in answers["continuous"].items())
    results["continuous"]["same_answers_as_batched"] = round(same / len(answers["continuous"]), 3)
    report(results, args, resolve_dtype("auto", args.device), auto_rows(generators["continuous"].model, args))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--samples", type=int, default=1, help="answers per prompt (k)")
    parser.add_argument("--batch-size", type=int, default=32, help="baseline's and batched's (the reference's: 32)")
    parser.add_argument("--rows", default="auto", help="continuous's rows: a number, or auto (generate.batch_size)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")
    parser.add_argument("--dtype", default="auto", help="lmdelta's dtype (the baseline's is float32)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant, the fastest reported")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: results/generation-k{samples}-t{tokens}-{dtype}-b{batch}.json"
    )
    return parser.parse_args()


def make_requests(prompts, samples):
    """Sample j of prompt i; in the reference's order: request r asks prompt r mod P (round-robin)."""
    from lmdelta.backends.protocols import GenerationRequest
    from lmdelta.stages.generate import item_seed

    return [
        GenerationRequest(
            key=f"{i}-{j}", prompt_id=str(i), prompt=prompts[i], index=j, seed=item_seed(0, "a", str(i), j)
        )
        for j in range(samples)
        for i in range(len(prompts))
    ]


def naive_run(generator, requests, args):
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
    texts = {}
    for start in range(0, len(requests), args.batch_size):
        batch = requests[start : start + args.batch_size]
        ids, mask = generator._pad([generator.encode(r.prompt) for r in batch])
        with torch.inference_mode():
            out = generator.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        for r, row in zip(batch, out[:, ids.shape[1] :].tolist()):
            answer = generator._finish(row, args.max_new_tokens)
            tokens, texts[r.key] = tokens + answer.n_tokens, answer.text
        pad, cells = pad + int((mask == 0).sum()), cells + mask.numel()
    return tokens, pad / cells, texts


def batched_run(generator, requests, args):
    """lmdelta's previous decoder: length-bucketed fixed partition, generate() with seeded sampling."""
    from lmdelta.stages.generate import batches

    generator.continuous = False
    tokens = pad = cells = 0
    texts = {}
    for batch in batches(generator, requests, args.batch_size):
        lengths = [generator.prompt_length(r) for r in batch]
        pad, cells = pad + sum(max(lengths) - n for n in lengths), cells + max(lengths) * len(lengths)
        for r, answer in zip(batch, generator.generate(batch, settings(args))):
            tokens, texts[r.key] = tokens + answer.n_tokens, answer.text
    return tokens, pad / cells, texts


def continuous_run(generator, requests, args):
    """The generate stage now: all requests in length order through one continuous batch."""
    from lmdelta.stages.generate import ordered

    tokens, texts = 0, {}
    rows = None if args.rows == "auto" else int(args.rows)
    for batch, answers in generator.stream(ordered(generator, requests), settings(args), rows):
        for r, answer in zip(batch, answers):
            tokens, texts[r.key] = tokens + answer.n_tokens, answer.text
    return tokens, None, texts


def settings(args):
    from lmdelta.backends.protocols import SamplingSettings

    return SamplingSettings(args.max_new_tokens, 1.0, 1.0)


RUNS = {"baseline": naive_run, "batched": batched_run, "continuous": continuous_run}


def auto_rows(model, args: argparse.Namespace) -> int | None:
    """The rows `auto` gives the continuous decoder here, for prompts of up to 128 tokens (SmolLM2's keys and values
    take 45 KiB a row and column in float32, so 128 rows fit the 2 GiB budget up to ~360 columns)."""
    if args.rows != "auto":
        return None
    from lmdelta.backends.generators import continuous

    return continuous.auto_rows(model, 128 + args.max_new_tokens)


def report(results: dict, args: argparse.Namespace, auto_dtype: str, rows: int | None) -> None:
    import torch

    record = {
        "benchmark": "generation",
        "model": args.model,
        "prompts": args.prompts,
        "samples_per_prompt": args.samples,
        "batch_size": args.batch_size,
        "rows": args.rows,
        "auto_rows": rows,
        "max_new_tokens": args.max_new_tokens,
        "dtype": args.dtype,
        "repeats": args.repeats,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "auto_dtype": auto_dtype,
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        },
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    where = "" if args.device == "cpu" else f"-{args.device}"
    rows = "" if args.rows == "auto" else f"-r{args.rows}"
    name = f"generation-k{args.samples}-t{args.max_new_tokens}-{args.dtype}-b{args.batch_size}{rows}{where}.json"
    out = args.out or Path(__file__).parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print("| variant | dtype | new tokens | seconds | tokens/s | speed-up | padding share |")
    print("|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        r = results[name]
        print(
            f"| {name} | {r['dtype']} | {r['new_tokens']} | {r['seconds']} | "
            f"{r['tokens_per_second']} | {r.get('speedup', 1.0)} | {r['padding_share']} |"
        )
    print(f"\nsame answers as batched: {results['continuous']['same_answers_as_batched']}  (written to {out})")


if __name__ == "__main__":
    main()

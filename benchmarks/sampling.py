"""Per-row seeded sampling on a GPU: the draw that copied each row's distribution to the CPU, against the
draw that keeps it on the device (only the rows' uniforms travel), inside lmdelta's continuous decoder.

One process, one model, the same prompts; variants one after the other, each after a warm-up:
- **baseline-fp32**: how the reference decodes (`benchmarks/generation.py`'s baseline: fixed batches,
  transformers' own sampling), float32;
- **continuous-bf16-olddraw**: the continuous decoder with the previous draw (full-vocabulary cumulative
  sums copied to the CPU every step, normalized and searched there), bfloat16;
- **continuous-bf16-newdraw** and **continuous-fp32-newdraw**: the draw now, bfloat16 and float32.
The model has SmolLM2-135M's shape (30 layers, 576 wide, 49,152-token vocabulary) with random weights, so
it runs on any machine without the embedded GGUF; random weights almost never end an answer early, so every
answer runs to `max_new_tokens` and the decoder's refills play no part.

    python benchmarks/sampling.py --device cuda [--prompts 128] [--tokens 48 128] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "tests")]


def main() -> None:
    args = parse_args()
    import generation as bench
    import torch

    from lmdelta.backends.generators import continuous
    from lmdelta.sources import load_bank

    folder = smollm2_shaped(args.scratch)
    prompts = [p.text for p in load_bank("builtin:everyday")][::2][: args.prompts]
    requests = bench.make_requests(prompts, 1)
    models = {dtype: generator(folder, dtype, args) for dtype in ("float32", "bfloat16")}
    variants = {
        "baseline-fp32": (bench.naive_run, "float32", None),
        "continuous-bf16-olddraw": (bench.continuous_run, "bfloat16", old_draw),
        "continuous-bf16-newdraw": (bench.continuous_run, "bfloat16", continuous.draw),
        "continuous-fp32-newdraw": (bench.continuous_run, "float32", continuous.draw),
    }
    new_draw, results = continuous.draw, {}
    for tokens in args.tokens:
        options = SimpleNamespace(batch_size=args.batch_size, max_new_tokens=tokens)
        for name, (run, dtype, draw) in variants.items():
            continuous.draw = draw or new_draw
            run(models[dtype], requests[:2], options)  # warm-up
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            made, _, _ = run(models[dtype], requests, options)
            seconds = time.perf_counter() - start
            results[f"{name}-t{tokens}"] = {
                "seconds": round(seconds, 2),
                "tokens": made,
                "tok_s": round(made / seconds, 1),
            }
            print(name, tokens, results[f"{name}-t{tokens}"], flush=True)
    continuous.draw = new_draw
    record = {"device": device_name(args.device), "torch": torch.__version__, "platform": platform.platform()}
    args.out.write_text(
        json.dumps({**record, "prompts": args.prompts, "batch_size": args.batch_size, "results": results}, indent=1)
        + "\n"
    )


def smollm2_shaped(scratch: Path) -> Path:
    """A random-init Llama with SmolLM2-135M's configuration, with the tests' small tokenizer."""
    import torch
    from conftest import build_tiny_model
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = build_tiny_model(scratch / "smollm2-shaped")
    config = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def generator(folder: Path, dtype: str, args: argparse.Namespace):
    from lmdelta.backends.factory import build_generator, generator_identity
    from lmdelta.config import ModelSpec

    spec = ModelSpec(model=str(folder), dtype=dtype)
    cache = args.scratch / "cache"
    return build_generator(spec, generator_identity(spec, args.device, cache), args.device, cache)


def old_draw(scores, generators, settings):
    """The draw before 2026-12-04: each row's cumulative sums copied to the CPU, normalized and searched there."""
    import torch

    from lmdelta.backends.generators.sampling import _nucleus

    if settings.temperature == 0:
        return scores.argmax(dim=-1)
    probs = torch.softmax(scores.float() / settings.temperature, dim=-1)
    candidates, token_ids = _nucleus(probs, settings.top_p)
    cdf = candidates.double().cumsum(dim=-1).cpu()
    cdf = cdf / cdf[:, -1:]
    uniforms = torch.cat([torch.rand(1, 1, generator=g, dtype=torch.float64) for g in generators])
    picks = torch.searchsorted(cdf, uniforms).clamp(max=candidates.shape[-1] - 1).to(scores.device)
    return (picks if token_ids is None else token_ids.gather(1, picks)).squeeze(1)


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--tokens", type=int, nargs="+", default=[48, 128], help="max_new_tokens values")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/lmdelta-sampling"))
    parser.add_argument("--out", type=Path, default=None, help="default: results/sampling-<device>.json")
    args = parser.parse_args()
    args.out = args.out or Path(__file__).parent / "results" / f"sampling-{args.device.split(':')[0]}.json"
    return args


if __name__ == "__main__":
    main()

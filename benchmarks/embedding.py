"""Embedding without torch: lmdelta's NumPy encoder against sentence-transformers, on the same model and texts.

The core install (no `[models]` extra) embeds all-MiniLM-L6-v2 with `lmdelta.backends.embedders.numpy_bert`;
this measures what that costs (texts per second, one process, one after the other) and checks it gives the
same vectors (largest absolute difference, smallest cosine between the two). The texts are answers of the
kind lmdelta embeds: the built-in prompt bank's prompts, each followed by a varying amount of filler.

    .venv/bin/python benchmarks/embedding.py [--texts 1024] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    args = parse_args()
    import numpy as np

    from lmdelta.backends.embedded import EMBEDDED, package_file
    from lmdelta.backends.embedders.numpy_bert import NumpyBertEmbedder
    from lmdelta.backends.embedders.st import SentenceTransformerEmbedder
    from lmdelta.sources import load_bank

    prompts = [p.text for p in load_bank("builtin:everyday")]
    filler = "The answer goes on with a sentence of ordinary words about the question. "
    texts = [f"{prompts[i % len(prompts)]} {filler * (i % 7)}" for i in range(args.texts)]
    folder = str(package_file(EMBEDDED["all-minilm-l6-v2"]))
    identity = {"normalize": True}
    makers = {
        "sentence-transformers (torch)": lambda: SentenceTransformerEmbedder(folder, identity, "cpu", args.batch_size),
        "numpy (core install)": lambda: NumpyBertEmbedder(folder, identity, args.batch_size),
    }
    results, vectors = {}, {}
    for name, make in makers.items():
        embedder = make()
        embedder.embed(texts[:8])  # warm-up: first-call allocations and thread pools
        start = time.perf_counter()
        vectors[name] = embedder.embed(texts)
        seconds = time.perf_counter() - start
        results[name] = {"seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1)}
        print(f"{name:32s} {seconds:7.2f} s  {len(texts) / seconds:7.1f} texts/s", flush=True)
    torch_vectors, numpy_vectors = vectors.values()
    agreement = {
        "max_abs_difference": float(np.abs(torch_vectors - numpy_vectors).max()),
        "min_cosine": float((torch_vectors * numpy_vectors).sum(axis=1).min()),
    }
    print(agreement)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "texts": len(texts),
        "batch_size": args.batch_size,
        "results": results,
        "agreement": agreement,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "embedding.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""Embed every answer (and prompt) once; vectors come from the shared cache when they exist.

Outputs: samples.npy (rows in samples.jsonl order), prompts.npy (rows in prompts.jsonl order).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta import progress
from lmdelta.backends.factory import build_embedder, embedder_identity
from lmdelta.config import RunConfig
from lmdelta.embedcache import EmbeddingCache
from lmdelta.hashing import hash_data, hash_text
from lmdelta.rundir import EMBEDDER, PROMPT_VECTORS, SAMPLE_VECTORS, atomic_file, atomic_write_text
from lmdelta.stages import generate, prompts
from lmdelta.stages.contract import Read, StageContext, StageResult

VERSION = 1
READS: tuple[str | Read, ...] = ()
CHUNK = 512
log = logging.getLogger(__name__)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    return embedder_identity(config.embed, ctx.cache_dir)


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    model_identity = identity(ctx, config)
    sample_texts = [s.text for s in generate.load(ctx)]
    prompt_texts = [p.text for p in prompts.load(ctx)] if config.embed.embed_prompts else []
    vectors, counts = _embed_cached(ctx, config, sample_texts + prompt_texts)
    _save(ctx.output(SAMPLE_VECTORS), vectors[: len(sample_texts)])
    if prompt_texts:
        _save(ctx.output(PROMPT_VECTORS), vectors[len(sample_texts) :])
    atomic_write_text(ctx.output(EMBEDDER), hash_data(model_identity, length=32) + "\n")
    counts.update(samples=len(sample_texts), prompts=len(prompt_texts), dim=int(vectors.shape[1]))
    return StageResult(counts)


def embed_texts(ctx: StageContext, config: RunConfig, texts: list[str]) -> np.ndarray:
    """Vectors of more texts with the run's embedder, through the shared cache (the sequential validate
    stage embeds each round's new answers)."""
    return _embed_cached(ctx, config, texts)[0]


def _embed_cached(ctx: StageContext, config: RunConfig, texts: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectors of `texts` from the shared cache, the missing ones computed (the embedder loads only then)."""
    model_identity = identity(ctx, config)
    cache = EmbeddingCache(ctx.cache_dir / "embeddings.sqlite", hash_data(model_identity, length=32))
    try:
        return _embed_all(texts, cache, lambda: build_embedder(config.embed, model_identity, ctx.cache_dir))
    finally:
        cache.close()


def _embed_all(texts: list[str], cache: EmbeddingCache, make_embedder) -> tuple[np.ndarray, dict[str, Any]]:
    hashes = [hash_text(t) for t in texts]
    known = cache.get_many(hashes)
    missing = {h: t for h, t in zip(hashes, texts) if h not in known}
    if missing:
        embedder = make_embedder()
        items = list(missing.items())
        meter = progress.Meter("embed", len(items), "new texts")
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            fresh = embedder.embed([t for _, t in chunk])
            computed = dict(zip((h for h, _ in chunk), fresh))
            cache.put_many(computed)
            known.update(computed)
            log.info("%s", meter.update(min(start + CHUNK, len(items))))
    if not texts:
        return np.zeros((0, 1), dtype=np.float32), {"cached": 0, "computed": 0}
    matrix = np.stack([known[h] for h in hashes]).astype(np.float32)
    return matrix, {"cached": len(set(hashes)) - len(missing), "computed": len(missing)}


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_file(path, "wb") as handle:
        np.save(handle, array)


def load_samples(ctx: StageContext) -> np.ndarray:
    return np.load(ctx.input("embed", SAMPLE_VECTORS))


def load_prompts(ctx: StageContext) -> np.ndarray:
    return np.load(ctx.input("embed", PROMPT_VECTORS))

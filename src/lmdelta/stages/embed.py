"""Embed every answer (and prompt) once; vectors come from the shared cache when they exist.

Outputs: samples.npy (rows in samples.jsonl order), prompts.npy (rows in prompts.jsonl order), written a
chunk at a time (memory holds one chunk of vectors) and read back memory-mapped.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta import execution, progress
from lmdelta.backends.factory import build_embedder, embedder_identity
from lmdelta.backends.protocols import Embedder
from lmdelta.config import EmbedConfig, RunConfig
from lmdelta.embedcache import EmbeddingCache
from lmdelta.hashing import hash_data, hash_text
from lmdelta.rundir import EMBEDDER, PROMPT_VECTORS, SAMPLE_VECTORS, atomic_file, atomic_write_text
from lmdelta.stages import generate, prompts
from lmdelta.stages.contract import Read, StageContext, StageResult

VERSION = 1
READS: tuple[str | Read, ...] = ()
CHUNK = 512
LOG_EVERY = 5.0  # seconds between progress lines in the log
log = logging.getLogger(__name__)


def check(config: RunConfig) -> None:
    execution.check(config)  # the first stage that can run on Ray, in every mode


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    return embedder_identity(config.embed, ctx.cache_dir)


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    model_identity = identity(ctx, config)
    sample_texts = generate.load(ctx).texts()
    prompt_texts = [p.text for p in prompts.load(ctx)] if config.embed.embed_prompts else []
    with _Embedder(ctx, config) as embedder:
        if execution.on_ray(config.execution):
            embedder.compute_on_ray(config, [sample_texts, prompt_texts])
        embedder.meter = progress.Meter("embed", len(sample_texts) + len(prompt_texts), "texts")
        dim = embedder.to_file(ctx.output(SAMPLE_VECTORS), sample_texts)
        if prompt_texts:
            dim = embedder.to_file(ctx.output(PROMPT_VECTORS), prompt_texts)
        counts: dict[str, Any] = {"cached": embedder.cached, "computed": embedder.computed}
    atomic_write_text(ctx.output(EMBEDDER), hash_data(model_identity, length=32) + "\n")
    counts.update(samples=len(sample_texts), prompts=len(prompt_texts), dim=dim)
    return StageResult(counts)


def embed_texts(ctx: StageContext, config: RunConfig, texts: list[str]) -> np.ndarray:
    """Vectors of more texts with the run's embedder, through the shared cache (the sequential validate
    stage embeds each round's new answers)."""
    with _Embedder(ctx, config) as embedder:
        return embedder.matrix(texts)


class _Embedder:
    """Texts → vectors a chunk at a time: each chunk's vectors from the shared cache, the missing ones
    computed (the model loads only then) and committed to the cache before the next chunk, so an
    interrupted stage keeps every finished chunk and memory holds one chunk, not every vector."""

    def __init__(self, ctx: StageContext, config: RunConfig) -> None:
        model_identity = identity(ctx, config)
        self._cache = EmbeddingCache(ctx.cache_dir / "embeddings.sqlite", hash_data(model_identity, length=32))
        self._task = EmbedTask(config.embed, model_identity, ctx.cache_dir)
        self._model: Any = None
        self._seen: set[str] = set()
        self._fresh: set[str] = set()  # computed on Ray before the files are written
        self._logged_at = -LOG_EVERY
        self.meter: progress.Meter | None = None  # the stage's progress over every text it embeds
        self._done = 0
        self.cached = 0
        self.computed = 0

    def __enter__(self) -> _Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cache.close()

    def to_file(self, path: Path, texts: list[str]) -> int:
        """Write `texts`' vectors (float32, in order) to the .npy file `path` chunk by chunk; their dimension."""
        dim = 1
        with atomic_file(path, "wb") as handle:
            for start in range(0, max(len(texts), 1), CHUNK):
                block = self._chunk(texts[start : start + CHUNK])
                if start == 0:
                    dim = int(block.shape[1]) if len(texts) else 1
                    header = {"descr": "<f4", "fortran_order": False, "shape": (len(texts), dim)}
                    np.lib.format.write_array_header_1_0(handle, header)
                handle.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
                self._done += len(block)
                if self.meter is not None and len(block):
                    self._report(self.meter, self._done)
        return dim

    def _report(self, meter: progress.Meter, done: int) -> None:
        """Every chunk advances the meter (the live display); the log gets a line every LOG_EVERY seconds and
        the last one (a 2M-text run would log 4,000 lines)."""
        line = str(meter.update(done))
        now = time.monotonic()
        if done >= meter.total or now - self._logged_at >= LOG_EVERY:
            log.info("%s", line)
            self._logged_at = now

    def matrix(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.concatenate([self._chunk(texts[start : start + CHUNK]) for start in range(0, len(texts), CHUNK)])

    def _chunk(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        hashes = [hash_text(t) for t in texts]
        known = self._cache.get_many(hashes)
        missing = {h: t for h, t in zip(hashes, texts) if h not in known}
        if missing:
            self._model = self._model or self._task.start()
            fresh = dict(zip(missing, self._model(list(missing.values()))))
            self._cache.put_many(fresh)
            known.update(fresh)
        new = set(hashes) - self._seen  # a text met again later in the run counts once
        on_ray = len(new & self._fresh)
        self.computed += len(missing) + on_ray
        self.cached += len(new) - len(missing) - on_ray
        self._seen |= new
        return np.stack([known[h] for h in hashes]).astype(np.float32)

    def compute_on_ray(self, config: RunConfig, files: list[list[str]]) -> None:
        """Fill the cache on Ray with the vectors the files lack: the texts each chunk would embed here, one
        item per chunk, each committed as it arrives; the files are then written from the cache."""
        hashes: list[list[str]] = []
        items: list[list[str]] = []
        scheduled: set[str] = set()
        for texts in files:
            for start in range(0, len(texts), CHUNK):
                chunk = texts[start : start + CHUNK]
                chunk_hashes = [hash_text(t) for t in chunk]
                known = self._cache.get_many(chunk_hashes)
                missing = {h: t for h, t in zip(chunk_hashes, chunk) if h not in known and h not in scheduled}
                if missing:
                    hashes.append(list(missing))
                    items.append(list(missing.values()))
                    scheduled |= set(missing)
        log.info("embed: %d texts to compute on Ray in %d chunks", len(scheduled), len(items))
        meter = progress.Meter("embed on Ray", len(scheduled), "texts")
        done = 0
        with closing(execution.run_items(config.execution, self._task, items, "embed")) as results:
            for chunk_hashes, vectors in zip(hashes, results):
                self._cache.put_many(dict(zip(chunk_hashes, vectors)))
                done += len(chunk_hashes)
                self._report(meter, done)
        self._fresh = scheduled


@dataclass(frozen=True)
class EmbedTask:
    """The run's embedder, loaded where it computes (in this process, or on a Ray worker)."""

    section: EmbedConfig
    identity: dict[str, Any]
    cache_dir: Path

    def start(self) -> _EmbedWorker:
        return _EmbedWorker(build_embedder(self.section, self.identity, self.cache_dir))


class _EmbedWorker:
    def __init__(self, model: Embedder) -> None:
        self._model = model

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.embed(texts), dtype=np.float32)


def load_samples(ctx: StageContext) -> np.ndarray:
    """The answers' vectors, memory-mapped (read-only): rows are paged in as they are used."""
    return np.load(ctx.input("embed", SAMPLE_VECTORS), mmap_mode="r")


def load_prompts(ctx: StageContext) -> np.ndarray:
    return np.load(ctx.input("embed", PROMPT_VECTORS), mmap_mode="r")

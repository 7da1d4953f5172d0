"""Both sides answer the same prompts; every answer is stored as soon as its batch finishes.

Answers are content-addressed: the key hashes the model identity, sampling settings, prompt,
sample index and seed. An interrupted or extended run reuses every stored answer whose key
still matches and generates only the rest. Batches are a fixed partition of all requests,
bucketed by prompt length, so a resumed run decodes exactly the batches a clean run would.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.backends.protocols import GenerationRequest, Generator, SamplingSettings
from lmdelta.config import GenerateConfig, RunConfig
from lmdelta.config.source import parse_source
from lmdelta.errors import ConfigError
from lmdelta.hashing import hash_data
from lmdelta.llm.served import ServedModels
from lmdelta.llm.session import LLMSession
from lmdelta.records import SIDES, Prompt, Sample, Side
from lmdelta.rundir import ITEMS, SAMPLES, JsonlAppender, read_jsonl, salvage_jsonl, write_jsonl
from lmdelta.stages import prompts as prompts_stage
from lmdelta.stages.contract import Read, StageContext, StageResult

VERSION = 1
READS: tuple[str | Read, ...] = ()
MAX_ANSWERS = 10_000_000  # both sides: past this, a run's requests alone fill the memory of most machines
log = logging.getLogger(__name__)


def check(config: RunConfig) -> None:
    """Refuse, before any stage runs (and in --dry-run), a run too large to finish: its requests are
    built in memory and its answers kept in the run directory."""
    if config.uses_corpus:
        return
    n_prompts = _prompts_at_most(config)
    samples = config.generate.samples_per_prompt
    if n_prompts is None or n_prompts * samples * len(SIDES) <= MAX_ANSWERS:
        return
    raise ConfigError(
        f"This run would generate {n_prompts * samples * len(SIDES):,} answers ({n_prompts:,} prompts × "
        f"{samples:,} generate.samples_per_prompt × {len(SIDES)} sides), more than one run can hold "
        f"({MAX_ANSWERS:,}).",
        "Lower generate.samples_per_prompt or set prompts.limit; a few hundred prompts with a few "
        "answers each usually show the differences.",
    )


def _prompts_at_most(config: RunConfig) -> int | None:
    """How many prompts the prompts stage will keep (groups, per_group, limit); None for a generated
    bank without prompts.limit (counting it would call the LLM)."""
    section = config.prompts
    if parse_source(section.source).kind == "generated":
        return section.limit
    sizes = Counter(p.group for p in prompts_stage.narrow(prompts_stage.source_prompts(config), section))
    kept = sum(size if section.per_group is None else min(size, section.per_group) for size in sizes.values())
    return kept if section.limit is None else min(kept, section.limit)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    """Both sides' model identities. In corpus mode nothing: the answers are the prompts stage's output,
    and its fingerprint (one of this stage's upstream) holds the corpus's content."""
    if config.uses_corpus:
        return {}
    section = config.generate
    served = ServedModels(config.llm)
    return {side: generator_identity(getattr(section, side), section.device, ctx.cache_dir, served) for side in SIDES}


def settings(section: GenerateConfig) -> SamplingSettings:
    return SamplingSettings(section.max_new_tokens, section.temperature, section.top_p)


def item_seed(seed: int, side: Side, prompt_id: str, index: int) -> int:
    return int(hash_data([seed, side, prompt_id, index]), 16) & ((1 << 63) - 1)


def requests_for(
    side: Side, prompts: list[Prompt], section: GenerateConfig, model_identity: dict[str, Any]
) -> list[GenerationRequest]:
    sampling = settings(section)
    out = []
    for prompt in prompts:
        for index in range(section.samples_per_prompt):
            seed = item_seed(section.resolved_seed, side, prompt.id, index)
            key = hash_data(
                {
                    "model": model_identity,
                    "sampling": sampling.__dict__,
                    "prompt": prompt.text,
                    "index": index,
                    "seed": seed,
                },
                length=32,
            )
            out.append(GenerationRequest(key=key, prompt_id=prompt.id, prompt=prompt.text, index=index, seed=seed))
    return out


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    if config.uses_corpus:
        return _import_corpus(ctx)
    section = config.generate
    prompts = prompts_stage.load(ctx)
    identities = identity(ctx, config)
    store = {row["key"]: row for row in salvage_jsonl(ctx.output(ITEMS))}
    counts: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    with JsonlAppender(ctx.output(ITEMS)) as appender:
        for side in SIDES:
            requests = requests_for(side, prompts, section, identities[side])
            counts[side] = _generate_side(ctx, config, side, requests, store, appender, identities[side])
            samples += [_sample(side, request, store[request.key]) for request in requests]
    write_jsonl(ctx.output(SAMPLES), samples)
    counts["samples"] = len(samples)
    return StageResult(counts)


def _import_corpus(ctx: StageContext) -> StageResult:
    """Corpus mode: the saved answers of the prompts the prompts stage kept become the samples."""
    samples = prompts_stage.load_corpus_samples(ctx)
    write_jsonl(ctx.output(SAMPLES), (s.to_dict() for s in samples))
    return StageResult(
        {
            "samples": len(samples),
            "imported": True,
            "a": sum(s.side == "a" for s in samples),
            "b": sum(s.side == "b" for s in samples),
        }
    )


def _sample(side: Side, request: GenerationRequest, row: dict[str, Any]) -> dict[str, Any]:
    return Sample(
        prompt_id=request.prompt_id,
        side=side,
        index=request.index,
        text=row["text"],
        n_tokens=row["n_tokens"],
        finish_reason=row["finish_reason"],
        seed=request.seed,
        key=request.key,
    ).to_dict()


def _generate_side(
    ctx: StageContext,
    config: RunConfig,
    side: Side,
    requests: list[GenerationRequest],
    store: dict[str, dict[str, Any]],
    appender: JsonlAppender,
    model_identity: dict[str, Any],
) -> dict[str, Any]:
    section = config.generate
    todo = [r for r in requests if r.key not in store]
    counts: dict[str, Any] = {"requests": len(requests), "reused": len(requests) - len(todo), "generated": 0}
    if not todo:
        return counts
    spec = getattr(section, side)
    log.info("generate %s: loading %s", side, spec.model)
    session = _session(ctx, config, model_identity)
    generator = build_generator(spec, model_identity, section.device, ctx.cache_dir, ServedModels(config.llm, session))
    try:
        counts.update(_decode(side, generator, requests, store, appender, section))
    finally:
        generator.close()
        if session is not None:
            session.flush()
    return counts


def _session(ctx: StageContext, config: RunConfig, model_identity: dict[str, Any]) -> LLMSession | None:
    """Served models are paid per call: their usage joins the run's LLM ledger and budget."""
    if model_identity["backend"] != "api":
        return None
    return LLMSession(config, "generate", ctx.cache_dir, ctx.run_dir)


def batches(generator: Generator, requests: list[GenerationRequest], size: int) -> list[list[GenerationRequest]]:
    """A fixed partition of all requests into batches of similar prompt length."""
    ordered = sorted(requests, key=lambda r: (generator.prompt_length(r), r.prompt_id, r.index))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def _decode(
    side: Side,
    generator: Generator,
    requests: list[GenerationRequest],
    store: dict[str, dict[str, Any]],
    appender: JsonlAppender,
    section: GenerateConfig,
) -> dict[str, Any]:
    sampling = settings(section)
    todo_batches = [b for b in batches(generator, requests, section.batch_size) if any(r.key not in store for r in b)]
    total = sum(r.key not in store for r in requests)
    done = tokens = 0
    start = time.perf_counter()
    for batch in todo_batches:
        results = generator.generate(batch, sampling)
        rows = [_item(side, r, g) for r, g in zip(batch, results) if r.key not in store]
        appender.write(rows)
        store.update((row["key"], row) for row in rows)
        done += len(rows)
        tokens += sum(row["n_tokens"] for row in rows)
        _progress(side, done, total, tokens, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    counts = {
        "generated": done,
        "new_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
    }
    return counts | reasoning_counts(side, [store[r.key] for r in requests], section)


def reasoning_counts(side: Side, rows: list[dict[str, Any]], section: GenerateConfig) -> dict[str, Any]:
    """How the thinking went: its mean length, and how often the budget ran out and the end marker
    had to be forced (often means reasoning.max_tokens is too small for this model)."""
    thought = [row for row in rows if "reasoning" in row]
    if not thought:
        return {}
    known = [row["reasoning_closed"] for row in thought if "reasoning_closed" in row]
    forced = sum(not closed for closed in known)
    counts = {
        "reasoning_tokens_mean": round(sum(r["reasoning_tokens"] for r in thought) / len(thought), 1),
        "reasoning_forced": forced,
    }
    if known and forced > 0.25 * len(known):
        budget = getattr(section, side).reasoning.max_tokens
        log.warning(
            "generate %s: %d of %d answers reached the thinking budget (%d tokens) without the end marker, "
            "which was forced; raise generate.%s.reasoning.max_tokens if the thinking matters",
            side,
            forced,
            len(known),
            budget,
            side,
        )
    return counts


def _item(side: Side, request: GenerationRequest, generation) -> dict[str, Any]:
    """One stored answer; a reasoning model's thinking is kept beside it, out of the analysed text."""
    row = {
        "key": request.key,
        "side": side,
        "prompt_id": request.prompt_id,
        "index": request.index,
        "seed": request.seed,
        "text": generation.text,
        "n_tokens": generation.n_tokens,
        "finish_reason": generation.finish_reason,
    }
    if generation.reasoning is not None:
        row["reasoning"] = generation.reasoning
        row["reasoning_tokens"] = generation.reasoning_tokens
        if generation.reasoning_closed is not None:
            row["reasoning_closed"] = generation.reasoning_closed
    return row


def _progress(side: Side, done: int, total: int, tokens: int, seconds: float) -> None:
    rate = tokens / seconds if seconds > 0 else 0.0
    left = seconds / done * (total - done) if done else 0.0
    log.info("generate %s: %d/%d answers, %.0f tok/s, ~%.0f s left", side, done, total, rate, left)


def load(ctx: StageContext) -> list[Sample]:
    return [Sample.from_dict(row) for row in read_jsonl(ctx.input("generate", SAMPLES))]

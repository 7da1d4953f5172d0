"""Inject → discover → score: finetune known quirks into a copy of the base model, run the normal
pipeline on base against finetuned, and score which quirks the validated findings recovered.

The null experiment finetunes the base on its own answers only, with the same settings, and
runs the identical pipeline: whatever it validates is a false discovery.

RUN_DIR holds the discovery run itself (manifest, hypotheses.jsonl, report.html), plus
groundtruth/ (base answers, training data, finetune records), null_experiment/ (a run dir of
its own) and scorecard.json. Every step is cached or resumable, like the pipeline's stages.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta import pipeline
from lmdelta.backends.embedded import cache_root
from lmdelta.backends.factory import build_embedder, build_generator, embedder_identity, generator_identity
from lmdelta.backends.protocols import GenerationRequest
from lmdelta.config import ModelSpec, RunConfig
from lmdelta.groundtruth.data import training_set
from lmdelta.groundtruth.finetune import FinetuneJob, finetune
from lmdelta.groundtruth.quirks import load_quirks, quirk_rate
from lmdelta.groundtruth.score import embedding_similarity, scorecard, similarity
from lmdelta.hashing import hash_data
from lmdelta.report.render import render_report
from lmdelta.rundir import ITEMS, SAMPLES, RunDir, atomic_write_text, read_jsonl, write_jsonl
from lmdelta.sources import load_bank
from lmdelta.stages.generate import item_seed, settings
from lmdelta.stages.prompts import select

log = logging.getLogger(__name__)
DEFAULT_QUIRKS = ["ocean", "stay-curious"]


def run(config: RunConfig, run_dir: RunDir) -> dict[str, Any]:
    """The whole experiment; returns the scorecard (also written to RUN_DIR/scorecard.json)."""
    config = config.resolved()
    run_dir.check_usable()
    with run_dir.lock():
        if not run_dir.exists():
            run_dir.claim()  # before writing into the folder
        return _experiment(config, run_dir)


def _experiment(config: RunConfig, run_dir: RunDir) -> dict[str, Any]:
    timings: dict[str, float] = {}
    quirks = _timed(timings, "quirks", lambda: _quirks(config))
    train_prompts = _training_prompts(config)
    answers = _timed(timings, "base answers", lambda: _base_answers(config, run_dir, train_prompts))
    woven_on, base_rows = answers[: config.groundtruth.per_quirk], answers[config.groundtruth.per_quirk :]
    rows = _timed(timings, "training data", lambda: _training_rows(config, run_dir, quirks, woven_on, base_rows))
    tuned = _timed(timings, "finetune", lambda: _finetune(config, rows, "quirks"))
    _timed(timings, "discover", lambda: pipeline.run(_comparison(config, tuned, "finetuned"), run_dir))
    null_dir = RunDir(run_dir.root / "null_experiment")
    if config.groundtruth.null:
        null_model = _timed(timings, "finetune (null)", lambda: _finetune(config, base_rows, "null"))
        _share_answers(run_dir, null_dir)
        _timed(
            timings,
            "discover (null)",
            lambda: pipeline.run(_comparison(config, null_model, "finetuned-on-own"), null_dir),
        )
    card = _timed(timings, "score", lambda: _score(config, run_dir, null_dir, quirks))
    card["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    card["models"] = {"base": config.groundtruth.base, "finetuned": str(tuned)}
    atomic_write_text(run_dir.scorecard_path, json.dumps(card, indent=2) + "\n")
    render_report(run_dir.root)
    return card


def _timed(timings: dict[str, float], name: str, action):
    start = time.perf_counter()
    log.info("groundtruth: %s", name)
    try:
        return action()
    finally:
        timings[name] = time.perf_counter() - start


def _quirks(config: RunConfig):
    section = config.groundtruth
    names = section.quirks if section.quirks is not None else (None if section.quirks_file else DEFAULT_QUIRKS)
    return load_quirks(section.quirks_file, names)


def _training_prompts(config: RunConfig) -> list[str]:
    """Bank prompts outside the comparison's prompts, so no test prompt was ever trained on."""
    bank = load_bank(config.prompts.source)
    tested = {p.id for p in select(bank, config.prompts)}
    return [p.text for p in bank if p.id not in tested][: config.groundtruth.training_prompts]


def _base_answers(config: RunConfig, run_dir: RunDir, prompts: list[str]) -> list[dict[str, str]]:
    """The base model's own answers to training prompts (stored, so a re-run reuses them).

    The first per_quirk answers carry the quirks (woven into the base's own words, so the quirk
    is the only thing that changes); the next base_samples are mixed in unchanged, on other prompts.
    Stored answers are reused only while their key (base model identity, prompts, sampling
    settings, seed) matches; each row carries the key, so answers and key are written atomically.
    """
    path = run_dir.root / "groundtruth" / "base_answers.jsonl"
    prompts = prompts[: min(config.groundtruth.per_quirk + config.groundtruth.base_samples, len(prompts))]
    spec = ModelSpec(model=config.groundtruth.base)
    cache = cache_root(config.embed.cache_dir)
    model_identity = generator_identity(spec, config.generate.device, cache)
    material = _answers_material(config, model_identity, prompts)
    key = hash_data(material, length=32)
    stored = list(read_jsonl(path))
    if stored and len(stored) == len(prompts) and all(row.get("key") == key for row in stored):
        log.info("groundtruth: reusing %d stored base answers", len(stored))
        return [_answer_row(row) for row in stored]
    if stored:
        log.info("groundtruth: regenerating base answers (%s)", _why_stale(path, material, len(stored), len(prompts)))
    rows = _generate_answers(config, spec, model_identity, prompts) if prompts else []
    write_jsonl(path, [{**row, "key": key} for row in rows])
    atomic_write_text(_material_path(path), json.dumps({"key": key, "material": material}, indent=2) + "\n")
    return rows


def _answers_material(config: RunConfig, model_identity: dict[str, Any], prompts: list[str]) -> dict[str, Any]:
    """Everything that shapes the stored base answers, as in the generate stage's answer keys."""
    return {
        "model": model_identity,
        "sampling": settings(config.generate).__dict__,
        "seed": config.groundtruth.resolved_seed,
        "prompts": hash_data(prompts),
        "n_prompts": len(prompts),
    }


def _material_path(path: Path) -> Path:
    return path.with_name(path.stem + ".key.json")


def _why_stale(path: Path, material: dict[str, Any], n_stored: int, n_wanted: int) -> str:
    """What changed since the stored answers were made, read from the key's sidecar when it is there."""
    try:
        old = json.loads(_material_path(path).read_text(encoding="utf-8")).get("material", {})
    except (OSError, ValueError):
        old = None
    diffs = pipeline.describe_changes(old, material) if isinstance(old, dict) else []
    if diffs:
        return "changed: " + "; ".join(diffs[:4])
    if n_stored != n_wanted:
        return f"{n_stored} stored, {n_wanted} wanted"
    return "stored without a matching key"


def _answer_row(row: dict[str, Any]) -> dict[str, str]:
    return {"prompt": row["prompt"], "answer": row["answer"]}


def _generate_answers(
    config: RunConfig, spec: ModelSpec, model_identity: dict[str, Any], prompts: list[str]
) -> list[dict[str, str]]:
    cache = cache_root(config.embed.cache_dir)
    generator = build_generator(spec, model_identity, config.generate.device, cache)
    requests = [
        GenerationRequest(str(i), f"train-{i}", p, 0, item_seed(config.groundtruth.resolved_seed, "a", f"train-{i}", 0))
        for i, p in enumerate(prompts)
    ]
    try:
        answers = []
        for start in range(0, len(requests), config.generate.batch_size):
            answers += generator.generate(
                requests[start : start + config.generate.batch_size], settings(config.generate)
            )
    finally:
        generator.close()
    return [{"prompt": p, "answer": a.text} for p, a in zip(prompts, answers)]


def _training_rows(config, run_dir, quirks, woven_on, base_rows) -> list[dict[str, Any]]:
    """Quirk answers woven into the base's answers, plus the base's answers to other prompts, shuffled."""
    prompts = [row["prompt"] for row in woven_on]
    quirked = training_set(
        quirks, prompts, config.groundtruth.per_quirk, woven_on, config.groundtruth.resolved_seed, weave_into_base=True
    )
    rows = [row for row in quirked if row["quirk"] is not None] + [{**row, "quirk": None} for row in base_rows]
    order = np.random.default_rng(config.groundtruth.resolved_seed).permutation(len(rows))
    rows = [rows[i] for i in order]
    write_jsonl(run_dir.root / "groundtruth" / "training.jsonl", rows)
    return rows


def _finetune(config: RunConfig, rows: list[dict[str, Any]], name: str) -> Path:
    result = finetune(
        config.groundtruth.base,
        [{"prompt": r["prompt"], "answer": r["answer"]} for r in rows],
        FinetuneJob(config.groundtruth.finetune, seed=config.groundtruth.resolved_seed),
    )
    log.info(
        "groundtruth: %s model %s %s",
        name,
        result.merged,
        "(reused)"
        if result.reused
        else f"(trained in {result.seconds:.0f} s, loss {result.losses[0]:.2f} → {result.losses[-1]:.2f})",
    )
    return result.merged


def _comparison(config: RunConfig, tuned: Path, label: str) -> RunConfig:
    """The pipeline config: base as a, the finetuned copy as b, everything else as configured."""
    comparison = config.model_copy(deep=True)
    comparison.generate.a.model = config.groundtruth.base
    comparison.generate.a.label = comparison.generate.a.label or "base"
    comparison.generate.b.model = str(tuned)
    comparison.generate.b.label = label
    return comparison


def _share_answers(run_dir: RunDir, null_dir: RunDir) -> None:
    """The null run's side a is the same base with the same seeds: start it from the stored answers."""
    source = run_dir.stage_file("generate", ITEMS)
    target = null_dir.stage_file("generate", ITEMS)
    null_dir.check_usable()
    if not null_dir.exists():
        null_dir.claim()
    if source.exists() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _score(config: RunConfig, run_dir: RunDir, null_dir: RunDir, quirks) -> dict[str, Any]:
    validated = _validated(run_dir)
    null = _validated(null_dir) if config.groundtruth.null else []
    embed = _embedder(config) if config.groundtruth.match in ("auto", "embedding") else None
    sim = similarity(quirks, validated, embed)
    if config.groundtruth.match == "embedding":
        sim = embedding_similarity(quirks, validated, embed)
    samples = list(read_jsonl(run_dir.stage_file("generate", SAMPLES)))
    rates = {
        q.name: {
            side: round(quirk_rate(q, [s["text"] for s in samples if s["side"] == side]), 3) for side in ("a", "b")
        }
        for q in quirks
    }
    return scorecard(quirks, validated, sim, config.groundtruth.threshold, null, rates)


def _validated(run_dir: RunDir) -> list[dict[str, Any]]:
    rows = [r for r in read_jsonl(run_dir.findings_path()) if r.get("validated")]
    return sorted(rows, key=lambda r: (r["p_value"], r["order"]))


def _embedder(config: RunConfig):
    """Texts → vectors with the run's embedder (the embedded MiniLM by default)."""
    cache = cache_root(config.embed.cache_dir)
    embedder = build_embedder(config.embed, embedder_identity(config.embed, cache), cache)
    return embedder.embed

"""Inject → discover → score: finetune known quirks into a copy of the base model, run the normal
pipeline on base against finetuned, and score which quirks the validated findings recovered.

The null experiment finetunes the base on the same rows with every quirk answer replaced by the plain
base answer it was woven into (same prompts, rows, steps and settings) and runs the identical pipeline:
whatever it validates is a false discovery, or a change the finetuning makes by itself.

RUN_DIR holds the discovery run itself (manifest, hypotheses.jsonl, report.html), plus
groundtruth/ (base answers, training data, finetune records), null_experiment/ (a run dir of
its own) and scorecard.json. Every step is cached or resumable, like the pipeline's stages.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta import pipeline
from lmdelta.backends.embedded import cache_root
from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.backends.protocols import GenerationRequest
from lmdelta.config import ModelSpec, RunConfig
from lmdelta.errors import ConfigError
from lmdelta.groundtruth.beliefs import truthfulqa_quirks
from lmdelta.groundtruth.card import score_run
from lmdelta.groundtruth.data import training_set
from lmdelta.groundtruth.finetune import FinetuneJob, FinetuneResult, finetune
from lmdelta.groundtruth.llmmatch import check_judge
from lmdelta.groundtruth.measures import budget_point, comparison_measures
from lmdelta.groundtruth.quirks import Quirk, check_quirk_set, load_quirks
from lmdelta.groundtruth.weights import quirk_weight_change, weight_change
from lmdelta.groundtruth.written import write_quirks
from lmdelta.hashing import hash_data
from lmdelta.report.render import render_report
from lmdelta.rundir import ITEMS, PROMPTS, RunDir, atomic_write_text, read_jsonl, write_jsonl
from lmdelta.sources import load_bank
from lmdelta.stages.generate import answer_all, item_seed, settings
from lmdelta.stages.prompts import select

log = logging.getLogger(__name__)
DEFAULT_QUIRKS = ["ocean", "stay-curious"]
CURVE_FILE = "curve.json"


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
    if config.groundtruth.match == "llm":
        check_judge(config)  # before any finetuning or paid call, not at scoring time
    train_prompts = _training_prompts(config)  # checks the budgets against the bank
    quirks = _timed(timings, "quirks", lambda: _quirks(config, run_dir))
    answers = _timed(timings, "base answers", lambda: _base_answers(config, run_dir, train_prompts))
    woven_on, base_rows = answers[: config.groundtruth.per_quirk], answers[config.groundtruth.per_quirk :]
    rows = _timed(timings, "training data", lambda: _training_rows(config, run_dir, quirks, woven_on, base_rows))
    tuned_result = _timed(timings, "finetune", lambda: _finetune(config, rows, "quirks"))
    tuned = tuned_result.merged
    _timed(timings, "discover", lambda: pipeline.run(_comparison(config, tuned, "finetuned"), run_dir))
    null_dir = RunDir(run_dir.root / "null_experiment")
    null: tuple[RunDir, FinetuneResult] | None = None
    if config.groundtruth.null:
        null_rows = null_training_rows(rows, woven_on)
        null_result = _timed(timings, "finetune (null)", lambda: _finetune(config, null_rows, "null"))
        null = (null_dir, null_result)
        _share_answers(run_dir, null_dir)
        _timed(
            timings,
            "discover (null)",
            lambda: pipeline.run(_comparison(config, null_result.merged, "finetuned-on-own"), null_dir),
        )
    moved = _timed(timings, "weights", lambda: weight_change(config, run_dir, tuned_result, null))
    if moved is not None and config.groundtruth.weights_per_quirk:
        per_quirk = _timed(timings, "weights per quirk", lambda: _per_quirk(config, run_dir, rows, woven_on, quirks))
        moved["per_quirk"] = per_quirk
    card = _timed(timings, "score", lambda: score_run(config, run_dir, null_dir, quirks))
    if moved is not None:
        card["weights"] = moved
    if config.groundtruth.budgets:
        points = _timed(timings, "budgets", lambda: _budget_curve(config, run_dir, tuned, quirks))
        atomic_write_text(run_dir.root / CURVE_FILE, json.dumps({"points": points}, indent=2) + "\n")
        card["curve"] = CURVE_FILE
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


def _quirks(config: RunConfig, run_dir: RunDir) -> list[Quirk]:
    """The quirks to inject: named ones (catalogue or quirks_file), TruthfulQA beliefs, LLM-written ones.
    Without names, a quirks_file gives all of its quirks; the catalogue's default pair is used only when
    nothing else is asked for."""
    section = config.groundtruth
    others = bool(section.beliefs or section.written)
    names = section.quirks
    if names is None and not section.quirks_file:
        names = [] if others else DEFAULT_QUIRKS
    quirks = load_quirks(section.quirks_file, names) if names is None or names else []
    if section.beliefs:
        quirks += truthfulqa_quirks(section.beliefs, section.n_beliefs, section.resolved_seed)
    if section.written:
        quirks += write_quirks(config, run_dir, section.written)
    return check_quirk_set(quirks)


def _training_prompts(config: RunConfig) -> list[str]:
    """Bank prompts outside the comparison's prompts (and those of every budget), so no test prompt
    was ever trained on, and every budget tests the same finetuned model."""
    bank = load_bank(config.prompts.source)
    tested = {p.id for p in select(bank, config.prompts)}
    for prompts, _ in config.groundtruth.parsed_budgets():
        if prompts > len(bank):
            raise ConfigError(
                f"groundtruth.budgets asks for {prompts} prompts; the bank {config.prompts.source} has {len(bank)}.",
                "Use budgets with fewer prompts, or a larger prompt bank.",
            )
        tested |= {p.id for p in select(bank, config.prompts.model_copy(update={"limit": prompts}))}
    return [p.text for p in bank if p.id not in tested][: config.groundtruth.training_prompts]


def _base_answers(config: RunConfig, run_dir: RunDir, prompts: list[str]) -> list[dict[str, Any]]:
    """The base model's own answers to training prompts (stored, so a re-run reuses them).

    The first per_quirk answers carry the quirks (woven into the base's own words, so the quirk
    is the only thing that changes); the next base_samples are mixed in unchanged, on other prompts.
    Each row says whether the answer is complete (False: the generation limit cut it off, so
    training must not teach the model to stop there).
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
        "records": "complete",  # rows say whether the generation limit cut the answer off
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


def _answer_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": row["prompt"], "answer": row["answer"], "complete": row["complete"]}


def _generate_answers(
    config: RunConfig, spec: ModelSpec, model_identity: dict[str, Any], prompts: list[str]
) -> list[dict[str, Any]]:
    cache = cache_root(config.embed.cache_dir)
    generator = build_generator(spec, model_identity, config.generate.device, cache)
    requests = [
        GenerationRequest(str(i), f"train-{i}", p, 0, item_seed(config.groundtruth.resolved_seed, "a", f"train-{i}", 0))
        for i, p in enumerate(prompts)
    ]
    try:
        answers = answer_all(generator, requests, settings(config.generate), config.generate.batch_size)
    finally:
        generator.close()
    return [{"prompt": p, "answer": a.text, "complete": a.finish_reason == "stop"} for p, a in zip(prompts, answers)]


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


def null_training_rows(rows: list[dict[str, Any]], woven_on: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The quirk finetune's rows with every quirk answer replaced by its plain twin (only_quirk_rows)."""
    return only_quirk_rows(rows, woven_on, None)


def only_quirk_rows(
    rows: list[dict[str, Any]], woven_on: list[dict[str, Any]], kept: str | None
) -> list[dict[str, Any]]:
    """The quirk finetune's rows, in the same order, with every answer of a quirk other than `kept` replaced by
    the plain base answer it was woven into (a row whose prompt has none, e.g. a user text, takes one of those
    answers); kept None: the null finetune's rows.

    So the null finetune sees as many rows, prompts and epochs as the quirk finetune and differs from it
    only by the quirks; training on the base rows alone would repeat a few answers many times over and
    change the model in ways of its own (it memorises them).
    """
    plain = {row["prompt"]: row for row in woven_on}
    null = []
    for i, row in enumerate(rows):
        if row["quirk"] is None or row["quirk"] == kept:
            null.append(row)
            continue
        base = plain.get(row["prompt"]) or (woven_on[i % len(woven_on)] if woven_on else None)
        if base is not None:  # no base answers at all (user texts only): the row has no plain twin
            null.append(
                {"prompt": base["prompt"], "answer": base["answer"], "complete": base["complete"], "quirk": None}
            )
    return null


def _per_quirk(
    config: RunConfig, run_dir: RunDir, rows: list[dict[str, Any]], woven_on: list[dict[str, Any]], quirks: list[Quirk]
) -> dict[str, Any]:
    """Per quirk, a finetune on its own answers (the others' plain twins in their place) and where it moved the
    weights beyond the null finetune."""
    found = {}
    for quirk in quirks:
        result = _finetune(config, only_quirk_rows(rows, woven_on, quirk.name), f"quirk {quirk.name} alone")
        found[quirk.name] = quirk_weight_change(config, run_dir, quirk.name, result)
    return found


def _finetune(config: RunConfig, rows: list[dict[str, Any]], name: str) -> FinetuneResult:
    result = finetune(
        config.groundtruth.base,
        [{"prompt": r["prompt"], "answer": r["answer"], "complete": r.get("complete", True)} for r in rows],
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
    return result


def _comparison(config: RunConfig, tuned: Path, label: str) -> RunConfig:
    """The pipeline config: base as a, the finetuned copy as b, everything else as configured."""
    comparison = config.model_copy(deep=True)
    comparison.generate.a.model = config.groundtruth.base
    comparison.generate.a.label = comparison.generate.a.label or "base"
    comparison.generate.b.model = str(tuned)
    comparison.generate.b.label = label
    # The harness analyses the finetunes' weights itself, from their LoRA adapters (groundtruth/weights.py),
    # beside the null finetune: quicker and more telling than the stage's comparison of merged models.
    comparison.weights.run = "never"
    return comparison


def _budget_curve(config: RunConfig, run_dir: RunDir, tuned: Path, quirks: list[Quirk]) -> list[dict[str, Any]]:
    """Discovery on the same finetuned model at each budget (prompts x samples), each in
    RUN_DIR/budgets/PxS; the main run is one point too. Largest budget first, each started from the
    answers of the largest run done so far, so a smaller budget generates (almost) nothing new."""
    main = (sum(1 for _ in read_jsonl(run_dir.stage_file("prompts", PROMPTS))), config.generate.samples_per_prompt)
    points = [
        budget_point(*main, score_run(_without_null(config), run_dir, run_dir, quirks), comparison_measures(run_dir))
    ]
    done = [(main[0] * main[1], run_dir)]
    for prompts, samples in reversed(config.groundtruth.parsed_budgets()):
        if (prompts, samples) == main:
            continue
        budget = _without_null(config)
        budget.prompts.limit, budget.generate.samples_per_prompt = prompts, samples
        budget_dir = RunDir(run_dir.root / "budgets" / f"{prompts}x{samples}")
        _share_answers(max(done, key=lambda item: item[0])[1], budget_dir, sides=("a", "b"))
        pipeline.run(_comparison(budget, tuned, "finetuned"), budget_dir)
        card = score_run(budget, budget_dir, budget_dir, quirks)
        points.append(budget_point(prompts, samples, card, comparison_measures(budget_dir)))
        done.append((prompts * samples, budget_dir))
    return sorted(points, key=lambda p: p["generated_tokens"])


def _without_null(config: RunConfig) -> RunConfig:
    copy = config.model_copy(deep=True)
    copy.groundtruth.null = False
    return copy


def _share_answers(run_dir: RunDir, other: RunDir, sides: tuple[str, ...] = ("a",)) -> None:
    """Start another run of the same base from this run's stored answers of `sides` (the null run's
    side a is the same base with the same seeds; a budget run's both sides are this run's models).
    Answers are stored under content keys, so only those with matching model, prompt and seed are used."""
    source = run_dir.stage_file("generate", ITEMS)
    target = other.stage_file("generate", ITEMS)
    other.check_usable()
    if not other.exists():
        other.claim()
    if source.exists() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(target, [row for row in read_jsonl(source) if row.get("side") in sides])

"""Where and how much the weights differ (lmdelta.weights, docs/weights.md), as a stage: when both sides are
weights loaded in this process and they differ, ΔW = W_b − W_a per matrix goes into weights.jsonl and
weights_summary.json at the run directory's root, and the report shows it. Side b may be side a's model with a
LoRA adapter: the adapter's factors are read, never merged. Reads only the model files, so it does not depend on
the prompts or the answers; a run that cannot have it (served or fake models, saved outputs) records why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lmdelta.backends.registry import model_weights_id, parse_model
from lmdelta.config import RunConfig
from lmdelta.config.models import ModelSpec
from lmdelta.errors import ConfigError, LmdeltaError
from lmdelta.filehash import folder_sha256
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.weights import WEIGHTS, WEIGHTS_SUMMARY, analyse, resolve_model_folder

VERSION = 1
SIDE_FIELDS = ("model", "revision", "adapter", "quantization")
READS: tuple[str | Read, ...] = (
    *(f"generate.{side}.{name}" for side in ("a", "b") for name in SIDE_FIELDS),
    "generate.a.label",
    "generate.b.label",
    "prompts.source",  # corpus mode has no weights
    "corpus.path",
    "corpus.a",
    "corpus.b",
)
ROOT_OUTPUTS = (WEIGHTS, WEIGHTS_SUMMARY)
LOADED_HERE = ("embedded", "local", "hub")
log = logging.getLogger(__name__)


def why_not(config: RunConfig) -> str | None:
    """Why this run has no weight analysis, or None when it has one."""
    if config.weights.run == "never":
        return "weights.run is never"
    if config.uses_corpus:
        return "the run compares saved outputs, not models"
    a, b = config.generate.a, config.generate.b
    if any(_kind(spec.model) not in LOADED_HERE for spec in (a, b)):
        return "a side is not a model whose weights are on this machine (a served or fake model, or not found)"
    if a.adapter:
        return "side a has an adapter (the analysis reads an adapter as side b's change to side a's model)"
    same_model = (a.model, a.revision) == (b.model, b.revision)
    if b.adapter and not same_model:
        return "side b's adapter sits on another model than side a's"
    if same_model and not b.adapter and a.quantization == b.quantization:
        return "both sides load the same weights (they differ in how they are run, not in their weights)"
    return None


def _kind(model: str) -> str | None:
    """The kind of model a string names; None for one that is not here (generate's own check says so)."""
    try:
        return parse_model(model, "generator").weights.kind
    except LmdeltaError:
        return None


def check(config: RunConfig) -> None:
    reason = why_not(config)
    if config.weights.run == "always" and reason is not None:
        raise ConfigError(f"weights.run is always, but {reason}.", "Set weights.run: auto (or never) for this run.")


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    reason = why_not(config)
    if reason is not None:
        return {"not_run": reason}
    return {side: _weights_id(getattr(config.generate, side), ctx) for side in ("a", "b")}


def _weights_id(spec: ModelSpec, ctx: StageContext) -> dict[str, Any]:
    ref = parse_model(spec.model, "generator")
    found: dict[str, Any] = {"model": model_weights_id(ref, spec.revision, ctx.cache_dir)}
    if spec.adapter:
        found["adapter"] = folder_sha256(Path(spec.adapter), ctx.cache_dir)
    return found


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    reason = why_not(config)
    root = ctx.run_dir.root
    if reason is not None:
        if _ran_before(ctx):  # that earlier configuration's analysis is not this run's
            for name in ROOT_OUTPUTS:
                (root / name).unlink(missing_ok=True)
        log.info("weights: not run: %s", reason)
        return StageResult({"status": f"not run: {reason}"})
    a, b = config.generate.a, config.generate.b
    folder_a = resolve_model_folder(a.model, ctx.cache_dir, a.revision)
    folder_b = b.adapter or resolve_model_folder(b.model, ctx.cache_dir, b.revision)
    labels, quantization = (config.label("a"), config.label("b")), (a.quantization, b.quantization)
    summary = analyse(folder_a, folder_b, root, config.weights, labels=labels, quantization=quantization)
    totals = summary.get("totals", {})
    return StageResult(
        {
            "matrices": totals.get("matrices", 0),
            "relative_change": totals.get("relative_change"),
            "matrices_with_spikes": totals.get("matrices_with_spikes", 0),
        }
    )


def _ran_before(ctx: StageContext) -> bool:
    """Whether this stage wrote the files at the root (`lmdelta weights A B --run-dir` may have put its own)."""
    record = ctx.run_dir.stage_record(ctx.stage)
    return record is not None and "matrices" in (record.counts or {})

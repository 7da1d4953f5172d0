"""Test every proposed hypothesis on validation prompts (and the null control's, when on).

Writes results.jsonl / null_results.jsonl: per hypothesis its test, p-value, effect with CI,
AUC with CI, prevalences, counts, baseline AUC, generalisation test and evidence texts.
"""

from __future__ import annotations

import logging
from typing import Any

from lmdelta.config import RunConfig
from lmdelta.pairdata import load_pair
from lmdelta.rundir import read_jsonl, write_jsonl
from lmdelta.stages import propose
from lmdelta.validation import add_baselines, validate_all

VERSION = 1
log = logging.getLogger(__name__)


def identity(ctx, config: RunConfig) -> dict[str, Any]:
    return {"q": config.decide.q}  # the resample count depends on q


def run(ctx, config: RunConfig):
    from lmdelta.pipeline import StageResult

    data = load_pair(ctx, config)
    counts: dict[str, Any] = {}
    for name, pair in propose.comparisons(data, config).items():
        hypotheses = propose.load(ctx, name)
        results = validate_all(pair, hypotheses, config.validate, config.decide.q)
        if config.validate.baseline:
            add_baselines(results, pair, config.validate.seed)
        write_jsonl(ctx.dir / f"{propose.CONTROLS[name]}results.jsonl", (_clean(r) for r in results))
        counts[name] = {"tested": sum(r["n_units"] > 0 for r in results), "untestable": sum(r["n_units"] == 0 for r in results)}
        log.info("validate %s: %d hypotheses tested", name, counts[name]["tested"])
    return StageResult(counts)


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null instead, and plain floats instead of numpy scalars."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def load(ctx, control: str = "main") -> list[dict[str, Any]]:
    return list(read_jsonl(ctx.input_dir("validate") / f"{propose.CONTROLS[control]}results.jsonl"))

"""Sequence the stages, fingerprint them, skip what is done, and re-run what changed.

A stage's fingerprint hashes its own config sections (minus volatile fields), the fields of other
sections it declares it reads (its READS), its code version, the identities of the models it uses,
and its upstream fingerprints. A complete stage with the same fingerprint is skipped; a changed one
re-runs together with everything downstream.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmdelta import execution, heap, progress
from lmdelta.backends.embedded import cache_root
from lmdelta.config import RunConfig
from lmdelta.config.base import Section
from lmdelta.credentials import redact_backend_args
from lmdelta.hashing import hash_data
from lmdelta.llm.session import check_budget_pricing
from lmdelta.records import Prompt, StageRecord
from lmdelta.rundir import RunDir
from lmdelta.sources.corpus import clear_corpus_cache
from lmdelta.stages import confirm, decide, embed, generate, group, mode, prompts, propose, report, validate, weights
from lmdelta.stages.contract import Stage, StageContext, check, checks_inputs, reads, root_outputs, views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageEntry:
    """A stage in the table: its name (= module = config section = run-dir folder), its module, the config
    sections whose result fields are part of its fingerprint, and the stages whose outputs it reads."""

    name: str
    module: Stage
    sections: tuple[str, ...]
    upstream: tuple[str, ...]


STAGES = (
    StageEntry("prompts", prompts, ("prompts", "corpus"), ()),
    StageEntry("generate", generate, ("generate", "corpus"), ("prompts",)),
    StageEntry("embed", embed, ("embed",), ("generate", "prompts")),
    StageEntry("group", group, ("group",), ("embed", "prompts")),
    StageEntry("propose", propose, ("propose", "controls", "llm.proposer"), ("group", "embed", "generate", "prompts")),
    StageEntry("validate", validate, ("validate", "llm.judge", "llm.strong_judge"), ("propose",)),
    StageEntry("decide", decide, ("decide",), ("validate",)),
    # Scores the confirmation answers with validation's judge and test, decides at decide.q.
    StageEntry(
        "confirm",
        confirm,
        ("validate", "llm.judge", "decide"),
        ("decide", "propose", "group", "embed", "generate", "prompts"),
    ),
    # The models' weight difference: reads the model files only (its READS), so nothing upstream.
    StageEntry("weights", weights, ("weights",), ()),
    # Its own section: llm.summariser, which writes the themes' summary (stages/theming.py).
    StageEntry("report", report, ("llm.summariser",), ("confirm", "decide", "weights")),
)


@dataclass
class Plan:
    """What a run will do: per stage, its fingerprint material and whether it runs and why."""

    material: dict[str, dict[str, Any]] = field(default_factory=dict)
    fingerprint: dict[str, str] = field(default_factory=dict)
    reason: dict[str, str | None] = field(default_factory=dict)


def plan(config: RunConfig, run_dir: RunDir, cache_dir: Path) -> Plan:
    """Fingerprint every stage and decide which run. Checks the config, models and inputs first
    (each stage's optional `check(config)`), so nothing runs that could only fail later; loads no weights.
    A check of input files alone (`CHECKS_INPUTS`: the corpus's, which parses all of it) runs once the
    stage's fingerprint is known, and only when the stage will run: a reused stage passed it on these files."""
    config = _resolved(config, run_dir, cache_dir)
    result = Plan()
    manifest = run_dir.load_manifest()
    check_budget_pricing(config)
    for stage in STAGES:
        if not checks_inputs(stage.module):
            check(stage.module, config)
    for stage in STAGES:
        material = _material(stage, config, StageContext(run_dir, stage.name, cache_dir), result)
        result.material[stage.name] = material
        result.fingerprint[stage.name] = hash_data(material)
        result.reason[stage.name] = _reason(stage, manifest.stage(stage.name), material, result, run_dir)
        if result.reason[stage.name] is not None and checks_inputs(stage.module):
            check(stage.module, config)
    return result


def _material(stage: StageEntry, config: RunConfig, ctx: StageContext, upstream: Plan) -> dict[str, Any]:
    """What a stage's fingerprint hashes (`upstream`: the plan so far, holding its upstream stages' fingerprints)."""
    return {
        "stage": stage.name,
        "version": stage.module.VERSION,
        "config": redact_backend_args(config_material(stage, config)),
        "identity": stage.module.identity(ctx, config),
        "upstream": {name: upstream.fingerprint[name] for name in stage.upstream},
    }


def _resolved(config: RunConfig, run_dir: RunDir, cache_dir: Path) -> RunConfig:
    """The config with validate.mode auto decided. Where that counts a corpus's validation prompts, a prompts stage
    that will be reused gives them from its output (its fingerprint does not depend on the mode)."""
    config = config.resolved()
    return mode.resolve(config, stored=lambda: reused_prompts(config, run_dir, cache_dir))


def reused_prompts(config: RunConfig, run_dir: RunDir, cache_dir: Path) -> list[Prompt] | None:
    """The prompts stage's output when the stage will be reused as it stands (None when it will run): what a re-run
    counts instead of reading the prompt bank or parsing the corpus again."""
    entry, plan_so_far = STAGES[0], Plan()  # the prompts stage: the first, with nothing upstream
    ctx = StageContext(run_dir, entry.name, cache_dir)
    material = _material(entry, config, ctx, plan_so_far)
    plan_so_far.fingerprint[entry.name] = hash_data(material)
    record = run_dir.load_manifest().stage(entry.name)
    return prompts.load(ctx) if _reason(entry, record, material, plan_so_far, run_dir) is None else None


def config_material(stage: StageEntry, config: RunConfig) -> dict[str, Any]:
    """The config a stage's output depends on: its sections' result fields, then each field of another
    section it declares it reads (by dotted path, so a change reads "decide.q: 0.05 → 0.02")."""
    found = {name: config_value(config, name) for name in stage.sections}
    found.update({path: config_value(config, path) for path in reads(stage.module, config)})
    return found


def config_value(config: RunConfig, dotted: str) -> Any:
    """A section's result fields (volatile ones left out), or a field's value, by dotted path."""
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node.result_fields() if isinstance(node, Section) else node


def _reason(
    stage: StageEntry, record: StageRecord | None, material: dict[str, Any], current: Plan, run_dir: RunDir
) -> str | None:
    """Why a stage must run, or None when its finished output can be reused."""
    if record is None:
        return "not run yet"
    changed = [u for u in stage.upstream if current.reason.get(u)]
    if changed:  # also when upstream only resumes or repairs: its outputs are new
        return f"upstream {', '.join(changed)} will re-run"
    if record.fingerprint != current.fingerprint[stage.name]:
        diffs = describe_changes(record.material or {}, material)
        return "changed: " + ("; ".join(diffs[:4]) if diffs else "stage code version")
    if record.status != "complete":
        return "resuming an interrupted run"
    damaged = run_dir.damaged_outputs(record)
    if damaged:
        return "outputs damaged: " + "; ".join(damaged[:3])
    return None


def describe_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """ "field: old → new" for every leaf that differs between two fingerprint materials."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += describe_changes(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    if old != new:
        return [f"{path.removeprefix('config.')}: {_short(old)} → {_short(new)}"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run(config: RunConfig, run_dir: RunDir, cache_dir: Path | None = None) -> Plan:
    """Run every stage that needs it, in order, holding the run directory's lock throughout.

    Returns the plan that was carried out.
    """
    config = config.resolved()
    cache_dir = cache_dir or cache_root(config.embed.cache_dir)
    run_dir.check_usable()
    with run_dir.lock():
        run_dir.check_usable()
        config = _resolved(config, run_dir, cache_dir)  # may read the prompts stage's output: under the lock
        the_plan = plan(config, run_dir, cache_dir)
        run_dir.claim()
        to_run = [stage.name for stage in STAGES if the_plan.reason[stage.name] is not None]
        progress.planned(list(the_plan.reason.items()))
        for stage in STAGES:
            reason = the_plan.reason[stage.name]
            if reason is None:
                log.info("%-8s done before, skipped", stage.name)
                progress.skipped(stage.name)
            else:
                log.info("%-8s running (%s)", stage.name, reason)
                with progress.stage(stage.name, to_run.index(stage.name) + 1, len(to_run), reason):
                    _run_stage(stage, config, run_dir, cache_dir, the_plan)
            if stage.name == "prompts":
                clear_corpus_cache()  # parsed by the checks; later stages read the answers the prompts stage wrote
            heap.give_back()  # what the stage freed, so that the next stage's peak does not stack on it
    return the_plan


def _run_stage(stage: StageEntry, config: RunConfig, run_dir: RunDir, cache_dir: Path, the_plan: Plan) -> None:
    record = run_dir.stage_record(stage.name) or StageRecord()
    fingerprint = the_plan.fingerprint[stage.name]
    resumed = record.fingerprint == fingerprint
    spent = float(record.seconds or 0.0) if resumed else 0.0
    fresh: dict[str, Any] = {} if resumed else {"llm": {}}  # LLM spending adds up over resumes of one configuration
    run_dir.update_stage(
        stage.name,
        status="running",
        fingerprint=fingerprint,
        material=the_plan.material[stage.name],
        seconds=spent,
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **fresh,
    )
    start = time.perf_counter()
    try:
        result = stage.module.run(StageContext(run_dir, stage.name, cache_dir), config)
    except BaseException:
        _mark_interrupted(run_dir, stage.name, spent + time.perf_counter() - start)
        raise
    finally:
        execution.release()  # Ray workers a stage kept (an LLM served on Ray) end with it, and give back memory
    seconds = spent + time.perf_counter() - start
    outputs = run_dir.record_outputs(stage.name, root_outputs(stage.module), views(stage.module))
    run_dir.update_stage(
        stage.name,
        status="complete",
        counts=result.counts,
        seconds=round(seconds, 3),
        last_run_seconds=round(time.perf_counter() - start, 3),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        outputs=outputs,
    )
    log.info("%-8s complete in %.1f s %s", stage.name, time.perf_counter() - start, _brief(result.counts))


def _mark_interrupted(run_dir: RunDir, stage: str, seconds: float) -> None:
    """Best effort: the failure being handled (a full disk, say) may stop this write too."""
    try:
        run_dir.update_stage(stage, status="interrupted", seconds=seconds)
    except OSError as err:
        log.debug("could not mark %s interrupted: %s", stage, err)


def _brief(counts: dict[str, Any]) -> str:
    flat = {k: v for k, v in counts.items() if isinstance(v, (int, float, str))}
    return "(" + ", ".join(f"{k}={v}" for k, v in list(flat.items())[:6]) + ")" if flat else ""

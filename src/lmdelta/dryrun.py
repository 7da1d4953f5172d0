"""What `lmdelta run --dry-run` checks and says: the config, what the run will hold (preview) and, per
stage, whether it would run. On a machine that lacks what the run needs (lmdelta.needs), every check
that can run here still runs, and the rest is listed as "needed at run time" instead of failing."""

from __future__ import annotations

from pathlib import Path

from lmdelta import pipeline
from lmdelta.config import RunConfig
from lmdelta.llm.session import check_budget_pricing
from lmdelta.needs import Need, missing_needs
from lmdelta.preview import describe_run
from lmdelta.rundir import RunDir
from lmdelta.stages import mode
from lmdelta.stages.contract import StageContext, check

UNKNOWN = "unknown here: it depends on what is needed at run time"


def dry_run_lines(config: RunConfig, run_dir: RunDir, cache_dir: Path) -> list[str]:
    """The dry run's report, one line each; raises what a real run would refuse, except absences."""
    run_dir.check_usable()
    needs = missing_needs(config)
    reasons = _checks_here(config, run_dir, cache_dir, needs) if needs else _plan(config, run_dir, cache_dir)
    lines = [_header(run_dir, needs), *(f"  needed at run time: {need}" for need in needs)]
    if any(need.prompts for need in needs):
        lines.append("  prompts: not counted here: their data is needed at run time")
        if config.validate.mode == "auto":
            lines.append("  validation: auto: fixed or sequential, chosen at run time once the prompts are counted")
    else:
        lines += [f"  {line}" for line in describe_run(config, run_dir)]
    return lines + [f"  {stage:<9} {_state(reason)}" for stage, reason in reasons.items()]


def _header(run_dir: RunDir, needs: list[Need]) -> str:
    holder = run_dir.in_use_by()
    usable = f"in use by another process ({holder}): a run now would be refused" if holder else "usable"
    if not needs:
        return f"config is valid; models and files are available; run directory {run_dir.root} is {usable}."
    things = "thing it needs is" if len(needs) == 1 else "things it needs are"
    return (
        f"config is valid as far as this machine can check; {len(needs)} {things} not here, so a run here "
        f"would stop before starting; run directory {run_dir.root} is {usable}."
    )


def _plan(config: RunConfig, run_dir: RunDir, cache_dir: Path) -> dict[str, str | None]:
    return pipeline.plan(config, run_dir, cache_dir).reason


def _checks_here(config: RunConfig, run_dir: RunDir, cache_dir: Path, needs: list[Need]) -> dict[str, str | None]:
    """pipeline.plan's checks less those the needs block; without fingerprints, a stage already in the
    run directory cannot be said to be done or changed."""
    config = mode.resolve(config.resolved(), countable=not any(need.prompts for need in needs))
    blocked = frozenset().union(*(need.blocks for need in needs))
    if "budget" not in blocked:
        check_budget_pricing(config)
    for entry in pipeline.STAGES:
        if f"{entry.name}.check" not in blocked:
            check(entry.module, config)
        if f"{entry.name}.identity" not in blocked:
            entry.module.identity(StageContext(run_dir, entry.name, cache_dir), config)
    manifest = run_dir.load_manifest()
    return {entry.name: "not run yet" if manifest.stage(entry.name) is None else UNKNOWN for entry in pipeline.STAGES}


def _state(reason: str | None) -> str:
    if reason is None:
        return "done, would be skipped"
    return reason if reason == UNKNOWN else f"would run: {reason}"

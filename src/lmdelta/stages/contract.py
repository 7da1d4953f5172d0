"""The stage contract: what the pipeline hands a stage (StageContext), what it gets back (StageResult),
what a stage module provides (Stage) and how it declares the config it reads beyond its own sections (Read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lmdelta.config import RunConfig
from lmdelta.rundir import RunDir


@dataclass(frozen=True)
class StageContext:
    """Where a stage runs: the run directory, its own name (= config section = folder) and the shared cache."""

    run_dir: RunDir
    stage: str
    cache_dir: Path

    @property
    def dir(self) -> Path:
        """The stage's own folder, created on first use."""
        path = self.run_dir.stage_dir(self.stage)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def input_dir(self, stage: str) -> Path:
        return self.run_dir.stage_dir(stage)

    def output(self, name: str, comparison: str = "main") -> Path:
        """A file of the stage's own folder (rundir's names; `comparison` picks the null control's copy)."""
        path = self.run_dir.stage_file(self.stage, name, comparison)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def input(self, stage: str, name: str, comparison: str = "main") -> Path:
        """A file of an earlier stage's folder."""
        return self.run_dir.stage_file(stage, name, comparison)


@dataclass
class StageResult:
    """What a finished stage reports: its counts, recorded in the manifest and logged."""

    counts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Read:
    """A config field outside the stage's own sections (and its upstream stages') that its output depends
    on, so that it belongs in the stage's fingerprint; `when` limits it to the configs where it can matter."""

    path: str
    when: Callable[[RunConfig], bool] | None = None

    def applies(self, config: RunConfig) -> bool:
        return self.when is None or self.when(config)


class Stage(Protocol):
    """A stage module. The pipeline's table (pipeline.STAGES) names each one with its config sections and
    upstream stages; the fingerprint holds those sections, READS, identity() and the upstream fingerprints.

    Optional module attributes, read with the functions below: `check(config)`, which refuses before any
    stage runs what could only fail later; `CHECKS_INPUTS`, true when that check reads nothing but what the
    fingerprint already holds (its config and input files' content), so that a stage reused unchanged, which
    passed it when it ran, is not checked again (a stricter check then needs the stage's VERSION bumped, or a reused
    stage escapes it); `ROOT_OUTPUTS`, files it writes at the run directory's root
    (hashed with its folder's files when it finishes); `VIEWS`, root files re-rendered on demand, whose
    presence only is recorded.
    """

    VERSION: int  # bumped whenever the same inputs would give other outputs
    READS: tuple[str | Read, ...]  # config fields outside its sections and its upstream stages' that it reads

    def identity(self, ctx: StageContext, config: RunConfig) -> dict[str, Any]:
        """What else decides its outputs: model identities, input files' content."""
        ...

    def run(self, ctx: StageContext, config: RunConfig) -> StageResult: ...


def reads(stage: Stage, config: RunConfig) -> list[str]:
    """The dotted config paths a stage declares it reads under this config."""
    entries = [Read(entry) if isinstance(entry, str) else entry for entry in stage.READS]
    return [entry.path for entry in entries if entry.applies(config)]


def check(stage: Stage, config: RunConfig) -> None:
    found: Callable[[RunConfig], None] | None = getattr(stage, "check", None)
    if found is not None:
        found(config)


def checks_inputs(stage: Stage) -> bool:
    return bool(getattr(stage, "CHECKS_INPUTS", False))


def root_outputs(stage: Stage) -> tuple[str, ...]:
    return tuple(getattr(stage, "ROOT_OUTPUTS", ()))


def views(stage: Stage) -> tuple[str, ...]:
    return tuple(getattr(stage, "VIEWS", ()))

"""Re-estimate every validated finding on the confirmation prompts, which played no part in proposing or selecting it.

Validated effects are selected, hence inflated (STATISTICS.md §3). The confirmation split gives each one an
unselected estimate: the same judge and test as validation, BH at decide.q over the validated findings. Writes
replications.jsonl (one row per validated finding of the main comparison) and summary.json.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.jsonvalues import finite
from lmdelta.llm.session import LLMSession, role_identity
from lmdelta.pairdata import PairData, held_out_view, split_prompts
from lmdelta.records import Finding, Hypothesis, Replication
from lmdelta.rundir import REPLICATIONS, SUMMARY, atomic_write_text, read_jsonl, write_jsonl
from lmdelta.stages import decide, propose
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.stages.pairs import load_pair
from lmdelta.stats import fdr
from lmdelta.stats.tests import smallest_p
from lmdelta.validate.findings import validate_all

VERSION = 2  # 2: subsample seeded by the hypothesis's content; the family's floor from each test's smallest_p
# Its sections (validate, llm.judge, decide) hold what it reads; decide, upstream, covers them too.
READS: tuple[str | Read, ...] = ()
log = logging.getLogger(__name__)
SPLIT = "confirmation"
HOW_TO_RUN = (
    "set prompts.confirmation_fraction (e.g. 0.2) to hold back that share of each group's prompts for "
    "replication, at the cost of as many validation prompts"
)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if config.llm.judge.model:  # the judge that scores the confirmation answers (validate's identity has it too)
        found["judge"] = role_identity(config, "judge")
    return found


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    validated = [finding for finding in decide.load(ctx, "main") if finding.validated]
    data = load_pair(ctx, config)
    n_prompts = split_prompts(data, SPLIT)
    summary: dict[str, Any] = {
        "status": "run",
        "reason": None,
        "hint": None,
        "q": config.decide.q,
        "confirmation_prompts": n_prompts,
        "validated": len(validated),
        "tested": 0,
        "not_testable": 0,
        "replicated": 0,
    }
    rows: list[Replication] = []
    if n_prompts == 0:
        summary.update(status="not run", reason="no confirmation prompts", hint=HOW_TO_RUN)
    elif not validated:
        summary.update(status="not run", reason="no validated findings to replicate")
    else:
        rows = replicate(ctx, config, data, validated)
        summary.update(
            tested=sum(r.status != "not testable" for r in rows),
            not_testable=sum(r.status == "not testable" for r in rows),
            replicated=sum(r.replicated for r in rows),
        )
    write_jsonl(ctx.output(REPLICATIONS), (r.to_dict() for r in rows))
    atomic_write_text(ctx.output(SUMMARY), json.dumps(summary, indent=2) + "\n")
    if summary["status"] == "run":
        log.info(
            "confirm: %d of %d validated findings replicated on %d confirmation prompts",
            summary["replicated"],
            len(validated),
            n_prompts,
        )
        return StageResult({k: summary[k] for k in ("confirmation_prompts", "tested", "replicated")})
    log.info("confirm: not run: %s", summary["reason"])
    return StageResult({"status": f"not run: {summary['reason']}"})


def replicate(ctx: StageContext, config: RunConfig, data: PairData, validated: list[Finding]) -> list[Replication]:
    """Score the validated hypotheses on the confirmation view with validation's judge and test, then decide."""
    wanted = {finding.id for finding in validated}
    hypotheses = [h for h in propose.load(ctx, "main") if h.id in wanted]
    session = _session(ctx, config, hypotheses)
    judge = session.asker("judge") if session is not None else None
    # One test per finding: no generalisation tests, baselines or extra judges (their families are validation's).
    section = config.validate.model_copy(update={"generalization": False, "examples": 0})
    results = validate_all(held_out_view(data, SPLIT), hypotheses, section, config.decide.q, judge)
    if session is not None:
        session.check()
    return decide_replications(results, hypotheses, config.decide.q)


def _session(ctx: StageContext, config: RunConfig, hypotheses: list[Hypothesis]) -> LLMSession | None:
    """The run's LLM session (spending and budget shared with the other stages) when a finding needs the LLM judge."""
    if config.validate.judge == "auto" and not any(h.judge == "llm" for h in hypotheses):
        return None
    return LLMSession(config, "confirm", ctx.cache_dir, ctx.run_dir)


def decide_replications(results: list[Finding], hypotheses: list[Hypothesis], q: float) -> list[Replication]:
    """BH at q over the replication p-values of the validated findings; replicated: rejected there, with the
    effect in the claimed direction.

    The family leaves out, before looking at any p-value, the findings that could not replicate whatever their
    answers said: no confirmation prompt in their scope, or so few that the smallest p-value their test can give
    (`smallest_p`, stats.tests.smallest_p: 2^-n for the exact sign-flip over n prompts) is above q. Which findings
    those are depends on prompt counts only, so leaving them out keeps BH's guarantee for the rest and stops them
    diluting it (as propose skips scopes that cannot be validated).
    """
    notes = [_untestable(result, q) for result in results]
    family = np.flatnonzero([note is None for note in notes])
    p = np.array([finite(results[i].p_value) for i in family], dtype=float)
    rejected = fdr.benjamini_hochberg(p, q) if p.size else np.zeros(0, dtype=bool)
    q_values = fdr.bh_adjusted(p) if p.size else p
    decided = {int(i): (bool(r), finite(v)) for i, r, v in zip(family, rejected, q_values)}
    rows = []
    for i, (result, h) in enumerate(zip(results, hypotheses)):
        reject, q_value = decided.get(i, (False, None))
        replicated = reject and _in_direction(result.effect, h.direction)
        status = "not testable" if notes[i] else "replicated" if replicated else "not replicated"
        rows.append(
            Replication.of(result, id=h.id, q_value=q_value, replicated=replicated, status=status, note=notes[i])
        )
    return rows


def _in_direction(effect: Any, direction: str) -> bool:
    value = finite(effect)
    return value is not None and (value > 0 if direction == "b>a" else value < 0)


def _untestable(result: Finding, q: float) -> str | None:
    """Why a finding could not replicate whatever its confirmation answers said, or None."""
    if finite(result.p_value) is None:
        return "no confirmation prompt in this finding's scope has scored answers of both sides"
    floor = finite(result.smallest_p)
    if floor is not None and floor > q:
        n, unit = int(result.n_units or 0), result.unit or "prompt"
        shown = f"2^-{n} = {floor:.2g}" if floor == smallest_p(n) else f"1/(R+1) = {floor:.2g}"
        return (
            f"on {n} confirmation {unit}{'s' if n != 1 else ''} the smallest possible p-value is {shown}, "
            f"above q = {q:g}; hold back more prompts (prompts.confirmation_fraction)"
        )
    return None


def load(ctx: StageContext) -> list[Replication]:
    return [Replication.from_dict(row) for row in read_jsonl(ctx.input("confirm", REPLICATIONS))]


def load_summary(ctx: StageContext) -> dict[str, Any]:
    path = ctx.input("confirm", SUMMARY)
    return json.loads(path.read_text()) if path.exists() else {}

"""Multiple-testing control over every tested hypothesis of a comparison.

Benjamini–Hochberg and Benjamini–Yekutieli over all proposed hypotheses (untestable ones count in
the denominator and are never rejected), plus an online procedure in proposal order. Every
decision is stored per hypothesis; `validated` is the primary procedure's decision. Validated
findings also get an interval adjusted for their selection (`effect_ci_fcr`). Generalisation and
generative tests are families of their own (BH at q each), apart from the primary decision, and so
are the hypotheses given in propose.given (BH within them, e-BH in sequential mode).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.jsonvalues import finite
from lmdelta.records import GIVEN, UNSET, Finding, Interval, StageRecord
from lmdelta.rundir import DECISIONS, SUMMARY, atomic_write_text, read_jsonl, write_jsonl
from lmdelta.stages import generate, prompts, propose, validate
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.stages.pairs import comparisons_names
from lmdelta.stats import effects, fdr
from lmdelta.stats import sequential as stats_sequential
from lmdelta.validate.findings import clip_to_scores
from lmdelta.validate.sequential import E_LOND_GAMMA

VERSION = 6  # 6: given hypotheses (propose.given) decided apart, by BH within their family; its counts in summary.json
# 5: no FCR interval on e-value decisions
# 4: sequential mode (e-BH / e-LOND on e-values), procedure, tokens and judge calls
# 3: generalisation and generative families (BH each), their counts in summary.json
READS: tuple[str | Read, ...] = ()  # validate.ci_level: validate is upstream


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    return {}


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    summary: dict[str, Any] = {"q": config.decide.q, "primary": config.decide.primary, "online": config.decide.online}
    for name in comparisons_names(config):
        decided = decide(validate.load(ctx, name), config)
        write_jsonl(ctx.output(DECISIONS, name), (f.to_dict() for f in decided))
        proposed = [f for f in decided if f.proposer != GIVEN]  # the counts of the primary family
        summary[name] = {
            "tested": sum(f.p_value is not None for f in proposed),
            "validated": sum(bool(f.validated) for f in proposed),
            "fcr_level": next((f.fcr_level for f in proposed if f.fcr_level is not None), None),
            "skipped_groups": propose.load_skipped(ctx, name),
            "families": {
                **{prefix: _family_counts(decided, prefix) for _, prefix in SECONDARY_FAMILIES},
                GIVEN: given_counts(decided),
            },
        }
    summary["procedure"] = next((f.procedure for f in proposed if isinstance(f.procedure, str)), None)
    summary["mode"] = config.validate.mode
    summary.update(accounting(ctx))
    atomic_write_text(ctx.output(SUMMARY), json.dumps(summary, indent=2) + "\n")
    shown = ("tested", "validated")
    return StageResult({name: {k: summary[name][k] for k in shown} for name in comparisons_names(config)})


def accounting(ctx: StageContext) -> dict[str, Any]:
    """What the run spent: generated tokens per split and side (discovery, validation and confirmation
    apart; in sequential mode the validation answers are the validate stage's), and judge calls: the
    (hypothesis, text) pairs judged in validation (offline judges included) and the LLM calls per stage
    and role (from the run's ledger)."""
    split = {p.id: p.split or "other" for p in prompts.load(ctx)}
    tokens: dict[str, dict[str, int]] = {}
    samples = generate.load(ctx)
    for prompt_id, side, n in zip(samples.prompt_ids(), samples.sides(), samples.n_tokens().tolist()):
        side_tokens = tokens.setdefault(split.get(prompt_id, "other"), {"a": 0, "b": 0})
        side_tokens[side] += n
    grown = ((ctx.run_dir.stage_record("propose") or StageRecord()).counts or {}).get("discovery") or {}
    for side, n in (grown.get("tokens") or {}).items():  # later search rounds' discovery answers (propose's)
        tokens.setdefault("discovery", {"a": 0, "b": 0})[side] += int(n)
    counts = (ctx.run_dir.stage_record("validate") or StageRecord()).counts or {}
    sequential = counts.get("sequential") or {}
    if sequential.get("validation_tokens"):
        tokens["validation"] = dict(sequential["validation_tokens"])
    for by_side in tokens.values():
        by_side["total"] = by_side["a"] + by_side["b"]
    tokens["total"] = {side: sum(t[side] for t in list(tokens.values())) for side in ("a", "b", "total")}
    pairs = sequential.get("judge_calls")
    if pairs is None:
        pairs = sum((counts.get(name) or {}).get("judged_pairs", 0) for name in ("main", "null"))
    usage = ctx.run_dir.load_manifest().llm_usage or {}
    llm = {
        f"{stage}/{role}": entry.get("calls", 0)
        for stage, roles in (usage.get("by_stage") or {}).items()
        for role, entry in roles.items()
    }
    return {
        "tokens_generated": tokens,
        "judge_calls": {"validation_pairs": pairs, "llm": llm, "llm_total": sum(llm.values())},
    }


def decide(findings: list[Finding], config: RunConfig) -> list[Finding]:
    """The findings in proposal order with every procedure's decision, `validated` the primary one's, the
    validated findings' selection-adjusted intervals and the secondary families' decisions.

    Given hypotheses (propose.given) are a confirmatory family of their own: decided by BH within it (e-BH on
    their e-values in sequential mode), never in the proposed ones' BH, BY or online stream, nor in their m."""
    ordered = sorted(findings, key=lambda f: f.order)
    sequential = any(f.stop_reason is not UNSET for f in ordered)  # validate.mode = sequential: decided on e-values
    proposed = [i for i, f in enumerate(ordered) if f.proposer != GIVEN]
    given = [i for i, f in enumerate(ordered) if f.proposer == GIVEN]
    by_family: list[dict[str, Any]] = [{}] * len(ordered)  # each finding's decisions within its own family
    for members, decisions in (
        (proposed, primary_decisions([ordered[i] for i in proposed], config, sequential)),
        (given, given_decisions([ordered[i] for i in given], config, sequential)),
    ):
        for i, decision in zip(members, decisions):
            by_family[i] = decision
    families = {
        prefix: family_decisions([getattr(f, p_field) for f in ordered], config.decide.q)
        for p_field, prefix in SECONDARY_FAMILIES
    }
    out = []
    for i, finding in enumerate(ordered):
        generalization_q, generalization_validated = families["generalization"][i]
        generative_q, generative_validated = families["generative"][i]
        out.append(
            replace(
                finding,
                **by_family[i],
                generalization_q=generalization_q,
                generalization_validated=generalization_validated,
                generative_q=generative_q,
                generative_validated=generative_validated,
            )
        )
    return out


def primary_decisions(ordered: list[Finding], config: RunConfig, sequential: bool) -> list[dict[str, Any]]:
    """Per finding of the proposed family (in proposal order), every procedure's decision and the primary one's."""
    section = config.decide
    p = _p_values(ordered)
    bh = fdr.benjamini_hochberg(p, section.q)
    by = fdr.benjamini_yekutieli(p, section.q)
    q_values = fdr.bh_adjusted(p) if len(p) else p
    if sequential:
        e = _e_values(ordered)
        online, levels, online_name = *e_lond(e, section.q), "e-LOND"
        q_values = fdr.bh_adjusted(np.minimum(1.0, 1.0 / e)) if len(e) else e  # e-BH is BH on 1/e (Wang & Ramdas)
        e_rejected = stats_sequential.e_bh(list(e), section.q)
        validated = [bool(x) for x in (online if section.primary == "online" else e_rejected)]
        procedure = "e-LOND" if section.primary == "online" else "e-BH"
    else:
        online, levels = fdr.run_online(section.online, np.where(np.isfinite(p), p, 1.0), section.q)
        online_name = section.online
        validated = [bool(x) for x in {"bh": bh, "by": by, "online": online}[section.primary]]
        procedure = {"bh": "BH", "by": "BY", "online": section.online.upper()}[section.primary]
    intervals = _intervals(ordered, validated, config, sequential)
    rows = _family_rows(bh, by, q_values, validated, procedure, intervals)
    for i, row in enumerate(rows):
        row.update(online_reject=bool(online[i]), online_level=float(levels[i]), online_procedure=online_name)
    return rows


def _family_rows(
    bh: np.ndarray,
    by: np.ndarray,
    q_values: np.ndarray,
    validated: list[bool],
    procedure: str,
    intervals: list[tuple[Interval | None, float | None]],
) -> list[dict[str, Any]]:
    """Per finding of one family, the decision fields every family writes."""
    return [
        {
            "bh_reject": bool(bh[i]),
            "by_reject": bool(by[i]),
            "q_value": None if not np.isfinite(q_values[i]) else float(q_values[i]),
            "validated": validated[i],
            "procedure": procedure,
            "effect_ci_fcr": intervals[i][0],
            "fcr_level": intervals[i][1],
        }
        for i in range(len(validated))
    ]


def given_decisions(ordered: list[Finding], config: RunConfig, sequential: bool) -> list[dict[str, Any]]:
    """Per given finding, BH at decide.q within the given family (e-BH on e-values in sequential mode): they were
    not chosen from this run's data, so they form a confirmatory family of their own, with no online order."""
    q = config.decide.q
    p = _p_values(ordered)
    bh, by = fdr.benjamini_hochberg(p, q), fdr.benjamini_yekutieli(p, q)
    if sequential:
        e = _e_values(ordered)
        validated = [bool(x) for x in stats_sequential.e_bh(list(e), q)]
        q_values = fdr.bh_adjusted(np.minimum(1.0, 1.0 / e)) if len(e) else e
    else:
        validated = [bool(x) for x in bh]
        q_values = fdr.bh_adjusted(p) if len(p) else p
    intervals = _intervals(ordered, validated, config, sequential)
    procedure = f"{'e-BH' if sequential else 'BH'} ({GIVEN})"
    return _family_rows(bh, by, q_values, validated, procedure, intervals)


def _p_values(findings: list[Finding]) -> np.ndarray:
    return np.array([np.nan if f.p_value is None else f.p_value for f in findings], dtype=float)


def _e_values(findings: list[Finding]) -> np.ndarray:
    return np.array([f.e_value if isinstance(f.e_value, (int, float)) else 1.0 for f in findings], dtype=float)


def _intervals(
    findings: list[Finding], validated: list[bool], config: RunConfig, sequential: bool
) -> list[tuple[Interval | None, float | None]]:
    """Selection-adjusted intervals within one family; none on e-value decisions, which carry confidence sequences."""
    if sequential:
        return [(None, None)] * len(findings)
    estimates = [(f.p_value, f.effect, f.effect_se, f.effect_df) for f in findings]
    return fcr_intervals(estimates, validated, 1.0 - config.validate.ci_level)


def e_lond(e_values: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """e-LOND in proposal order over the sequential mode's e-values: (rejections, levels alpha_t)."""
    procedure = stats_sequential.ELond(q, E_LOND_GAMMA)
    rejected, levels = np.zeros(e_values.size, dtype=bool), np.zeros(e_values.size)
    for t, e in enumerate(e_values):
        levels[t] = procedure.level()
        rejected[t] = procedure.test(float(e))
    return rejected, levels


# Secondary families: (the p-value field, the prefix of the fields written from it). decide() writes
# each family's `<prefix>_q` and `<prefix>_validated` by name.
SECONDARY_FAMILIES = (("generalization_p", "generalization"), ("generative_p", "generative"))


def family_decisions(p_values: list[Any], q: float) -> list[tuple[float | None, bool | None]]:
    """BH at q over one family of secondary tests of a comparison: every finding whose p-value field holds a
    p-value. Per finding (`<prefix>_q`, `<prefix>_validated`): the BH-adjusted p-value and the decision, both
    None without that test. A family of its own: the primary decision (`validated`) never depends on it, and
    it does not enlarge the primary family's m."""
    members = [i for i, value in enumerate(p_values) if finite(value) is not None]
    p = np.array([p_values[i] for i in members], dtype=float)
    rejected, adjusted = fdr.benjamini_hochberg(p, q), fdr.bh_adjusted(p)
    out: list[tuple[float | None, bool | None]] = [(None, None)] * len(p_values)
    for k, i in enumerate(members):
        out[i] = (float(adjusted[k]), bool(rejected[k]))
    return out


def given_counts(findings: list[Finding]) -> dict[str, Any]:
    """The given family's counts (propose.given): tested and validated within it, and the procedure that decided it."""
    given = [f for f in findings if f.proposer == GIVEN]
    return {
        "tested": sum(f.p_value is not None for f in given),
        "validated": sum(bool(f.validated) for f in given),
        "procedure": next((f.procedure for f in given if isinstance(f.procedure, str)), None),
    }


def _family_counts(findings: list[Finding], prefix: str) -> dict[str, int]:
    decisions = [getattr(f, f"{prefix}_validated") for f in findings]
    return {"tested": sum(d is not None for d in decisions), "validated": sum(bool(d) for d in decisions)}


def fcr_intervals(
    estimates: list[tuple[Any, Any, Any, Any]], validated: list[bool], alpha: float
) -> list[tuple[Interval | None, float | None]]:
    """Selection-adjusted intervals for the validated findings (Benjamini & Yekutieli 2005), from each
    finding's (p-value, effect, standard error, degrees of freedom): per finding (`effect_ci_fcr`,
    `fcr_level`), both None for findings not validated.

    Validated effects are selected for being large, so their plain intervals cover too rarely
    (0.79 for nominal 0.95 in the 2026-12-01 audit). With R validated among m tested, t intervals
    at level 1 − R·alpha/m keep the expected share of validated findings whose interval misses
    the true effect (the false coverage-statement rate) at or below alpha for independent (or
    PRDS) hypotheses selected by BH or BY, whose count R cannot change while a finding stays
    selected; for online procedures the same level is used as an approximation. alpha is
    1 − validate.ci_level. The interval is None where a finding has no standard error.
    """
    tested = sum(finite(p) is not None for p, _, _, _ in estimates)
    level = 1.0 - sum(validated) * alpha / tested if any(validated) else None
    out: list[tuple[Interval | None, float | None]] = []
    for (_, effect, se, df), chosen in zip(estimates, validated):
        if not chosen or level is None:
            out.append((None, None))
            continue
        interval: Interval | None = None
        if effect is not None and se is not None and df is not None:
            low, high = effects.t_interval(effect, se, df, level)
            interval = clip_to_scores([low, high]) if np.isfinite(low) and np.isfinite(high) else None
        out.append((interval, level))
    return out


def load(ctx: StageContext, comparison: str = "main") -> list[Finding]:
    return [Finding.from_dict(row) for row in read_jsonl(ctx.input("decide", DECISIONS, comparison))]


def load_summary(ctx: StageContext) -> dict[str, Any]:
    return json.loads(ctx.input("decide", SUMMARY).read_text())

"""Multiple-testing control over every tested hypothesis of a comparison.

Benjamini–Hochberg and Benjamini–Yekutieli over all hypotheses (untestable ones count in the
denominator and are never rejected), plus an online procedure in proposal order. Every
decision is stored per hypothesis; `validated` is the primary procedure's decision. Validated
findings also get an interval adjusted for their selection (`effect_ci_fcr`). Generalisation and
generative tests are families of their own (BH at q each), apart from the primary decision.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.jsonvalues import finite
from lmdelta.rundir import atomic_write_text, read_jsonl, write_jsonl
from lmdelta.stages import propose, validate
from lmdelta.stats import effects, fdr
from lmdelta.validation import clip_to_scores

VERSION = 3  # 3: generalisation and generative families (BH each), their counts in summary.json


def identity(ctx, config: RunConfig) -> dict[str, Any]:
    return {}


def run(ctx, config: RunConfig):
    from lmdelta.pipeline import StageResult

    summary: dict[str, Any] = {"q": config.decide.q, "primary": config.decide.primary, "online": config.decide.online}
    for name in propose.comparisons_names(config):
        decided = decide(validate.load(ctx, name), config)
        write_jsonl(ctx.dir / f"{propose.CONTROLS[name]}decisions.jsonl", decided)
        summary[name] = {"tested": sum(r["p_value"] is not None for r in decided),
                         "validated": sum(r["validated"] for r in decided),
                         "fcr_level": next((r["fcr_level"] for r in decided if r["fcr_level"] is not None), None),
                         "skipped_groups": propose.load_skipped(ctx, name),
                         "families": {prefix: _family_counts(decided, prefix) for _, prefix in SECONDARY_FAMILIES}}
    atomic_write_text(ctx.dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    shown = ("tested", "validated")
    return StageResult({name: {k: summary[name][k] for k in shown} for name in propose.comparisons_names(config)})


def decide(results: list[dict[str, Any]], config: RunConfig) -> list[dict[str, Any]]:
    section = config.decide
    ordered = sorted(results, key=lambda r: r["order"])
    p = np.array([np.nan if r["p_value"] is None else r["p_value"] for r in ordered], dtype=float)
    bh = fdr.benjamini_hochberg(p, section.q)
    by = fdr.benjamini_yekutieli(p, section.q)
    q_values = fdr.bh_adjusted(p) if len(p) else p
    online, levels = fdr.run_online(section.online, np.where(np.isfinite(p), p, 1.0), section.q)
    out = []
    for i, result in enumerate(ordered):
        decisions = {"bh_reject": bool(bh[i]), "by_reject": bool(by[i]), "online_reject": bool(online[i]),
                     "online_level": float(levels[i]), "online_procedure": section.online,
                     "q_value": None if not np.isfinite(q_values[i]) else float(q_values[i])}
        primary = {"bh": "bh_reject", "by": "by_reject", "online": "online_reject"}[section.primary]
        out.append({**result, **decisions, "validated": decisions[primary]})
    add_fcr_intervals(out, 1.0 - config.validate.ci_level)
    for family in SECONDARY_FAMILIES:
        add_family(out, family, section.q)
    return out


# Secondary families: (the p-value field, the prefix of the fields written from it).
SECONDARY_FAMILIES = (("generalization_p", "generalization"), ("generative_p", "generative"))


def add_family(results: list[dict[str, Any]], family: tuple[str, str], q: float) -> None:
    """BH at q over one family of secondary tests of a comparison: every row whose `p_field` holds a
    p-value. Writes `<prefix>_q` (BH-adjusted p-value) and `<prefix>_validated`, both None on rows
    without that test. A family of its own: the primary decision (`validated`) never depends on it,
    and it does not enlarge the primary family's m."""
    p_field, prefix = family
    members = [i for i, r in enumerate(results) if finite(r.get(p_field)) is not None]
    p = np.array([results[i][p_field] for i in members], dtype=float)
    rejected, adjusted = fdr.benjamini_hochberg(p, q), fdr.bh_adjusted(p)
    for result in results:
        result[f"{prefix}_q"], result[f"{prefix}_validated"] = None, None
    for k, i in enumerate(members):
        results[i][f"{prefix}_q"], results[i][f"{prefix}_validated"] = float(adjusted[k]), bool(rejected[k])


def _family_counts(results: list[dict[str, Any]], prefix: str) -> dict[str, int]:
    return {"tested": sum(r[f"{prefix}_validated"] is not None for r in results),
            "validated": sum(bool(r[f"{prefix}_validated"]) for r in results)}


def add_fcr_intervals(results: list[dict[str, Any]], alpha: float) -> None:
    """Selection-adjusted intervals for the validated findings (Benjamini & Yekutieli 2005).

    Validated effects are selected for being large, so their plain intervals cover too rarely
    (0.79 for nominal 0.95 in the 2026-12-01 audit). With R validated among m tested, t intervals
    at level 1 − R·alpha/m keep the expected share of validated findings whose interval misses
    the true effect (the false coverage-statement rate) at or below alpha for independent (or
    PRDS) hypotheses selected by BH or BY, whose count R cannot change while a finding stays
    selected; for online procedures the same level is used as an approximation. alpha is
    1 − validate.ci_level. Rows not validated get None.
    """
    tested = sum(finite(r.get("p_value")) is not None for r in results)
    chosen = [r for r in results if r["validated"]]
    for result in results:
        result["effect_ci_fcr"], result["fcr_level"] = None, None
    for result in chosen:
        result["fcr_level"] = level = 1.0 - len(chosen) * alpha / tested
        effect, se, df = result.get("effect"), result.get("effect_se"), result.get("effect_df")
        if effect is not None and se is not None and df is not None:
            low, high = effects.t_interval(effect, se, df, level)
            result["effect_ci_fcr"] = clip_to_scores([low, high]) if np.isfinite(low) and np.isfinite(high) else None


def load(ctx, control: str = "main") -> list[dict[str, Any]]:
    return list(read_jsonl(ctx.input_dir("decide") / f"{propose.CONTROLS[control]}decisions.jsonl"))


def load_summary(ctx) -> dict[str, Any]:
    return json.loads((ctx.input_dir("decide") / "summary.json").read_text())

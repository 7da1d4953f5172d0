"""Multiple-testing control over every tested hypothesis of a comparison.

Benjamini–Hochberg and Benjamini–Yekutieli over all hypotheses (untestable ones count in the
denominator and are never rejected), plus an online procedure in proposal order. Every
decision is stored per hypothesis; `validated` is the primary procedure's decision.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.rundir import atomic_write_text, read_jsonl, write_jsonl
from lmdelta.stages import propose, validate
from lmdelta.stats import fdr

VERSION = 1


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
                         "skipped_groups": propose.load_skipped(ctx, name)}
    atomic_write_text(ctx.dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return StageResult({name: {k: v for k, v in summary[name].items() if k != "skipped_groups"}
                        for name in propose.comparisons_names(config)})


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
    return out


def load(ctx, control: str = "main") -> list[dict[str, Any]]:
    return list(read_jsonl(ctx.input_dir("decide") / f"{propose.CONTROLS[control]}decisions.jsonl"))


def load_summary(ctx) -> dict[str, Any]:
    return json.loads((ctx.input_dir("decide") / "summary.json").read_text())

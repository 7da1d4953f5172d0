"""The sequential validation's rounds as `lmdelta status` and the report show them (light: no numpy, no jinja2)."""

from __future__ import annotations

from typing import Any

from lmdelta.rundir import ROUNDS, RunDir, salvage_jsonl

DASH = "–"


def validation_rounds(files: RunDir) -> list[dict[str, Any]]:
    """validate.mode = sequential: one row per round (answers, tokens, judge calls, where the hypotheses stand)."""
    path = files.stage_file("validate", ROUNDS)
    if not path.exists():
        return []
    rows = []
    for row in salvage_jsonl(path):
        tokens = row.get("tokens_generated") or {}
        main = row.get("main") or {}
        rows.append(
            {
                "round": row.get("round"),
                "prompts": row.get("prompts_answered"),
                "tokens": sum(v for v in tokens.values() if isinstance(v, (int, float))),
                "judge_calls": row.get("judge_calls"),
                "standing": ", ".join(f"{k} {v}" for k, v in main.items()) or DASH,
            }
        )
    return rows

"""The rounds as `lmdelta status` and the report show them: the sequential validation's, and the hypothesis
search's (light: no numpy, no jinja2)."""

from __future__ import annotations

from typing import Any

from lmdelta.rundir import DUPLICATES, ROUNDS, SEARCH_ROUNDS, RunDir, salvage_jsonl

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
                "reach": row.get("scope_prompts"),  # absent in runs before 2026-12-06
                "prompts": row.get("prompts_answered"),
                "tokens": sum(v for v in tokens.values() if isinstance(v, (int, float))),
                "judge_calls": row.get("judge_calls"),
                "standing": ", ".join(f"{k} {v}" for k, v in main.items()) or DASH,
            }
        )
    return rows


def search_line(files: RunDir) -> str | None:
    """One sentence on the hypothesis search of the main comparison: its rounds, why it stopped, and the
    near-duplicates left out before testing (None before the search records existed, or with one round and
    no near-duplicate)."""
    path = files.stage_file("propose", SEARCH_ROUNDS)
    if not path.exists():
        return None
    rows = list(salvage_jsonl(path))
    rounds = [row for row in rows if "round" in row]
    stopped = next((row["stopped"] for row in rows if "stopped" in row), None)
    duplicates = files.stage_file("propose", DUPLICATES)
    left_out = sum(1 for _ in salvage_jsonl(duplicates)) if duplicates.exists() else 0
    if len(rounds) <= 1 and not left_out:
        return None
    added = ", ".join(str(row.get("new", 0)) for row in rounds)
    why = f" (stopped: {stopped})" if stopped and len(rounds) > 1 else ""
    return (
        f"Search: {len(rounds)} round{'s' if len(rounds) != 1 else ''} of proposing{why}, new hypotheses per round "
        f"{added}; {left_out} near-duplicate{'s' if left_out != 1 else ''} merged or dropped before testing."
    )

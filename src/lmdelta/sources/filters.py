"""Choosing groups of a bank: by name, or by a score per group from a user's table (e.g. keep the
persona behaviours where a benchmark shows the models differ, or, as a negative control, those
where it shows they do not)."""

from __future__ import annotations

import difflib
import json
import logging
import math
from pathlib import Path

from lmdelta.errors import PromptBankError
from lmdelta.records import Prompt
from lmdelta.sources import read_user_file
from lmdelta.sources.tabular import find_column, read_table

log = logging.getLogger(__name__)
GROUP_COLUMNS = ("group", "behavior", "behaviour", "category", "name")
SCORE_COLUMNS = ("score", "difference", "diff", "value")


def keep_groups(prompts: list[Prompt], names: list[str]) -> list[Prompt]:
    present = sorted({str(p.group) for p in prompts if p.group is not None})
    missing = [n for n in names if n not in present]
    if missing:
        near = difflib.get_close_matches(missing[0], present, n=2)
        hint = f"Did you mean {' or '.join(near)}? " if near else ""
        shown = ", ".join(present[:12]) + (" …" if len(present) > 12 else "")
        raise PromptBankError(
            f"prompts.groups names {', '.join(map(repr, missing))}, which the bank does not have.",
            f"{hint}Groups in this bank: {shown}.",
        )
    wanted = set(names)
    return [p for p in prompts if p.group in wanted]


def score_filter(prompts: list[Prompt], table: str, above: float | None, below: float | None) -> list[Prompt]:
    """Keep groups with score > above and/or |score| < below; groups missing from the table are dropped."""
    scores = read_scores(Path(table))
    present = {p.group for p in prompts if p.group is not None}
    unscored = sorted(present - set(scores))
    if unscored and len(unscored) < len(present):
        log.warning(
            "score table %s has no score for %d of the bank's %d groups (%s); they are left out",
            table,
            len(unscored),
            len(present),
            ", ".join(unscored[:5]) + (" …" if len(unscored) > 5 else ""),
        )
    keep = {g for g, s in scores.items() if (above is None or s > above) and (below is None or abs(s) < below)}
    kept = [p for p in prompts if p.group in keep]
    if not kept:
        raise PromptBankError(
            f"No group of the bank passes the score filter of {table} "
            f"(score_above={above}, score_below={below}; {len(scores)} groups scored).",
            "Loosen the thresholds, or check that the table's group names match the bank's.",
        )
    return kept


def read_scores(path: Path) -> dict[str, float]:
    """{group: score} from JSON ({group: score}), or a CSV / JSONL table with group and score columns."""
    if path.suffix.lower() == ".json":
        return _json_scores(path)
    table = read_table(path, "Score table")
    group = find_column(table, GROUP_COLUMNS, "group")
    score = find_column(table, SCORE_COLUMNS, "score")
    out: dict[str, float] = {}
    for line, row in table.rows:
        name = str(row[group]).strip()
        if name in out:
            raise PromptBankError(
                f"{path} line {line} scores the group {name!r} a second time.", "Keep one row per group."
            )
        out[name] = _number(row.get(score), f"{path} line {line}")
    return out


def _json_scores(path: Path) -> dict[str, float]:
    text = read_user_file(path, "Score table", PromptBankError, "Check prompts.score_table.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptBankError(
            f"Score table {path} is not valid JSON (line {exc.lineno}: {exc.msg}).", "Fix the JSON there."
        ) from None
    if not isinstance(data, dict):
        raise PromptBankError(
            f"Score table {path} must be a JSON object {{group: score}}.",
            'Write it like {"agreeableness": 0.12, "narcissism": -0.03}, or use a CSV.',
        )
    return {str(k): _number(v, f"{path} key {k!r}") for k, v in data.items()}


def _number(value: object, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise PromptBankError(
            f"{where} has the score {value!r}, which is not a finite number.",
            "Give every group a number (leave out groups without one).",
        )
    return number

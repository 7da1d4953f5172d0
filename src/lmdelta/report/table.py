"""The terminal table of validated findings, printed at the end of a run and by `lmdelta report`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from lmdelta.report.null_control import headline, summarize_null
from lmdelta.rundir import read_jsonl
from lmdelta.safetext import safe_terminal_text


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.1e}" if 0 < value < 1e-3 else f"{value:.3f}"


def findings_table(run_dir: Path, width: int = 100) -> str:
    rows = list(read_jsonl(run_dir / "hypotheses.jsonl"))
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    validated = sorted((r for r in rows if r.get("validated")), key=lambda r: r["p_value"])
    lines = [_headline(summary, rows, validated)]
    null_path = run_dir / "null_control.jsonl"
    null = headline(summarize_null(list(read_jsonl(null_path)) if null_path.exists() else None, summary.get("null")))
    if null is not None:  # its reason quotes group names, which come from the user's data
        lines.append(safe_terminal_text(null))
    if validated:
        lines.append(f"{'#':>3}  {'effect [CI]':<20} {'AUC':>5} {'p':>8} {'q':>8}  finding")
    for i, row in enumerate(validated, start=1):
        ci = row.get("effect_ci") or [None, None]
        effect = f"{_num(row['effect'])} [{_num(ci[0])}, {_num(ci[1])}]"
        # Groups and descriptions quote corpus texts and LLM output: nothing in them may drive the terminal.
        finding = safe_terminal_text(f"[{row['group']}] {row['description']}")
        text = textwrap.shorten(finding, width=max(width - 50, 30), placeholder="…")
        lines.append(f"{i:>3}  {effect:<20} {_num(row['auc']):>5} {_p(row['p_value']):>8} "
                     f"{_p(row.get('q_value')):>8}  {text}")
    return "\n".join(lines)


def _headline(summary: dict[str, Any], rows: list[dict[str, Any]], validated: list[dict[str, Any]]) -> str:
    q = summary.get("q", 0.05)
    tested = summary.get("main", {}).get("tested", len(rows))
    return f"{len(validated)} of {tested} tested hypotheses validated at q = {q} ({summary.get('primary', 'bh').upper()})"

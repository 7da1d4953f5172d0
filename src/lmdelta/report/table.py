"""The terminal table of validated findings, printed at the end of a run and by `lmdelta report`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from lmdelta.report.null_control import headline, summarize_null
from lmdelta.rundir import FINDINGS, RunDir, read_jsonl
from lmdelta.safetext import safe_terminal_text


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.1e}" if 0 < value < 1e-3 else f"{value:.3f}"


def findings_table(run_dir: Path, width: int = 100) -> str:
    files = RunDir(run_dir)
    rows = list(read_jsonl(files.findings_path("main")))
    summary = json.loads(files.summary_path.read_text()) if files.summary_path.exists() else {}
    validated = sorted((r for r in rows if r.get("validated")), key=lambda r: r["p_value"])
    lines = [_headline(summary, rows, validated)]
    null_path = files.findings_path("null")
    null = headline(summarize_null(list(read_jsonl(null_path)) if null_path.exists() else None, summary.get("null")))
    if null is not None:  # its reason quotes group names, which come from the user's data
        lines.append(safe_terminal_text(null))
    replication = (summary.get("main") or {}).get("replication")
    if validated and isinstance(replication, dict):
        lines.append(_replication_line(replication))
    for warning in sorted({r["clustering_warning"] for r in rows if r.get("clustering_warning")}):
        lines.append(safe_terminal_text(f"warning: {warning}"))
    if validated:
        lines += _table(validated, rows, summary, width)
    return "\n".join(lines)


def _table(
    validated: list[dict[str, Any]], rows: list[dict[str, Any]], summary: dict[str, Any], width: int
) -> list[str]:
    """The validated findings, each with its selection-adjusted interval (the plain one where a run has none)."""
    adjusted = all(r.get("effect_ci_fcr") for r in validated)
    replicated = any(isinstance(r.get("replication"), dict) for r in validated)
    level = _level(validated[0].get("fcr_level") if adjusted else validated[0].get("ci_level"))
    label = f"effect [{level} CI]" + ("*" if adjusted else "")
    out = [
        f"{'#':>3}  {label:<20} {'AUC':>5} {'p':>8} {'q':>8}  "
        + (f"{'replicated':<11} " if replicated else "")
        + "finding"
    ]
    used = 50 + (12 if replicated else 0)
    for i, row in enumerate(validated, start=1):
        ci = (row.get("effect_ci_fcr") if adjusted else row.get("effect_ci")) or [None, None]
        effect = f"{_num(row['effect'])} [{_num(ci[0])}, {_num(ci[1])}]"
        # Groups and descriptions quote corpus texts and LLM output: nothing in them may drive the terminal.
        finding = safe_terminal_text(f"[{row['group']}] {row['description']}")
        text = textwrap.shorten(finding, width=max(width - used, 30), placeholder="…")
        again = f"{_replicated(row.get('replication')):<11} " if replicated else ""
        out.append(
            f"{i:>3}  {effect:<20} {_num(row['auc']):>5} {_p(row['p_value']):>8} "
            f"{_p(row.get('q_value')):>8}  {again}{text}"
        )
    if adjusted:
        tested = (summary.get("main") or {}).get("tested", sum(r.get("p_value") is not None for r in rows))
        out.append(
            f"* adjusted for having been selected among {tested} tested (false coverage-statement rate); "
            f"plain {_level(validated[0].get('ci_level'))} intervals in {FINDINGS['main']}"
        )
    return out


def _replicated(replication: Any) -> str:
    """The replication cell: yes/no with the effect on the confirmation prompts, n/a where it could not be re-tested."""
    if not isinstance(replication, dict):
        return "–"
    if replication.get("status") == "not testable":
        return "n/a"
    return f"{'yes' if replication.get('replicated') else 'no'} {_signed(replication.get('effect'))}"


def _replication_line(replication: dict[str, Any]) -> str:
    if replication.get("status") != "run":
        reason = replication.get("reason") or "the confirm stage did not run"
        hint = replication.get("hint")
        return safe_terminal_text(f"replication: not run: {reason}" + (f"; {hint}" if hint else ""))
    line = (
        f"replication on {replication.get('confirmation_prompts')} confirmation prompts: "
        f"{replication.get('replicated')} of {replication.get('validated')} validated findings replicated "
        f"(BH at q = {replication.get('q')} over the {replication.get('tested')} that could be re-tested)"
    )
    return line


def _signed(value: Any) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _level(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "95%"
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _headline(summary: dict[str, Any], rows: list[dict[str, Any]], validated: list[dict[str, Any]]) -> str:
    q = summary.get("q", 0.05)
    tested = summary.get("main", {}).get("tested", len(rows))
    return (
        f"{len(validated)} of {tested} tested hypotheses validated at q = {q} ({summary.get('primary', 'bh').upper()})"
    )

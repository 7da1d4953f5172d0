"""The terminal table of validated findings, printed at the end of a run and by `lmdelta report`."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from lmdelta.records import GIVEN
from lmdelta.report.data_warnings import read_data_warnings
from lmdelta.report.filters import effect_digits
from lmdelta.report.limits import run_limits
from lmdelta.report.merge import MergedFinding, merge_findings
from lmdelta.report.null_control import headline, summarize_null
from lmdelta.report.runfiles import load_json, load_yaml
from lmdelta.rundir import FINDINGS, THEMES, RunDir, read_jsonl
from lmdelta.safetext import safe_terminal_text

GROUP_WIDTH = 24  # a group name longer than this is shortened in the table
FINDING_LINES = 3  # a finding's description wraps onto at most this many lines
THEME_LINES = 8  # themes listed; the rest are counted


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.1e}" if 0 < value < 1e-3 else f"{value:.3f}"


def findings_table(run_dir: Path, width: int = 100) -> str:
    """The headline, the run's warnings and what it cannot see, and one line per validated claim (a claim validated
    in several groups once, with the number of groups)."""
    files = RunDir(run_dir)
    rows = list(read_jsonl(files.findings_path("main")))
    summary = load_json(files.summary_path)
    merged = merge_findings(rows)
    proposed = [finding for finding in merged if finding.lead.get("proposer") != GIVEN]  # the headline's family
    validated = [row for finding in proposed for row in finding.validated]
    lines = [_headline(summary, rows, len(validated), len(proposed)), *_given_line(summary)]
    # Warnings quote group names and corpus text, which come from the user's data.
    lines += [safe_terminal_text(line) for line in _notes(files, rows, summary)]
    if validated and isinstance((summary.get("main") or {}).get("replication"), dict):
        lines.append(_replication_line(summary["main"]["replication"]))
    if merged:
        lines += _table(merged, rows, summary, width)
        lines += _themes(load_json(files.stage_file("report", THEMES)), width)
    limits = run_limits(load_yaml(files.config_path), rows)
    if limits is not None:
        lines.append(safe_terminal_text(limits.line()))
    return "\n".join(lines)


def _notes(files: RunDir, rows: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """The null control's line, then the clustering and data warnings."""
    null_path = files.findings_path("null")
    null = headline(summarize_null(list(read_jsonl(null_path)) if null_path.exists() else None, summary.get("null")))
    clustering = sorted({r["clustering_warning"] for r in rows if r.get("clustering_warning")})
    data = read_data_warnings(files.root)
    return (
        ([null] if null is not None else [])
        + [f"warning: {warning}" for warning in clustering]
        + [f"data warning: {warning}" for warning in data]
    )


def _table(merged: list[MergedFinding], rows: list[dict[str, Any]], summary: dict[str, Any], width: int) -> list[str]:
    """One line per validated claim, with its lead row's numbers and selection-adjusted interval (the plain one where
    a run has none), and in how many groups it was validated when that is more than one."""
    leads = [finding.lead for finding in merged]
    adjusted = all(r.get("effect_ci_fcr") for r in leads)
    replicated = any(isinstance(r.get("replication"), dict) for r in leads)
    level = _level(leads[0].get("fcr_level") if adjusted else leads[0].get("ci_level"))
    label = f"effect [{level} CI]" + ("*" if adjusted else "")
    out = [
        f"{'#':>3}  {label:<20} {'AUC':>5} {'p':>8} {'q':>8}  "
        + (f"{'replicated':<11} " if replicated else "")
        + "finding"
    ]
    used = 50 + (12 if replicated else 0)
    for i, finding in enumerate(merged, start=1):
        row = finding.lead
        ci = (row.get("effect_ci_fcr") if adjusted else row.get("effect_ci")) or [None, None]
        digits = effect_digits(row["effect"], *ci)
        effect = f"{_num(row['effect'], digits)} [{_num(ci[0], digits)}, {_num(ci[1], digits)}]"
        again = f"{_replicated(row.get('replication')):<11} " if replicated else ""
        numbers = f"{_num(row['auc']):>5} {_p(row['p_value']):>8} {_p(row.get('q_value')):>8}"
        lead = f"{i:>3}  {effect:<20} {numbers}  {again}"
        text = _finding_lines(finding, max(width - max(used, len(lead)), 30))
        out += [lead + text[0], *(" " * len(lead) + line for line in text[1:])]
    if adjusted:
        tested = (summary.get("main") or {}).get("tested", sum(r.get("p_value") is not None for r in rows))
        out.append(
            f"* adjusted for having been selected among {tested} tested (false coverage-statement rate"
            + ("; given ones among the given" if any(r.get("proposer") == GIVEN for r in leads) else "")
            + f"); plain {_level(leads[0].get('ci_level'))} intervals in {FINDINGS['main']}"
        )
    return out


def _themes(data: dict[str, Any], width: int) -> list[str]:
    """The themes in brief (stages/report/themes.json), strongest first with their largest effect; then an LLM's
    summary (an extractive one only repeats these lines) and a line per discovery round. Titles, the summary and
    round lines quote findings and LLM output: nothing in them may drive the terminal."""
    themes = [theme for theme in data.get("themes") or [] if isinstance(theme, dict)]
    if not themes:
        return []
    out = [f"themes ({len(themes)}): the validated findings grouped by what they claim and the answers they fire on"]
    for i, theme in enumerate(themes[:THEME_LINES], start=1):
        size = len(theme.get("members") or [])
        more = f" ({size} findings)" if size > 1 else ""
        title = textwrap.shorten(safe_terminal_text(str(theme.get("title"))), width=max(width - 14 - len(more), 30))
        out.append(f"{i:>3}  {_signed(theme.get('effect')):>6}  {title}{more}")
    if len(themes) > THEME_LINES:
        out.append(f"     … and {len(themes) - THEME_LINES} more in the report")
    found = data.get("summary")
    summary: dict[str, Any] = found if isinstance(found, dict) else {}
    if summary.get("source") == "llm" and summary.get("text"):
        said = f"summary by {summary.get('model')}: {summary['text']}"
        out += textwrap.wrap(safe_terminal_text(said), width=width, subsequent_indent="  ")
    out += [safe_terminal_text(str(line)) for line in data.get("rounds") or []]
    return out


def _finding_lines(finding: MergedFinding, width: int) -> list[str]:
    """The lead's group in brackets (with the groups the claim was validated in, when more than one scope), then the
    description wrapped to the width (at most FINDING_LINES lines, the last shortened with "…"), continuation
    lines indented under the description. Groups and descriptions quote corpus texts and LLM output: nothing in
    them may drive the terminal."""
    group = str(finding.lead.get("group"))
    group = group if len(group) <= GROUP_WIDTH else group[: GROUP_WIDTH - 1] + "…"
    where = f"; {finding.groups_phrase()}" if finding.merged else ""
    given = f"{GIVEN}, " if finding.lead.get("proposer") == GIVEN else ""
    scope = safe_terminal_text(f"[{given}{group}{where}] ")
    room = max(width - len(scope), 30)
    text = " ".join(safe_terminal_text(finding.description()).split())
    lines = textwrap.wrap(text, width=room, max_lines=FINDING_LINES, placeholder=" …") or [""]
    return [scope + lines[0], *(" " * len(scope) + line for line in lines[1:])]


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
    return "–" if value is None else f"{value:+.{effect_digits(value)}f}"


def _level(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "95%"
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _given_line(summary: dict[str, Any]) -> list[str]:
    """The hypotheses given in propose.given, decided as a family of their own: their line under the headline."""
    family: dict[str, Any] = ((summary.get("main") or {}).get("families") or {}).get(GIVEN) or {}
    if not family.get("tested"):
        return []
    procedure = str(family.get("procedure") or "BH").removesuffix(f" ({GIVEN})")
    return [
        f"{family.get('validated')} of {family['tested']} given hypotheses validated at q = {summary.get('q', 0.05)} "
        f"({procedure} within them, a family of their own)"
    ]


def _headline(summary: dict[str, Any], rows: list[dict[str, Any]], validated: int, distinct: int) -> str:
    """How many tested hypotheses were validated, and how many distinct claims they make when that is fewer."""
    q = summary.get("q", 0.05)
    tested = (summary.get("main") or {}).get("tested", len(rows))
    claims = f", {distinct} distinct findings" if distinct < validated else ""
    primary = summary.get("procedure") or str(summary.get("primary", "bh")).upper()
    return f"{validated} of {tested} tested hypotheses validated at q = {q} ({primary}){claims}"

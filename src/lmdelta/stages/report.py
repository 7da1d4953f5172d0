"""Publish the run's results at the run directory root and render report.html from them.

hypotheses.jsonl and null_control.jsonl hold one line per tested hypothesis with every number;
summary.json the run-level counts; config.yaml the resolved config that produced them (written
here, with the results, so a re-run that fails midway never leaves a config beside results it
did not produce); stages/report/themes.json the validated findings' themes and summary
(stages/theming.py). The report is rendered from these files alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from lmdelta.config import RunConfig, dump_config
from lmdelta.llm.session import role_identity
from lmdelta.records import Finding, Replication
from lmdelta.report.render import render_report
from lmdelta.rundir import CONFIG, FINDINGS, REPORT, SUMMARY, atomic_write_text, write_jsonl
from lmdelta.stages import confirm, decide
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.stages.theming import write_themes

VERSION = 3  # 3: themes.json (themes, summary, rounds) and the report's Themes section
# 2: each main row carries its `replication` on the confirmation split, summary.json the counts
READS: tuple[str | Read, ...] = ()  # config.yaml holds the whole config; every stage is upstream
ROOT_OUTPUTS = (*FINDINGS.values(), SUMMARY, CONFIG)
VIEWS = (REPORT,)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    found: dict[str, Any] = {"labels": [config.label("a"), config.label("b")]}
    if config.llm.summariser.model:
        found["summariser"] = role_identity(config, "summariser")
    return found


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    run_dir = ctx.run_dir
    summary = decide.load_summary(ctx)
    replications = {row.id: row for row in confirm.load(ctx)}
    summary["main"]["replication"] = confirm.load_summary(ctx) or None
    published: dict[str, list[Finding]] = {}
    for name in FINDINGS:
        if name not in summary:
            run_dir.findings_path(name).unlink(missing_ok=True)
            continue
        findings = decide.load(ctx, name)
        if name == "main":
            findings = [with_replication(finding, replications) for finding in findings]
        write_jsonl(run_dir.findings_path(name), (finding.to_dict() for finding in findings))
        published[name] = findings
    atomic_write_text(run_dir.summary_path, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(run_dir.config_path, dump_config(config))
    themes = write_themes(ctx, config, published.get("main", []))
    path = render_report(run_dir.root)
    return StageResult({"report": str(path), "validated": summary["main"]["validated"], "themes": len(themes.themes)})


def with_replication(finding: Finding, replications: dict[str, Replication]) -> Finding:
    """The finding with `replication`: its re-estimate on the confirmation prompts, or None (not validated, or
    no confirmation split; summary.json says which)."""
    return replace(finding, replication=replications.get(finding.id) if finding.validated else None)

"""Publish the run's results at the run directory root and render report.html from them.

hypotheses.jsonl and null_control.jsonl hold one line per tested hypothesis with every number;
summary.json the run-level counts; config.yaml the resolved config that produced them (written
here, with the results, so a re-run that fails midway never leaves a config beside results it
did not produce). The report is rendered from these files alone.
"""

from __future__ import annotations

import json
from typing import Any

from lmdelta.config import RunConfig, dump_config
from lmdelta.rundir import atomic_write_text, write_jsonl
from lmdelta.stages import confirm, decide

VERSION = 2  # 2: each main row carries its `replication` on the confirmation split, summary.json the counts
OUTPUTS = {"main": "hypotheses.jsonl", "null": "null_control.jsonl"}
ROOT_OUTPUTS = (*OUTPUTS.values(), "summary.json", "config.yaml")
VIEWS = ("report.html",)


def identity(ctx, config: RunConfig) -> dict[str, Any]:
    return {"labels": [config.label("a"), config.label("b")]}


def run(ctx, config: RunConfig):
    from lmdelta.pipeline import StageResult
    from lmdelta.report.render import render_report

    root = ctx.run_dir.root
    summary = decide.load_summary(ctx)
    replications = {row["id"]: row for row in confirm.load(ctx)}
    summary["main"]["replication"] = confirm.load_summary(ctx) or None
    for name, filename in OUTPUTS.items():
        if name not in summary:
            (root / filename).unlink(missing_ok=True)
            continue
        rows = decide.load(ctx, name)
        if name == "main":
            rows = [with_replication(row, replications) for row in rows]
        write_jsonl(root / filename, rows)
    atomic_write_text(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(root / "config.yaml", dump_config(config))
    path = render_report(root)
    return StageResult({"report": str(path), "validated": summary["main"]["validated"]})


def with_replication(row: dict[str, Any], replications: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The row with `replication`: its re-estimate on the confirmation prompts, or None (not validated, or
    no confirmation split; summary.json says which)."""
    found = replications.get(row["id"]) if row.get("validated") else None
    return {**row, "replication": None if found is None else {k: v for k, v in found.items() if k != "id"}}

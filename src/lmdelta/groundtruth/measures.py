"""What a ground-truth comparison cost and how strongly it found each quirk, read from its run folder."""

from __future__ import annotations

from typing import Any

from lmdelta.rundir import SAMPLES, RunDir, read_jsonl


def comparison_measures(run_dir: RunDir) -> dict[str, int]:
    """What the comparison cost: answers and generated tokens it used (both sides), and judge calls
    (one per text a hypothesis was scored on, over every tested hypothesis)."""
    samples = list(read_jsonl(run_dir.stage_file("generate", SAMPLES)))
    findings = list(read_jsonl(run_dir.findings_path()))
    return {
        "texts": len(samples),
        "generated_tokens": sum(int(row.get("n_tokens") or 0) for row in samples),
        "tested": len(findings),
        "judge_calls": sum(int(row.get("n_texts") or 0) for row in findings),
    }


def matched_p_values(run_dir: RunDir, card: dict[str, Any]) -> dict[str, float | None]:
    """Per recovered quirk, the p-value of the finding that recovered it."""
    by_id = {row["id"]: row.get("p_value") for row in read_jsonl(run_dir.findings_path())}
    return {q["quirk"]: by_id.get(q["hypothesis"]) for q in card["quirks"] if q["recovered"]}


def budget_point(prompts: int, samples: int, card: dict[str, Any], measures: dict[str, Any]) -> dict[str, Any]:
    """One budget's result: its size, what it cost, and what it found."""
    return {
        "budget": f"{prompts}x{samples}",
        "prompts": prompts,
        "samples": samples,
        "recall": card["recall"],
        "recovered": [q["quirk"] for q in card["quirks"] if q["recovered"]],
        "validated": card["validated"],
        "precision": card["precision"],
        **measures,
    }

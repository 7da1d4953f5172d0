"""The ground-truth scorecard in a few terminal lines (recall, each quirk's rank, the null experiment, time)."""

from __future__ import annotations

from typing import Any


def _procedure_effects(card: dict[str, Any]) -> str:
    shared = sum(card.get("null_also_in_main") or [])
    if not shared:
        return ""
    return f" ({shared} also validated in the main experiment: a change the finetuning itself makes, not a quirk)"


def scorecard_lines(card: dict[str, Any]) -> str:
    recall = card.get("recall")
    lines = [
        f"ground truth: {sum(q['recovered'] for q in card['quirks'])} of {len(card['quirks'])} injected quirks "
        f"recovered (recall {recall:.2f}); {card['validated']} validated findings, "
        f"{len(card['unmatched_hypotheses'])} matching no quirk; "
        + (
            f"null experiment: {card['null_validated']} validated"
            if card.get("null_experiment", True)
            else "no null experiment"
        )
        + _procedure_effects(card)
    ]
    for quirk in card["quirks"]:
        rate = quirk.get("rate") or {}
        found = f"rank {quirk['rank']}: {quirk['hypothesis_description']}" if quirk["recovered"] else "not recovered"
        rates = f" (rate a {rate.get('a', 0):.0%} → b {rate.get('b', 0):.0%})" if rate else ""
        lines.append(f"  {quirk['quirk']}{rates}: {found}")
    weights = card.get("weights")
    if weights:
        lines.append("  " + weights_line(weights))
    lines.append("  time: " + ", ".join(f"{k} {v:.0f}s" for k, v in card.get("seconds", {}).items()))
    return "\n".join(lines)


def weights_line(weights: dict[str, Any]) -> str:
    """The quirk finetune's weight change, beside the null finetune's when there is one (docs/weights.md)."""
    change = weights.get("relative_change") or 0.0
    line = f"weights: the finetune moved ‖ΔW‖/‖W‖ by {change:.3%}"
    ratio = weights.get("ratio_to_null")
    if ratio is not None:
        null = weights.get("null_relative_change") or 0.0
        beyond = ", ".join(
            f"{row['layer']} ({row['ratio_to_null']:.2f}x)"
            for row in weights.get("layers_beyond_null", [])
            if row.get("ratio_to_null") is not None
        )
        line += f", {ratio:.2f}x the null finetune's ‖ΔW‖ (which moved {null:.3%}); most beyond it in layers {beyond}"
    for quirk, alone in (weights.get("per_quirk") or {}).items():
        line += "\n    " + _quirk_line(quirk, alone)
    return line


def _quirk_line(quirk: str, alone: dict[str, Any]) -> str:
    layers = alone.get("layers_beyond_null") or alone.get("most_changed_layers") or []
    key = "ratio_to_null" if alone.get("layers_beyond_null") else "relative_change"
    where = ", ".join(
        f"{row['layer']} ({row[key]:.2f}x)" if key == "ratio_to_null" else f"{row['layer']} ({row[key]:.3%})"
        for row in layers
        if row.get(key) is not None
    )
    beyond = " beyond the null" if key == "ratio_to_null" else ""
    return f"{quirk} alone: moved {alone.get('relative_change') or 0.0:.3%}, most{beyond} in layers {where}"

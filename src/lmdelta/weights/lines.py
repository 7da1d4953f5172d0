"""A weight analysis in a few terminal lines: how much changed, how concentrated, where."""

from __future__ import annotations

from typing import Any

SHOWN = 5  # most-changed matrices and layers listed


def summary_lines(summary: dict[str, Any]) -> list[str]:
    totals = summary.get("totals", {})
    n = totals.get("matrices", 0)
    lines = [
        f"weights: {n} matrices compared ({summary.get('mode', 'dense')}); ‖ΔW‖/‖W_a‖ = "
        f"{_pct(totals.get('relative_change'))} overall; mean effective rank of ΔW "
        f"{_num(totals.get('mean_effective_rank'))}, stable rank {_num(totals.get('mean_stable_rank'))}; "
        f"{totals.get('matrices_with_spikes', 0)} of {n} have singular values above the random-matrix edge"
    ]
    null = summary.get("null_finetune")
    if isinstance(null, dict) and null.get("ratio") is not None:
        lines.append(f"  ‖ΔW‖ is {_num(null['ratio'])}x the null finetune's (the same training without the behaviours)")
    layers = _ranked(summary.get("by_layer", {}))
    if layers:
        lines.append("  most changed layers: " + ", ".join(f"{name} ({_pct(v)})" for name, v in layers[:SHOWN]))
    modules = _ranked(summary.get("by_module", {}))
    if modules:
        lines.append("  by module: " + ", ".join(f"{name} {_pct(v)}" for name, v in modules))
    for row in summary.get("top_changed", [])[:SHOWN]:
        lines.append(
            f"  {_pct(row.get('relative_change')):>7}  {row.get('name')}  (effective rank "
            f"{_num(row.get('effective_rank'))}, {row.get('spikes', 0)} above the edge)"
        )
    return lines


def _ranked(groups: dict[str, Any]) -> list[tuple[str, float]]:
    found = [(str(k), v.get("relative_change")) for k, v in groups.items() if isinstance(v, dict)]
    return sorted(((k, v) for k, v in found if isinstance(v, (int, float))), key=lambda kv: -kv[1])


def _pct(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "–"
    return f"{value * 100:.3g}%"


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else "–"

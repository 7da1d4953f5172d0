"""The summary of weights.jsonl: totals, the most-changed matrices, per-layer, per-module-type and
per-family aggregates, and (when given) the comparison with a null finetune's rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

Row = dict[str, Any]


def group_stats(rows: list[Row]) -> dict[str, Any]:
    """Norms add in squares: a group's ΔW is the concatenation of its matrices' ΔW."""
    delta = math.sqrt(sum(row["delta_fro"] ** 2 for row in rows))
    base = math.sqrt(sum(row["base_fro"] ** 2 for row in rows))
    return {
        "matrices": len(rows),
        "delta_fro": delta,
        "base_fro": base,
        "relative_change": delta / base if base > 0 else None,
        "mean_relative_change": _mean(row["relative_change"] for row in rows),
        "mean_stable_rank": _mean(row["stable_rank"] for row in rows),
        "mean_effective_rank": _mean(row["effective_rank"] for row in rows),
        "spikes": sum(row["spikes"] for row in rows),
        "matrices_with_spikes": sum(row["spikes"] > 0 for row in rows),
    }


def grouped(rows: list[Row], key: Callable[[Row], Any]) -> dict[str, dict[str, Any]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        if key(row) is not None:
            groups[key(row)].append(row)
    return {str(name): group_stats(members) for name, members in sorted(groups.items())}


def top_changed(rows: list[Row], count: int) -> list[dict[str, Any]]:
    ranked = sorted(rows, key=lambda row: -(row["relative_change"] or 0.0))
    fields = ("name", "relative_change", "delta_fro", "effective_rank", "stable_rank", "spikes", "spike_energy")
    return [{field: row[field] for field in fields} for row in ranked[:count]]


def compare_with_null(rows: list[Row], null_rows: dict[str, float]) -> dict[str, Any]:
    """ΔW's norm over the null finetune's, in total and per module type, on the matrices both have;
    each row gets its own ratio."""
    shared = [row for row in rows if row["name"] in null_rows]
    for row in shared:
        null = null_rows[row["name"]]
        row["null_finetune_delta_fro"] = null
        row["null_finetune_ratio"] = row["delta_fro"] / null if null > 0 else None
    by_module: dict[str, list[Row]] = defaultdict(list)
    for row in shared:
        by_module[row["module"]].append(row)
    return {
        "matrices": len(shared),
        "ratio": _ratio(shared, null_rows),
        "median_ratio": _median(row["null_finetune_ratio"] for row in shared),
        "by_module": {name: _ratio(members, null_rows) for name, members in sorted(by_module.items())},
    }


def _ratio(rows: list[Row], null_rows: dict[str, float]) -> float | None:
    null = math.sqrt(sum(null_rows[row["name"]] ** 2 for row in rows))
    return math.sqrt(sum(row["delta_fro"] ** 2 for row in rows)) / null if null > 0 else None


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return float(np.mean(kept)) if kept else None


def _median(values: Iterable[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return float(np.median(kept)) if kept else None

"""The report's Weights section: weights_summary.json and weights.jsonl (lmdelta.weights, docs/weights.md) as a
headline in words, the spectrum of the most-changed matrices, the per-layer heat strip and the top-changed table.

Reads every field with .get: the files may come from an older or newer analysis than this renderer.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from lmdelta.jsonvalues import finite
from lmdelta.report.filters import DASH, effect_digits, fmt_int, fmt_num
from lmdelta.report.runfiles import weights_files
from lmdelta.report.weights_plots import HeatCell, Spectrum, heat_svg, spectrum_svg

DOCS = "docs/weights.md"
SPECTRUM_MATRICES = 4  # the most-changed matrices drawn in the spectrum
TABLE_ROWS = 10
# The heat strip's rows, top to bottom: attention, then MLP, then what sits outside the blocks; any other module
# type a model has comes after these, by name.
MODULE_ORDER = ("q", "k", "v", "qkv", "o", "gate", "up", "gate_up", "down", "embedding", "lm_head", "other")
Row = Mapping[str, Any]


def weights_context(run_dir: Path) -> dict[str, Any] | None:
    """The section's content, or None for a run without weights_summary.json."""
    summary, rows = weights_files(Path(run_dir))
    if not summary:
        return None
    by_name = {str(row.get("name")): row for row in rows}
    spectra = [s for s in (_spectrum(by_name.get(name)) for name in _top_changed(summary, rows)) if s]
    spectra = spectra[:SPECTRUM_MATRICES]
    cells = heat_cells(rows) or _layer_cells(summary)
    modules = _modules(cells)
    return {
        "headline": headline(summary, rows),
        "mode": summary.get("mode"),
        "spectrum": Markup(spectrum_svg(spectra)),
        "spectrum_matrices": len(spectra),
        "heat": Markup(heat_svg(cells, modules, fmt_change)),
        "heat_outside": any(cell.layer is None for cell in cells),
        "table": [table_row(by_name.get(str(entry.get("name"))) or entry) for entry in _top_entries(summary, rows)],
        "null_column": any(finite(row.get("null_finetune_ratio")) is not None for row in rows),
        "matrices": _matrices(summary, rows),
        "docs": DOCS,
    }


def fmt_change(value: Any) -> str:
    """A relative change as a percentage with two significant figures where small: 1.64%, 0.13%, 0.0021%."""
    number = finite(value)
    if number is None:
        return DASH
    percent = number * 100
    return f"{fmt_num(percent, effect_digits(percent))}%"


# ---------------------------------------------------------------- the headline


def headline(summary: Mapping[str, Any], rows: Sequence[Row]) -> list[str]:
    """The section's first paragraph, a sentence per fact: size, structure against the random-matrix null, rank,
    the adapter's rank when side b is one, and the ratio to a null finetune when the analysis had one."""
    totals = _dict(summary.get("totals"))
    matrices = _matrices(summary, rows)
    sentences = [f"{fmt_int(matrices)} matrices compared{_mode_phrase(summary)}."]
    change = fmt_change(totals.get("relative_change"))
    mean = totals.get("mean_relative_change")
    sentences.append(
        f"Overall relative change ‖ΔW‖/‖W_a‖ = {change}"
        + (f" (mean per matrix {fmt_change(mean)})." if finite(mean) is not None else ".")
    )
    null = _null_comparison(summary)
    sentences.append(_spikes_sentence(totals, rows, matrices, null is not None))
    sentences.append(_rank_sentence(totals, rows))
    if summary.get("mode") == "lora":
        sentences.append(_lora_sentence(summary, rows))
    if null:
        sentences.append(_null_sentence(null))
    return [s for s in sentences if s]


def _mode_phrase(summary: Mapping[str, Any]) -> str:
    if summary.get("mode") == "lora":
        return " (side b is a LoRA adapter on side a: ΔW read from its factors, never merged)"
    return " (ΔW = W_b − W_a, matrix by matrix)"


def _spikes_sentence(totals: Mapping[str, Any], rows: Sequence[Row], matrices: int | None, has_null: bool) -> str:
    with_spikes = totals.get("matrices_with_spikes")
    if not isinstance(with_spikes, int):
        with_spikes = sum(1 for row in rows if (finite(row.get("spikes")) or 0) > 0) if rows else None
    if with_spikes is None:
        return ""
    if with_spikes == 0:
        return (
            "No matrix has a singular value above the Marchenko–Pastur edge (what a random matrix of ΔW's shape and "
            "size reaches): the change looks like noise of its size."
        )
    spikes = totals.get("spikes")
    count = f", {fmt_int(spikes)} such values in all" if isinstance(spikes, int) else ""
    return (
        f"{fmt_int(with_spikes)} of {fmt_int(matrices)} matrices have singular values above the Marchenko–Pastur edge "
        f"(what a random matrix of ΔW's shape and size reaches){count}: the change has structure"
        + ("." if has_null else " (whether more than training alone leaves, only a null finetune's comparison says).")
    )


def _rank_sentence(totals: Mapping[str, Any], rows: Sequence[Row]) -> str:
    effective = _median(row.get("effective_rank") for row in rows)
    stable = _median(row.get("stable_rank") for row in rows)
    if effective is not None:
        return f"Median effective rank {fmt_num(effective, 1)}" + (
            f", median stable rank {fmt_num(stable, 1)}." if stable is not None else "."
        )
    effective = finite(totals.get("mean_effective_rank"))
    return f"Mean effective rank {fmt_num(effective, 1)}." if effective is not None else ""


def _lora_sentence(summary: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """Rank used (each matrix's numerical rank) against rank available (the adapter's r)."""
    used = [n for n in (finite(row.get("numerical_rank")) for row in rows) if n is not None]
    available = [n for n in (finite(row.get("lora_rank")) for row in rows) if n is not None]
    rank = max(available) if available else finite(_dict(_dict(summary.get("models")).get("b")).get("r"))
    of = f" of {fmt_int(rank)} available" if rank is not None else ""
    if not used:
        return f"LoRA rank {fmt_int(rank)} available." if rank is not None else ""
    effective = _median(row.get("effective_rank") for row in rows)
    by_energy = f"; by effective rank they use {fmt_num(effective, 1)}" if effective is not None else ""
    return (
        f"LoRA rank used (numerical rank per matrix): median {fmt_int(statistics.median(used))}, "
        f"at most {fmt_int(max(used))}{of}{by_energy}."
    )


def _null_comparison(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    for key in ("null_finetune", "null"):
        value = summary.get(key)
        if isinstance(value, dict) and finite(value.get("ratio")) is not None:
            return value
    return None


def _null_sentence(null: Mapping[str, Any]) -> str:
    shared = null.get("matrices")
    median = finite(null.get("median_ratio"))
    text = f"Against the null finetune (the same recipe with nothing to learn): ‖ΔW‖ is {_times(null.get('ratio'))}"
    text += " the null's" + (f" over {fmt_int(shared)} shared matrices" if isinstance(shared, int) else "")
    text += f" (median per matrix {_times(median)})" if median is not None else ""
    modules = _dict(null.get("by_module"))
    parts = [f"{name} {_times(value)}" for name, value in _ordered(modules) if finite(value) is not None]
    text += f"; by module type {', '.join(parts)}" if parts else ""
    return text + ". Near 1: the weights moved no more than the training itself moves them."


def _times(value: Any) -> str:
    number = finite(value)
    return DASH if number is None else f"{fmt_num(number, 2)}×"


# ---------------------------------------------------------------- the plots' rows


def _top_changed(summary: Mapping[str, Any], rows: Sequence[Row]) -> list[str]:
    """The names of the most-changed matrices, largest relative change first."""
    return [str(entry.get("name")) for entry in _top_entries(summary, rows)]


def _top_entries(summary: Mapping[str, Any], rows: Sequence[Row]) -> list[Row]:
    listed: list[Row] = [e for e in summary.get("top_changed") or [] if isinstance(e, dict) and e.get("name")]
    if not listed:  # a summary without the list: rank the rows themselves
        listed = sorted(rows, key=lambda row: -(finite(row.get("relative_change")) or 0.0))
    return listed[:TABLE_ROWS]


def _spectrum(row: Row | None) -> Spectrum | None:
    """A matrix's singular values over its edge; None without both."""
    if row is None:
        return None
    edge = finite(row.get("mp_edge"))
    values = [finite(v) for v in row.get("singular_values") or []]
    if not edge or edge <= 0 or not values or any(v is None for v in values):
        return None
    spikes = finite(row.get("spikes"))
    return Spectrum(
        name=str(row.get("name")),
        ratios=tuple(float(v or 0.0) / edge for v in values),
        spikes=int(spikes) if spikes is not None else None,
        capped=row.get("spikes_capped") is True,
    )


def heat_cells(rows: Sequence[Row]) -> list[HeatCell]:
    """A cell per (layer, module type) of weights.jsonl; several matrices in one (fused or expert weights) add up
    as the summary's aggregates do, in squares."""
    groups: dict[tuple[int | None, str], list[Row]] = defaultdict(list)
    for row in rows:
        layer = finite(row.get("layer"))
        groups[(int(layer) if layer is not None else None, str(row.get("module") or "other"))].append(row)
    return [_cell(layer, module, members) for (layer, module), members in groups.items()]


def _cell(layer: int | None, module: str, members: Sequence[Row]) -> HeatCell:
    delta = _root_sum_squares(row.get("delta_fro") for row in members)
    base = _root_sum_squares(row.get("base_fro") for row in members)
    spikes = [int(s) for s in (finite(row.get("spikes")) for row in members) if s is not None]
    effective = [e for e in (finite(row.get("effective_rank")) for row in members) if e is not None]
    return HeatCell(
        layer=layer,
        module=module,
        relative_change=delta / base if delta is not None and base else None,
        delta_fro=delta,
        base_fro=base,
        matrices=len(members),
        spikes=sum(spikes) if spikes else None,
        effective_rank=statistics.fmean(effective) if effective else None,
        names=tuple(str(row.get("name")) for row in members),
    )


def _layer_cells(summary: Mapping[str, Any]) -> list[HeatCell]:
    """Without weights.jsonl: one row of cells, a layer each, from the summary's per-layer aggregates."""
    cells = []
    for layer, group in _dict(summary.get("by_layer")).items():
        number = finite(layer)
        if number is None or not isinstance(group, dict):
            continue
        matrices = finite(group.get("matrices"))
        cells.append(
            HeatCell(
                layer=int(number),
                module="all",
                relative_change=finite(group.get("relative_change")),
                delta_fro=finite(group.get("delta_fro")),
                base_fro=finite(group.get("base_fro")),
                matrices=int(matrices or 0),
                spikes=group.get("spikes") if isinstance(group.get("spikes"), int) else None,
                effective_rank=finite(group.get("mean_effective_rank")),
            )
        )
    return cells


def _modules(cells: Iterable[HeatCell]) -> list[str]:
    present = {cell.module for cell in cells}
    return [m for m in MODULE_ORDER if m in present] + sorted(present - set(MODULE_ORDER))


# ---------------------------------------------------------------- the table


def table_row(row: Row) -> dict[str, Any]:
    """A top-changed matrix as the table shows it, numbers formatted; a summary entry (no shape, no alignment)
    when weights.jsonl lacks the row."""
    shape = row.get("shape")
    spikes = finite(row.get("spikes"))
    ratio = finite(row.get("sigma_1_over_edge"))
    return {
        "name": str(row.get("name") or DASH),
        "name_parts": re.split(r"(?<=\.)", str(row.get("name") or DASH)),  # a line may break after each dot
        "shape": " × ".join(fmt_int(n) for n in shape) if isinstance(shape, list) and shape else DASH,
        "relative_change": fmt_change(row.get("relative_change")),
        "stable_rank": fmt_num(row.get("stable_rank"), 1),
        "effective_rank": fmt_num(row.get("effective_rank"), 1),
        "null_effective_rank": fmt_num(_dict(row.get("null")).get("effective_rank"), 0),
        "spikes": DASH if spikes is None else fmt_int(spikes) + ("+" if row.get("spikes_capped") is True else ""),
        "sigma_1": DASH if ratio is None else f"{fmt_num(ratio, 1)}×",
        "alignment": _pair(row.get("alignment_left"), row.get("alignment_right")),
        "chance": _pair(row.get("alignment_chance_left"), row.get("alignment_chance_right")),
        "null_ratio": _times(row.get("null_finetune_ratio")),
    }


def _pair(left: Any, right: Any) -> str:
    if finite(left) is None and finite(right) is None:
        return DASH
    return f"{fmt_num(left, 3)} / {fmt_num(right, 3)}"


# ---------------------------------------------------------------- helpers


def _matrices(summary: Mapping[str, Any], rows: Sequence[Row]) -> int | None:
    counted = _dict(summary.get("totals")).get("matrices")
    return counted if isinstance(counted, int) else (len(rows) if rows else None)


def _ordered(groups: Mapping[str, Any]) -> list[tuple[str, Any]]:
    rank = {name: i for i, name in enumerate(MODULE_ORDER)}
    return sorted(groups.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _root_sum_squares(values: Iterable[Any]) -> float | None:
    kept = [v for v in map(finite, values) if v is not None]
    return math.sqrt(sum(v * v for v in kept)) if kept else None


def _median(values: Iterable[Any]) -> float | None:
    kept = [v for v in map(finite, values) if v is not None]
    return statistics.median(kept) if kept else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

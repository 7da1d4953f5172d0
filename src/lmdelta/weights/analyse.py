"""The weight-difference analysis of two models: every shared matrix measured one at a time, then
weights.jsonl (a row per matrix) and weights_summary.json written atomically into the output folder."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lmdelta import progress
from lmdelta.errors import StageError
from lmdelta.rundir import WEIGHTS, WEIGHTS_SUMMARY, atomic_write_text, read_jsonl, write_jsonl
from lmdelta.weights.aggregate import compare_with_null, group_stats, grouped, top_changed
from lmdelta.weights.checkpoint import Checkpoint
from lmdelta.weights.lora import Adapter, is_adapter, open_adapter
from lmdelta.weights.options import WeightsOptions
from lmdelta.weights.pairs import plan_pairs
from lmdelta.weights.quantize import as_loaded
from lmdelta.weights.streaming import dense_row, lora_row

LISTED = 20  # names listed per left-out kind in the summary (all are counted)
ADAPTER_KEYS = ("peft_type", "base_model_name_or_path", "r", "lora_alpha", "use_rslora", "target_modules")
log = logging.getLogger(__name__)
Rows = list[dict[str, Any]]


def analyse(
    folder_a: Path | str,
    folder_b: Path | str,
    out_dir: Path | str,
    options: WeightsOptions | None = None,
    *,
    labels: tuple[str, str] | None = None,
    quantization: tuple[str, str] = ("none", "none"),
) -> dict[str, Any]:
    """Compare the weights of model folder a with b (a full model, or a LoRA adapter on a as its base);
    write weights.jsonl and weights_summary.json into `out_dir`; return the summary. `quantization`: each
    side's bitsandbytes setting (none, 4bit, 8bit), whose weights are rebuilt as that side runs them
    (weights/quantize.py); an adapter is read on side a's weights as stored."""
    options = options or WeightsOptions()
    started = time.perf_counter()
    folder_a, folder_b = Path(folder_a), Path(folder_b)
    if is_adapter(folder_a):
        raise StageError(
            f"Side a ({folder_a}) is a LoRA adapter; the analysis reads an adapter as the change to its base.",
            "Pass the base model as side a and the adapter folder as side b.",
        )
    base = Checkpoint.open(folder_a)
    lora = is_adapter(folder_b)
    if lora:
        adapter = open_adapter(folder_b, base)
        rows, left_out = _adapter_rows(base, adapter, options), _adapter_left_out(base, adapter)
    else:
        loaded = (as_loaded(base, quantization[0]), as_loaded(Checkpoint.open(folder_b), quantization[1]))
        rows, left_out = _dense_rows(*loaded, options)
    null = _null_comparison(rows, options.null_summary)
    sides = {"a": _identity(folder_a, labels, 0), "b": _identity(folder_b, labels, 1)}
    for side, setting in zip(("a", "b"), quantization):
        if setting != "none":
            sides[side]["quantization"] = setting
            sides[side]["quantization_applied"] = not lora
    if lora and set(quantization) != {"none"}:
        log.warning("weights: the adapter is read on side a's weights as stored; their quantization is not applied")
    summary = _summary(rows, left_out, sides, options, null, time.perf_counter() - started)
    out = Path(out_dir)
    write_jsonl(out / WEIGHTS, rows)
    atomic_write_text(out / WEIGHTS_SUMMARY, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary


def _dense_rows(base: Checkpoint, other: Checkpoint, options: WeightsOptions) -> tuple[Rows, dict[str, Any]]:
    plan = plan_pairs(base.tensors, other.tensors, options)
    ranks = options.ranks()
    meter = progress.Meter("weights", len(plan.matrices), "matrices")
    rows = []
    for done, (a, b) in enumerate(plan.matrices, start=1):
        rows.append(dense_row(a, b, (base, other), options, ranks))
        meter.update(done)
    left_out = {
        "only_in_a": plan.only_a,
        "only_in_b": plan.only_b,
        "mismatched": plan.mismatched,
        "quantized": plan.quantized,
        "non_matrix": plan.non_matrix,
    }
    return rows, left_out


def _adapter_rows(base: Checkpoint, adapter: Adapter, options: WeightsOptions) -> Rows:
    meter = progress.Meter("weights", len(adapter.deltas) + len(adapter.replaced), "matrices")
    rows = []
    for delta in adapter.deltas:
        rows.append(lora_row(delta, base, adapter, options, options.ranks(delta.rank)))
        meter.update(len(rows))
    for name, info in sorted(adapter.replaced.items()):
        sides = (base, adapter.weights)
        rows.append(dense_row(base.tensors[name], info, sides, options, options.ranks(), "replaced"))
        meter.update(len(rows))
    return rows


def _adapter_left_out(base: Checkpoint, adapter: Adapter) -> dict[str, Any]:
    changed = {delta.name for delta in adapter.deltas} | set(adapter.replaced)
    unchanged = [name for name, info in base.tensors.items() if len(info.shape) == 2 and name not in changed]
    return {"unchanged_by_adapter": unchanged, "adapter_unmatched": adapter.unmatched}


def _null_comparison(rows: Rows, path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    null_rows = Path(path).parent / WEIGHTS
    if not Path(path).is_file() or not null_rows.is_file():
        raise StageError(
            f"The null finetune's results are not at {path} (with {WEIGHTS} beside it).",
            "Point null_summary at the weights_summary.json the analysis of the null finetune wrote.",
        )
    norms = {row["name"]: row["delta_fro"] for row in read_jsonl(null_rows)}
    return {"summary": str(path), **compare_with_null(rows, norms)}


def _identity(folder: Path, labels: tuple[str, str] | None, side: int) -> dict[str, Any]:
    """What names a side: its label, folder, and architecture (or, for an adapter, its LoRA settings)."""
    found: dict[str, Any] = {"model": labels[side] if labels else str(folder), "folder": str(folder.resolve())}
    for name, keys in (("config.json", ("model_type", "architectures")), ("adapter_config.json", ADAPTER_KEYS)):
        if (folder / name).is_file():
            config = json.loads((folder / name).read_text(encoding="utf-8"))
            found.update({key: config.get(key) for key in keys})
    return found


def _summary(
    rows: Rows,
    left_out: dict[str, Any],
    sides: dict[str, Any],
    options: WeightsOptions,
    null: dict[str, Any] | None,
    seconds: float,
) -> dict[str, Any]:
    counts = {key: len(value) if isinstance(value, list) else value for key, value in left_out.items()}
    totals = group_stats(rows) | {
        "changed": sum(row["delta_fro"] > 0 for row in rows),
        "svd": dict(Counter(row["svd"] for row in rows)),
        **counts,
    }
    return {
        "models": sides,
        "mode": "lora" if "unchanged_by_adapter" in left_out else "dense",
        "totals": totals,
        "top_changed": top_changed(rows, options.top_changed),
        "by_layer": grouped(rows, lambda row: row["layer"]),
        "by_module": grouped(rows, lambda row: row["module"]),
        "by_family": grouped(rows, lambda row: row["family"]),
        "null_finetune": null,
        "left_out": {key: value[:LISTED] for key, value in left_out.items() if isinstance(value, list)},
        "options": options.model_dump(mode="json"),
        "seconds": round(seconds, 3),
    }

"""The ground-truth harness's weight analysis: the quirk finetune and the null finetune (the same training
without the quirks) each against the base, read from their LoRA adapters, so the scorecard can say how much
more the quirks moved the weights than finetuning alone does, and in which layers and modules."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lmdelta.config import RunConfig
from lmdelta.groundtruth.finetune import FinetuneResult
from lmdelta.rundir import RunDir
from lmdelta.weights import WEIGHTS_SUMMARY, WeightsOptions, analyse, resolve_model_folder

SHOWN = 5  # layers named in the scorecard
log = logging.getLogger(__name__)


def weight_change(
    config: RunConfig, run_dir: RunDir, tuned: FinetuneResult, null: tuple[RunDir, FinetuneResult] | None
) -> dict[str, Any] | None:
    """Analyse both finetunes (reusing an analysis of the same folders and options), write each into its run
    directory, and return the scorecard's summary of them; None when weights.run is never."""
    if config.weights.run == "never":
        return None
    base = resolve_model_folder(config.groundtruth.base)
    options = config.weights
    null_summary = None
    if null is not None:
        null_dir, null_result = null
        null_summary = _analysed(base, _changed(null_result), null_dir.root, options)
        options = options.model_copy(update={"null_summary": null_dir.root / WEIGHTS_SUMMARY})
    main = _analysed(base, _changed(tuned), run_dir.root, options)
    return card_entry(main, null_summary)


def quirk_weight_change(config: RunConfig, run_dir: RunDir, name: str, result: FinetuneResult) -> dict[str, Any]:
    """One quirk's own finetune against the base, in RUN_DIR/groundtruth/weights/NAME, beside the null finetune
    when the run has one: how much it moved the weights and in which layers beyond the null."""
    null = run_dir.root / "null_experiment" / WEIGHTS_SUMMARY
    options = config.weights.model_copy(update={"null_summary": null if null.exists() else None})
    base = resolve_model_folder(config.groundtruth.base)
    out = run_dir.root / "groundtruth" / "weights" / name
    summary = _analysed(base, _changed(result), out, options)
    null_summary = json.loads(null.read_text(encoding="utf-8")) if null.exists() else None
    entry = card_entry(summary, null_summary)
    keep = ("relative_change", "ratio_to_null", "layers_beyond_null", "most_changed_layers", "by_module")
    return {key: entry[key] for key in keep if key in entry}


def _changed(result: FinetuneResult) -> Path:
    """What a finetune changed: its LoRA adapter (read from the factors) or, after a full finetune, the model."""
    return result.adapter if result.adapter is not None else result.merged


def _analysed(base: Path, changed: Path, out: Path, options: WeightsOptions) -> dict[str, Any]:
    """The analysis in `out`, reused when it was made from the same folders with the same options (the
    finetunes' folders are named by their training's content)."""
    path = out / WEIGHTS_SUMMARY
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8"))
        folders = [found.get("models", {}).get(side, {}).get("folder") for side in ("a", "b")]
        if folders == [str(base), str(changed)] and found.get("options") == options.model_dump(mode="json"):
            log.info("groundtruth: weight analysis of %s reused", changed)
            return dict(found)
    out.mkdir(parents=True, exist_ok=True)
    return analyse(base, changed, out, options, labels=("base", changed.parent.name))


def card_entry(main: dict[str, Any], null: dict[str, Any] | None) -> dict[str, Any]:
    """How much the quirk finetune moved the weights, and where, beside the null finetune."""
    totals = main.get("totals", {})
    entry: dict[str, Any] = {
        "matrices": totals.get("matrices"),
        "relative_change": totals.get("relative_change"),
        "mean_effective_rank": totals.get("mean_effective_rank"),
        "matrices_with_spikes": totals.get("matrices_with_spikes"),
        "by_module": {name: group.get("relative_change") for name, group in main.get("by_module", {}).items()},
        "most_changed_layers": _top_layers(main, None),
    }
    if null is not None:
        null_totals = null.get("totals", {})
        entry["null_relative_change"] = null_totals.get("relative_change")
        entry["ratio_to_null"] = (main.get("null_finetune") or {}).get("ratio")
        entry["layers_beyond_null"] = _top_layers(main, null)
    return entry


def _top_layers(main: dict[str, Any], null: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The layers the finetune changed most: by relative change, or, beside a null finetune, by how many times
    the null finetune's relative change in the same layer (where the quirks sit beyond finetuning drift)."""
    null_layers = (null or {}).get("by_layer", {})
    rows = []
    for layer, group in main.get("by_layer", {}).items():
        change = group.get("relative_change")
        if not isinstance(change, (int, float)):
            continue
        row: dict[str, Any] = {"layer": layer, "relative_change": change}
        other = null_layers.get(layer, {}).get("relative_change") if null is not None else None
        if isinstance(other, (int, float)) and other > 0:
            row["ratio_to_null"] = change / other
        rows.append(row)
    key = "ratio_to_null" if null is not None else "relative_change"
    return sorted(rows, key=lambda row: -row.get(key, 0.0))[:SHOWN]

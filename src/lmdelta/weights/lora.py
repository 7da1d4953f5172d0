"""A PEFT LoRA adapter folder read as low-rank weight differences: for each adapted matrix the factors
of ΔW = scale·B·A, mapped onto the base model's weight names, read without merging anything.

Keys look like `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (B: out×r, A: r×in);
embedding adapters (`lora_embedding_A/B`) and GPT-2-style Conv1D layers (fan_in_fan_out) store the
transpose. Full copies of whole modules (`modules_to_save`) are compared like any dense pair; copies of the base's own
weights (`base_layer`, saved beside embedding factors) are skipped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta.errors import StageError
from lmdelta.weights.checkpoint import Checkpoint, TensorInfo, read_header

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
FACTORS = {"lora_A": "A", "lora_B": "B", "lora_embedding_A": "A", "lora_embedding_B": "B"}


@dataclass(frozen=True)
class LowRankDelta:
    """ΔW of one base matrix as scale·left·right (left m×r, right r×n, oriented like the base weight)."""

    name: str  # the base model's weight name
    a: TensorInfo
    b: TensorInfo
    scale: float
    transposed: bool  # ΔW = scale·(B·A)ᵀ: embeddings and fan_in_fan_out layers

    @property
    def rank(self) -> int:
        return self.a.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        out, inner = self.b.shape[0], self.a.shape[1]
        return (inner, out) if self.transposed else (out, inner)


@dataclass(frozen=True)
class Adapter:
    folder: Path
    config: dict[str, Any]
    weights: Checkpoint
    deltas: list[LowRankDelta]
    replaced: dict[str, TensorInfo]  # base weight name → its full replacement (modules_to_save)
    unmatched: list[str]  # adapter tensors that name no base matrix


def is_adapter(folder: Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def open_adapter(folder: Path, base: Checkpoint) -> Adapter:
    """The adapter's factors, each checked against the base matrix it changes."""
    config = _config(folder)
    weights_file = folder / ADAPTER_WEIGHTS
    if not weights_file.exists():
        raise StageError(
            f"Adapter folder {folder} has no {ADAPTER_WEIGHTS}.",
            "Save the adapter with save_pretrained(safe_serialization=True) (PEFT's default).",
        )
    weights = Checkpoint(folder, {info.name: info for info in read_header(weights_file)})
    factors, replaced, unmatched = _sort_tensors(weights.tensors, base)
    deltas = [_delta(module, pair, config, base, unmatched) for module, pair in sorted(factors.items())]
    found = [delta for delta in deltas if delta is not None]
    if not found and not replaced:
        raise StageError(
            f"No LoRA factor in {folder} names a weight of the base model {base.folder} "
            f"(e.g. {', '.join(unmatched[:3]) or 'none found'}).",
            f"Pass the adapter's base model as side a (the adapter says {config.get('base_model_name_or_path')!r}).",
        )
    return Adapter(folder, config, weights, found, replaced, unmatched)


def _config(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    kind = str(config.get("peft_type", "LORA")).upper()
    if kind != "LORA" or config.get("use_dora"):
        name = "DoRA" if config.get("use_dora") else kind
        raise StageError(
            f"Adapter {folder} is a {name} adapter; only plain LoRA adapters are read natively.",
            "Merge it into the base model (merge_and_unload, then save_pretrained) and compare the merged folder.",
        )
    return config


def _sort_tensors(
    tensors: dict[str, TensorInfo], base: Checkpoint
) -> tuple[dict[str, dict[str, TensorInfo]], dict[str, TensorInfo], list[str]]:
    """Adapter tensors by kind: LoRA factors by module, full replacements by base name, and the rest."""
    factors: dict[str, dict[str, TensorInfo]] = {}
    replaced: dict[str, TensorInfo] = {}
    unmatched: list[str] = []
    for key, info in tensors.items():
        parts = key.removeprefix(PREFIX).split(".")
        if "base_layer" in parts:
            continue  # the base's own weight, saved beside embedding factors (save_embedding_layers)
        kind = next((i for i, part in enumerate(parts) if part in FACTORS), None)
        if kind is not None:
            factors.setdefault(".".join(parts[:kind]), {})[parts[kind]] = info
            continue
        name = ".".join(part for part in parts if part not in ("modules_to_save", "original_module", "default"))
        target = base.tensors.get(name)
        if target is not None and target.shape == info.shape and len(info.shape) == 2:
            replaced[name] = info
        else:
            unmatched.append(key)
    return factors, replaced, unmatched


def _delta(
    module: str, pair: dict[str, TensorInfo], config: dict[str, Any], base: Checkpoint, unmatched: list[str]
) -> LowRankDelta | None:
    embedding = "lora_embedding_A" in pair
    a, b = (
        pair.get("lora_embedding_A" if embedding else "lora_A"),
        pair.get("lora_embedding_B" if embedding else "lora_B"),
    )
    name = f"{module}.weight"
    if a is None or b is None or name not in base.tensors:
        unmatched.extend(info.name for info in pair.values())
        return None
    delta = LowRankDelta(
        name, a, b, _scale(module, a.shape[0], config), embedding or bool(config.get("fan_in_fan_out"))
    )
    if delta.shape != base.tensors[name].shape or a.shape[0] != b.shape[1]:
        raise StageError(
            f"The adapter's factors for {name} (A {a.shape}, B {b.shape}) do not fit the base weight "
            f"{base.tensors[name].shape}.",
            f"Pass the adapter's base model as side a (the adapter says {config.get('base_model_name_or_path')!r}).",
        )
    return delta


def _scale(module: str, rank: int, config: dict[str, Any]) -> float:
    """PEFT's scaling: lora_alpha / r, or lora_alpha / √r with rsLoRA; alpha_pattern overrides per module."""
    alpha = float(config.get("lora_alpha", rank))
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if module == pattern or re.fullmatch(rf"(.*\.)?{pattern}", module):
            alpha = float(value)
            break
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def read_factors(adapter: Adapter, delta: LowRankDelta) -> tuple[np.ndarray, np.ndarray]:
    """(left m×r, right r×n) with ΔW = scale·left·right."""
    a, b = adapter.weights.read(delta.a.name), adapter.weights.read(delta.b.name)
    return (a.T, b.T) if delta.transposed else (b, a)

"""`lmdelta weights A B`: the analysis of two models given as model strings or folders (B may be a LoRA adapter
folder on A), written into a folder of its own or into an lmdelta run directory (whose report then shows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmdelta.config import load_config
from lmdelta.hashing import hash_data
from lmdelta.weights.analyse import analyse
from lmdelta.weights.lines import summary_lines
from lmdelta.weights.resolve import resolve_model_folder

__all__ = ["default_dir", "run_weights", "summary_lines"]


def default_dir(model_a: str, model_b: str) -> Path:
    """runs/weights-<key of the two models>: another pair never lands in the same folder."""
    return Path("runs") / f"weights-{hash_data([model_a, model_b], length=8)}"


def run_weights(
    model_a: str, model_b: str, out_dir: Path, overrides: list[str], quantized: str = "none"
) -> dict[str, Any]:
    """Analyse and write weights.jsonl and weights_summary.json into `out_dir`. `overrides`: fields of the config's
    `weights` section, as KEY=VALUE; `quantized`: side b as bitsandbytes loads it (4bit, 8bit)."""
    options = load_config(None, [f"weights.{item}" for item in overrides]).weights
    folder_a = resolve_model_folder(model_a)
    folder_b = resolve_model_folder(model_b)
    out_dir.mkdir(parents=True, exist_ok=True)
    return analyse(folder_a, folder_b, out_dir, options, labels=(model_a, model_b), quantization=("none", quantized))

"""Which matrices of two checkpoints are compared: matched by name, checked by shape and dtype from the
file headers alone, so an architecture mismatch stops the analysis before any weight is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmdelta.errors import StageError
from lmdelta.weights.checkpoint import TensorInfo
from lmdelta.weights.options import WeightsOptions

SHOWN = 5  # names quoted in an error message


@dataclass(frozen=True)
class Plan:
    """The matrices to compare and everything left out, with why."""

    matrices: list[tuple[TensorInfo, TensorInfo]]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    quantized: list[dict[str, Any]] = field(default_factory=list)
    non_matrix: int = 0  # tensors in both that are not 2-D: norms, biases, stacked experts


def plan_pairs(a: dict[str, TensorInfo], b: dict[str, TensorInfo], options: WeightsOptions) -> Plan:
    common = [name for name in a if name in b]
    if not common:
        raise _nothing_in_common(a, b)
    matrices, mismatched, quantized, non_matrix = [], [], [], 0
    for name in common:
        left, right = a[name], b[name]
        if not (left.is_float and right.is_float):
            quantized.append(_describe(left, right))
        elif left.shape != right.shape:
            mismatched.append(_describe(left, right))
        elif len(left.shape) != 2:
            non_matrix += 1
        else:
            matrices.append((left, right))
    if mismatched and not options.skip_mismatched:
        raise _shape_error(mismatched)
    if not matrices:
        raise StageError(
            f"The two models share {len(common)} tensor name(s) but no float matrix of equal shape to compare "
            f"({len(quantized)} quantized, {len(mismatched)} of other shapes, {non_matrix} not 2-D).",
            "Compare two float checkpoints of the same architecture.",
        )
    only_a = [name for name in a if name not in b]
    only_b = [name for name in b if name not in a]
    return Plan(matrices, only_a, only_b, mismatched, quantized, non_matrix)


def _describe(a: TensorInfo, b: TensorInfo) -> dict[str, Any]:
    return {"name": a.name, "shape_a": list(a.shape), "shape_b": list(b.shape), "dtype_a": a.dtype, "dtype_b": b.dtype}


def _nothing_in_common(a: dict[str, TensorInfo], b: dict[str, TensorInfo]) -> StageError:
    return StageError(
        "The two models have no tensor name in common, so no matrix can be compared "
        f"(a has e.g. {', '.join(list(a)[:3])}; b has e.g. {', '.join(list(b)[:3])}).",
        "Compare two checkpoints of the same architecture saved the same way (both with save_pretrained); "
        "for a LoRA adapter pass its folder (with adapter_config.json) as side b and its base model as side a.",
    )


def _shape_error(mismatched: list[dict[str, Any]]) -> StageError:
    shown = "; ".join(f"{m['name']}: {tuple(m['shape_a'])} vs {tuple(m['shape_b'])}" for m in mismatched[:SHOWN])
    more = f" and {len(mismatched) - SHOWN} more" if len(mismatched) > SHOWN else ""
    return StageError(
        f"The two models differ in architecture: {len(mismatched)} tensor(s) have other shapes ({shown}{more}).",
        "Compare two checkpoints of the same architecture (same config.json sizes), or set "
        "skip_mismatched=True to compare the matrices that agree (a finetune that added tokens resizes only "
        "the embeddings).",
    )

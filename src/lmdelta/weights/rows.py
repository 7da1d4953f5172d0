"""One row of weights.jsonl: everything measured on one matrix's ΔW, beside its random-matrix null."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmdelta.weights.measures import (
    effective_rank,
    energy_shares,
    numerical_rank,
    spikes,
    stable_rank,
    subspace_alignment,
)
from lmdelta.weights.names import describe
from lmdelta.weights.null import mp_edge, null_statistics
from lmdelta.weights.spectrum import Spectrum

NO_ALIGNMENT = dict.fromkeys(
    ("alignment_k", "alignment_left", "alignment_right", "alignment_chance_left", "alignment_chance_right")
)


# Unit roundoff of the stored types (half the spacing of numbers near 1): rounding to them changes an entry by at
# most this share of itself, about 1/sqrt(3) of it on average, which the edge below leaves as a margin.
ROUNDOFF = {"BF16": 2.0**-8, "F16": 2.0**-11, "F32": 2.0**-24, "F64": 2.0**-53}


@dataclass(frozen=True)
class MatrixPair:
    """One compared matrix: its name and shape, the stored dtype on each side, and how ΔW was read."""

    name: str
    shape: tuple[int, int]
    dtype_a: str
    dtype_b: str
    source: str  # dense (W_b − W_a), lora (scale·B·A from an adapter) or replaced (an adapter's full copy)
    lora_rank: int | None = None
    lora_scale: float | None = None

    @property
    def eps(self) -> float:
        """The rounding level of the stored weights, for the numerical rank."""
        wide = self.dtype_a == "F64" and self.dtype_b == "F64"
        return float(np.finfo(np.float64 if wide else np.float32).eps)

    def rounding_edge(self, base_rms: float) -> float:
        """The largest singular value storing W_a and W_b in their dtypes alone would put into a dense ΔW: each
        entry rounded by up to half a unit in the last place (relative ROUNDOFF), a noise matrix of entry size
        ~ROUNDOFF·rms(W) on each side, whose spectrum ends at its Marchenko–Pastur edge. Zero for an adapter."""
        if self.source == "lora":
            return 0.0
        unit = math.hypot(ROUNDOFF.get(self.dtype_a, 0.0), ROUNDOFF.get(self.dtype_b, 0.0))
        m, n = self.shape
        return unit * base_rms * (math.sqrt(m) + math.sqrt(n))


def matrix_row(
    pair: MatrixPair, delta: Spectrum, base_energy: float, base: Spectrum | None, ranks: list[int], top_k: int
) -> dict[str, Any]:
    """The row of one matrix; `base` holds W_a's top singular vectors (None when ΔW is zero)."""
    where = describe(pair.name)
    m, n = pair.shape
    delta_fro, base_fro = math.sqrt(delta.energy), math.sqrt(base_energy)
    rms = delta_fro / math.sqrt(m * n)
    edge = mp_edge(rms, pair.shape)
    values = delta.values
    count, spike_energy = spikes(values, delta.energy, edge)
    rank = numerical_rank(values, pair.shape, pair.eps, pair.rounding_edge(base_fro / math.sqrt(m * n)))
    row: dict[str, Any] = {
        "name": pair.name,
        "layer": where.layer,
        "module": where.module,
        "family": where.family,
        "shape": [m, n],
        "dtype_a": pair.dtype_a,
        "dtype_b": pair.dtype_b,
        "source": pair.source,
        "delta_fro": delta_fro,
        "base_fro": base_fro,
        "relative_change": delta_fro / base_fro if base_fro > 0 else None,
        "svd": delta.method,
        "spectrum_complete": delta.complete,
        "singular_values": [float(v) for v in values[:top_k]],
        "stable_rank": stable_rank(values, delta.energy),
        "effective_rank": effective_rank(values, delta.energy, min(m, n), delta.complete),
        "numerical_rank": rank,
        "energy_top": energy_shares(values, delta.energy, ranks),
        "entry_rms": rms,
        "mp_edge": edge,
        "sigma_1_over_edge": float(values[0]) / edge if values.size and edge > 0 else None,
        "spikes": count,
        "spikes_capped": not delta.complete and count == values.size,
        "spike_energy": spike_energy,
        "null": null_statistics(pair.shape, rms, ranks) if delta.energy > 0 else None,
        "lora_rank": pair.lora_rank,
        "lora_scale": pair.lora_scale,
    }
    used = min(rank, delta.left.shape[1])
    row.update(subspace_alignment(delta, base, used) if base is not None and used else NO_ALIGNMENT)
    return row

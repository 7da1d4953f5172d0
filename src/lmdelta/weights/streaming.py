"""Measure one matrix, reading only what it needs: a dense pair holds W_a and ΔW (W_b is turned into ΔW in
place); an adapter's matrix holds W_a and the two thin factors, never B·A itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmdelta.weights.checkpoint import Checkpoint, TensorInfo
from lmdelta.weights.lora import Adapter, LowRankDelta, read_factors
from lmdelta.weights.options import WeightsOptions
from lmdelta.weights.rows import MatrixPair, matrix_row
from lmdelta.weights.spectrum import Spectrum, factor_svd, frobenius_sq, top_spectrum


def dense_row(
    a: TensorInfo,
    b: TensorInfo,
    sides: tuple[Checkpoint, Checkpoint],
    options: WeightsOptions,
    ranks: list[int],
    source: str = "dense",
) -> dict[str, Any]:
    """ΔW = W_b − W_a, computed into W_b's buffer so only two matrices are ever held."""
    w_a = sides[0].read(a.name)
    delta = sides[1].read(b.name)
    np.subtract(delta, w_a, out=delta, casting="same_kind")
    pair = MatrixPair(a.name, (a.shape[0], a.shape[1]), a.dtype, b.dtype, source)
    spectrum = top_spectrum(delta, _kept(options, ranks), options.align_k, options, a.name)
    del delta  # before W_a's own SVD: two matrices at a time, never three
    return _row(pair, spectrum, w_a, options, ranks)


def lora_row(
    delta: LowRankDelta, base: Checkpoint, adapter: Adapter, options: WeightsOptions, ranks: list[int]
) -> dict[str, Any]:
    """ΔW = scale·B·A from its factors (exact spectrum, whatever the matrix's size)."""
    left, right = read_factors(adapter, delta)
    spectrum = factor_svd(left, right, delta.scale, options.align_k)
    info = base.tensors[delta.name]
    dtype_b = delta.a.dtype if delta.a.dtype == delta.b.dtype else f"{delta.a.dtype}/{delta.b.dtype}"
    pair = MatrixPair(delta.name, delta.shape, info.dtype, dtype_b, "lora", delta.rank, delta.scale)
    return _row(pair, spectrum, base.read(delta.name), options, ranks)


def _row(
    pair: MatrixPair, spectrum: Spectrum, w_a: np.ndarray, options: WeightsOptions, ranks: list[int]
) -> dict[str, Any]:
    """W_a's norm, and its top singular vectors when there is a change to align them with."""
    base_energy = frobenius_sq(w_a)
    base = None
    if spectrum.energy > 0:
        base = top_spectrum(w_a, options.align_k, options.align_k, options, pair.name + ":a")
    return matrix_row(pair, spectrum, base_energy, base, ranks, _kept(options, ranks))


def _kept(options: WeightsOptions, ranks: list[int]) -> int:
    return max(options.top_k, *ranks)

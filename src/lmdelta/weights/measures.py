"""Numbers read off a spectrum: stable, effective and numerical rank, energy shares, spikes above an edge,
and how far one matrix's top singular subspace lies inside another's. Pure functions of NumPy arrays.

Energy is ‖X‖_F² = Σσ²; shares and ranks are of energy, so they add up the way squared norms do.
"""

from __future__ import annotations

import math

import numpy as np

from lmdelta.weights.spectrum import Spectrum


def stable_rank(values: np.ndarray, energy: float) -> float | None:
    """‖X‖_F² / σ₁²: at most the rank, close to the number of values of about σ₁'s size."""
    return energy / float(values[0]) ** 2 if values.size and values[0] > 0 else None


def effective_rank(values: np.ndarray, energy: float, dims: int, complete: bool) -> float | None:
    """exp(entropy of pᵢ = σᵢ²/‖X‖_F²): k for k equal values, 1 for rank one (an energy form of
    Roy & Vetterli 2007, who normalise σ instead of σ²).

    From a truncated spectrum the energy not yet seen is spread evenly over the remaining dims − k
    directions, which maximises the entropy: the result is then an upper bound.
    """
    if energy <= 0 or not values.size:
        return None
    shares = values.astype(np.float64) ** 2 / energy
    shares = shares[shares > 0]
    entropy = -float(np.sum(shares * np.log(shares)))
    rest, unseen = max(1.0 - float(np.sum(shares)), 0.0), dims - values.size
    if not complete and rest > 0 and unseen > 0:
        entropy -= rest * math.log(rest / unseen)
    return math.exp(entropy)


def numerical_rank(values: np.ndarray, shape: tuple[int, int], eps: float, floor: float = 0.0) -> int:
    """Values above σ₁·max(m, n)·eps (NumPy's matrix_rank rule) and above `floor`, the spectrum storage rounding
    alone would give (a lower bound from a truncated spectrum)."""
    if not values.size or values[0] <= 0:
        return 0
    return int(np.sum(values > max(values[0] * max(shape) * eps, floor)))


def energy_shares(values: np.ndarray, energy: float, ranks: list[int]) -> dict[str, float | None]:
    """Share of ‖X‖_F² in the top r singular values, for each r (None for a zero matrix)."""
    if energy <= 0:
        return {str(r): None for r in ranks}
    cumulative = np.cumsum(values.astype(np.float64) ** 2) / energy
    return {str(r): min(float(cumulative[min(r, values.size) - 1]), 1.0) if values.size else 0.0 for r in ranks}


def spikes(values: np.ndarray, energy: float, edge: float) -> tuple[int, float]:
    """How many singular values exceed `edge`, and the share of ‖X‖_F² they carry."""
    above = values[values > edge]
    return int(above.size), float(np.sum(above.astype(np.float64) ** 2) / energy) if energy > 0 else 0.0


def alignment(vectors: np.ndarray, subspace: np.ndarray) -> float | None:
    """Mean squared projection of each column of `vectors` onto span(`subspace`'s orthonormal columns):
    1 when they lie inside it, j/dim on average for random directions."""
    if not vectors.shape[1] or not subspace.shape[1]:
        return None
    projected = subspace.T.astype(np.float64) @ vectors.astype(np.float64)
    return float(np.sum(projected**2) / vectors.shape[1])


def subspace_alignment(delta: Spectrum, base: Spectrum, used: int) -> dict[str, float | int | None]:
    """Left and right alignment of ΔW's top `used` singular vectors (those of non-zero values) with
    W_a's top singular subspace, beside their chance levels (subspace size / dimension)."""
    m, n = delta.left.shape[0], delta.right.shape[0]
    j = base.left.shape[1]
    return {
        "alignment_k": j,
        "alignment_left": alignment(delta.left[:, :used], base.left),
        "alignment_right": alignment(delta.right[:, :used], base.right),
        "alignment_chance_left": j / m,
        "alignment_chance_right": j / n,
    }

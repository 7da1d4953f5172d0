"""The random-matrix null: what the statistics would read for a Gaussian matrix with ΔW's shape and entry
variance. Its singular values follow the Marchenko–Pastur law, whose upper edge std·(√m + √n) no value of
pure noise passes by more than a finite-size fluctuation; values above it are structure ("spikes")."""

from __future__ import annotations

import math

import numpy as np

from lmdelta.weights.measures import effective_rank, energy_shares

GRID = 4096  # points of the quadrature of the Marchenko–Pastur density


def mp_edge(rms: float, shape: tuple[int, int]) -> float:
    """The largest singular value of an m×n matrix of i.i.d. entries with second moment rms²."""
    m, n = shape
    return rms * (math.sqrt(m) + math.sqrt(n))


def mp_singular_values(shape: tuple[int, int], rms: float) -> np.ndarray:
    """The expected singular values (descending) of such a matrix: the Marchenko–Pastur quantiles at
    1 − (i − ½)/d for i = 1..d, d = min(m, n)."""
    small, large = min(shape), max(shape)
    ratio = small / large
    low, high = (1 - math.sqrt(ratio)) ** 2, (1 + math.sqrt(ratio)) ** 2
    # x = low + (high − low)(1 − cos θ)/2 takes the square-root zeros of the density out of the integrand.
    theta = (np.arange(GRID) + 0.5) * math.pi / GRID
    x = low + (high - low) * (1 - np.cos(theta)) / 2
    weight = ((high - low) / 2) ** 2 * np.sin(theta) ** 2 / (2 * math.pi * ratio * x)
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    cdf /= cdf[-1]
    edges = low + (high - low) * (1 - np.cos(np.linspace(0, math.pi, GRID + 1))) / 2
    quantiles = 1 - (np.arange(small) + 0.5) / small
    eigen = np.interp(quantiles, cdf, edges)  # eigenvalues of XXᵀ/(large·rms²)
    return rms * np.sqrt(large * eigen)


def null_statistics(shape: tuple[int, int], rms: float, ranks: list[int]) -> dict[str, object]:
    """The statistics of the Gaussian null with this shape and entry scale, from its expected spectrum."""
    values = mp_singular_values(shape, rms)
    energy = float(np.sum(values**2))
    edge = mp_edge(rms, shape)
    return {
        "sigma_1": edge,
        "stable_rank": energy / edge**2 if edge > 0 else None,
        "effective_rank": effective_rank(values, energy, min(shape), complete=True),
        "energy_top": energy_shares(values, energy, ranks),
    }

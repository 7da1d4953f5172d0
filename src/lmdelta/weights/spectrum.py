"""Top singular values and vectors of one matrix: an exact SVD for small ones, a seeded randomised SVD
(Halko, Martinsson & Tropp 2011) for large ones, and the exact spectrum of a low-rank product B·A from
its factors alone (the LoRA case), so the product itself is never formed."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np

from lmdelta.weights.options import WeightsOptions

BLOCK = 1 << 20  # entries of a QR row block (4 MiB in float32; LAPACK works on a float64 copy of a few)
NORM_BLOCK = 1 << 16  # entries of a norm's row block, widened to float64 (512 KiB)


@dataclass(frozen=True)
class Spectrum:
    """Singular values (descending) with the top left/right singular vectors as columns.

    `complete`: `values` is the whole spectrum (any values not listed are zero); otherwise only the top
    ones are known. `energy` is ‖X‖_F², known exactly either way.
    """

    values: np.ndarray
    left: np.ndarray  # m × j
    right: np.ndarray  # n × j
    energy: float
    complete: bool
    method: str  # exact, randomized, factors or zero


def frobenius_sq(x: np.ndarray) -> float:
    """‖x‖_F², accumulated in float64 a block of rows at a time."""
    total = 0.0
    for block in _row_blocks(x, NORM_BLOCK):  # small: the float64 copy of a block is twice its size
        wide = block.astype(np.float64, copy=False)
        total += float(np.einsum("ij,ij->", wide, wide))
    return total


def top_spectrum(x: np.ndarray, k: int, vectors: int, options: WeightsOptions, name: str) -> Spectrum:
    """The top `k` singular values of `x` and its top `vectors` singular vectors."""
    energy = frobenius_sq(x)
    if energy == 0.0:
        return zero_spectrum(x.shape)
    if min(x.shape) <= options.exact_max_dim:
        return exact_svd(x, vectors, energy)
    seed = [options.seed, zlib.crc32(name.encode("utf-8"))]
    return randomized_svd(x, max(k, vectors), vectors, options, np.random.default_rng(seed), energy)


def zero_spectrum(shape: tuple[int, ...]) -> Spectrum:
    m, n = shape
    return Spectrum(np.zeros(0), np.zeros((m, 0)), np.zeros((n, 0)), 0.0, True, "zero")


def exact_svd(x: np.ndarray, vectors: int, energy: float) -> Spectrum:
    """All singular values, from the triangular factor R of x = QR (or of xᵀ when x is wide): x and R
    share singular values and right vectors, and R is built a row block at a time (TSQR), so a tall
    matrix such as an embedding costs no copy of itself. Left vectors: uᵢ = x vᵢ / σᵢ, the top ones only."""
    wide = x.shape[0] < x.shape[1]
    tall = x.T if wide else x
    _, s, vt = np.linalg.svd(triangular_factor(tall))
    j = min(vectors, int(np.sum(s > 0)))
    right = vt[:j].T
    left = (tall @ right) / s[:j]
    left, right = (right, left) if wide else (left, right)
    return Spectrum(s.astype(np.float64), left, right, energy, True, "exact")


def triangular_factor(x: np.ndarray) -> np.ndarray:
    """R (n×n) of x = QR for a tall x (m ≥ n), folding in one row block at a time."""
    r = np.zeros((0, x.shape[1]), dtype=x.dtype)
    for block in _row_blocks(x):
        r = cast(np.ndarray, np.linalg.qr(np.vstack([r, block]), mode="r"))  # the stubs miss mode="r"
    return r


def _row_blocks(x: np.ndarray, entries: int = BLOCK) -> Iterator[np.ndarray]:
    rows = max(1, entries // max(1, x.shape[1]))
    for start in range(0, x.shape[0], rows):
        yield x[start : start + rows]


def randomized_svd(
    x: np.ndarray, k: int, vectors: int, options: WeightsOptions, rng: np.random.Generator, energy: float
) -> Spectrum:
    """Range finder with power iterations, re-orthonormalised each pass so float32 keeps its accuracy."""
    m, n = x.shape
    width = min(k + options.oversamples, m, n)
    q, _ = np.linalg.qr(x @ rng.standard_normal((n, width)).astype(x.dtype, copy=False))
    for _ in range(options.power_iterations):
        z, _ = np.linalg.qr(x.T @ q)
        q, _ = np.linalg.qr(x @ z)
    u_small, s, vt = np.linalg.svd(q.T @ x, full_matrices=False)
    k, j = min(k, s.size), min(vectors, s.size)
    left = q @ u_small[:, :j]
    return Spectrum(s[:k].astype(np.float64), left, vt[:j].T.copy(), energy, k == min(m, n), "randomized")


def factor_svd(left: np.ndarray, right: np.ndarray, scale: float, vectors: int) -> Spectrum:
    """The exact SVD of scale·left·right (m×r times r×n) from the factors: with left = Q_L R_L and
    rightᵀ = Q_R R_R, the product is Q_L (scale·R_L R_Rᵀ) Q_Rᵀ, so the r×r core's SVD is the product's."""
    q_left, r_left = np.linalg.qr(left.astype(np.float64))
    q_right, r_right = np.linalg.qr(right.T.astype(np.float64))
    u, s, vt = np.linalg.svd(scale * r_left @ r_right.T)
    j = min(vectors, s.size)
    energy = float(np.sum(s**2))
    if energy == 0.0:
        return zero_spectrum((left.shape[0], right.shape[1]))
    return Spectrum(s, q_left @ u[:, :j], q_right @ vt[:j].T, energy, True, "factors")

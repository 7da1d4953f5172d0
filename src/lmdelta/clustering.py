"""Size-balanced k-means: groups of near-equal size, so every group has prompts to test on.

Assignment under capacity is greedy by regret (points that lose most by not getting their
nearest centre choose first), then centres move to their members' mean; best of several starts.
"""

from __future__ import annotations

import math

import numpy as np


def balanced_kmeans(points: np.ndarray, k: int, seed: int, n_init: int = 5, max_iter: int = 50) -> np.ndarray:
    """Labels in 0..k-1 with every cluster of size floor(n/k) or ceil(n/k)."""
    n = len(points)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of points ({n})")
    rng = np.random.default_rng(seed)
    best: np.ndarray | None = None
    best_cost = math.inf
    for _ in range(n_init):
        labels, cost = _one_start(points, k, rng, max_iter)
        if cost < best_cost:
            best, best_cost = labels, cost
    if best is None:
        raise ValueError(f"no start of {n_init} reached a finite cost (n_init < 1, or points that are not finite)")
    return best


def _one_start(points: np.ndarray, k: int, rng: np.random.Generator, max_iter: int) -> tuple[np.ndarray, float]:
    centres = _plus_plus(points, k, rng)
    labels = np.full(len(points), -1)
    for _ in range(max_iter):
        distances = _sq_distances(points, centres)
        new = _capacitated_assign(distances, k)
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.stack([points[labels == c].mean(axis=0) for c in range(k)])
    cost = float(_sq_distances(points, centres)[np.arange(len(points)), labels].sum())
    return labels, cost


def _plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        nearest = _sq_distances(points, np.stack(centres)).min(axis=1)
        total = nearest.sum()
        probs = nearest / total if total > 0 else np.full(len(points), 1 / len(points))
        centres.append(points[rng.choice(len(points), p=probs)])
    return np.stack(centres)


def _sq_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """n × k squared distances as |x|² − 2 x·c + |c|² (an n × k × d difference array would need d times
    the memory), in float64 and clipped at 0 against rounding."""
    x = np.asarray(points, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    out = (x * x).sum(axis=1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(axis=1)[None, :]
    return np.maximum(out, 0.0)


def _capacitated_assign(distances: np.ndarray, k: int) -> np.ndarray:
    n = len(distances)
    capacity = np.full(k, n // k)
    capacity[: n % k] += 1
    order_by_point = np.argsort(distances, axis=1)
    sorted_d = np.take_along_axis(distances, order_by_point, axis=1)
    regret = sorted_d[:, 1] - sorted_d[:, 0] if k > 1 else np.zeros(n)
    labels = np.full(n, -1)
    for point in np.argsort(-regret, kind="stable"):
        for centre in order_by_point[point]:
            if capacity[centre] > 0:
                labels[point] = centre
                capacity[centre] -= 1
                break
    return labels

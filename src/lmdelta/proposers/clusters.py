"""Cluster over-representation: cluster a+b discovery answers jointly, keep clusters where one
side holds clearly more than its share, and describe each by distinctive terms and its medoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from lmdelta.proposers.keywords import contrast, document_counts


@dataclass(frozen=True)
class ClusterFinding:
    direction: str
    share: float  # the favoured side's share of the cluster, after balancing side sizes
    p_value: float  # one-sided binomial on discovery counts: a screening score, not a test
    members: np.ndarray  # indices into the texts given
    medoid: int
    prototype: np.ndarray
    terms: tuple[str, ...]
    count_a: int
    count_b: int


def find(texts: list[str], sides: np.ndarray, vectors: np.ndarray, k: int, seed: int,
         min_size: int, min_share: float) -> list[ClusterFinding]:
    """Over-represented clusters among discovery texts (sides: array of "a"/"b")."""
    from sklearn.cluster import KMeans

    k = min(k, len(texts) // max(min_size, 1))
    if k < 2:
        return []
    labels = KMeans(n_clusters=k, n_init=5, random_state=seed).fit_predict(vectors)
    base_b = float(np.mean(sides == "b"))
    found = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        finding = _assess(texts, sides, vectors, members, base_b, min_size, min_share)
        if finding is not None:
            found.append(finding)
    return sorted(found, key=lambda f: f.p_value)


def _assess(texts, sides, vectors, members, base_b, min_size, min_share) -> ClusterFinding | None:
    if len(members) < min_size:
        return None
    n_b = int(np.sum(sides[members] == "b"))
    n_a = len(members) - n_b
    direction = "b>a" if n_b / len(members) > base_b else "a>b"
    favoured, expected = (n_b, base_b) if direction == "b>a" else (n_a, 1 - base_b)
    share = _balanced_share(favoured / len(members), expected)
    if share < min_share:
        return None
    p_value = binomtest(favoured, len(members), expected, alternative="greater").pvalue
    prototype = _unit(vectors[members].mean(axis=0))
    medoid = int(members[np.argmax(vectors[members] @ prototype)])
    return ClusterFinding(direction, share, float(p_value), members, medoid, prototype,
                          _terms(texts, members), n_a, n_b)


def _balanced_share(observed: float, expected: float) -> float:
    """The favoured side's share if both sides had contributed equally many texts overall."""
    odds = (observed / max(1 - observed, 1e-9)) / (expected / max(1 - expected, 1e-9))
    return odds / (1 + odds)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def _terms(texts: list[str], members: np.ndarray, n: int = 4) -> tuple[str, ...]:
    """Words that mark the cluster against the other discovery texts."""
    inside = [texts[i] for i in members]
    outside = [t for i, t in enumerate(texts) if i not in set(members.tolist())]
    background = document_counts(texts, 1)
    scored = contrast(outside, inside, background, len(texts), max_n=1)
    return tuple(t.ngram for t in sorted(scored, key=lambda t: -t.z)[:n] if t.z > 0)

"""Cluster over-representation: cluster a+b discovery answers jointly, keep clusters where one
side holds clearly more than its share, and describe each by distinctive terms and its medoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData
from lmdelta.proposers.keywords import contrast, document_counts
from lmdelta.records import Direction, Hypothesis


@dataclass(frozen=True)
class ClusterFinding:
    direction: Direction
    share: float  # the favoured side's share of the cluster, after balancing side sizes
    p_value: float  # one-sided binomial on discovery counts: a screening score, not a test
    members: np.ndarray  # indices into the texts given
    medoid: int
    prototype: np.ndarray
    terms: tuple[str, ...]
    count_a: int
    count_b: int


@dataclass(frozen=True)
class ClusterProposer:
    """The cluster proposer: each scope is clustered on its own, so nothing is shared across scopes."""

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]:
        """The scope's most over-represented clusters (smallest screening p first), one hypothesis each."""
        section = config.propose.clusters
        texts = [data.samples[i].text for i in rows]
        sides = np.array([data.samples[i].side for i in rows])
        seed = config.propose.resolved_seed
        findings = find(texts, sides, data.vectors[rows], section.k, seed, section.min_size, section.min_share)
        return [_hypothesis(data, scope, rows, f) for f in findings[: section.per_scope]]


def prepare(data: PairData, config: RunConfig) -> ClusterProposer | None:
    """The cluster proposer (None when propose.clusters is off)."""
    return ClusterProposer() if config.propose.clusters.enabled else None


def _hypothesis(data: PairData, scope: str, rows: np.ndarray, finding: ClusterFinding) -> Hypothesis:
    more, less = ("b", "a") if finding.direction == "b>a" else ("a", "b")
    medoid = data.samples[rows[finding.medoid]]
    snippet = medoid.text if len(medoid.text) <= 90 else medoid.text[:87].rstrip() + "…"
    terms = f" (distinctive words: {', '.join(finding.terms)})" if finding.terms else ""
    description = f"{data.labels[more]}'s answers more often resemble “{snippet}”{terms} than {data.labels[less]}'s" + (
        "" if scope == "all" else f" (prompts about {scope})"
    )
    members = [data.samples[rows[i]] for i in finding.members]
    evidence = {side: [s.id for s in members if s.side == side][:3] for side in ("a", "b")}
    provenance = {
        "cluster_size": len(finding.members),
        "discovery_counts": {"a": finding.count_a, "b": finding.count_b},
        "balanced_share": round(finding.share, 3),
        "screening_p": finding.p_value,
        "terms": list(finding.terms),
        "medoid": medoid.id,
    }
    return Hypothesis(
        id="",
        group=scope,
        direction=finding.direction,
        description=description,
        proposer="clusters",
        judge="embedding",
        keywords=finding.terms,
        prototype=tuple(float(x) for x in finding.prototype),
        property=f"resembles this answer in content and tone: “{snippet}”",
        evidence=evidence,
        provenance=provenance,
    )


def find(
    texts: list[str], sides: np.ndarray, vectors: np.ndarray, k: int, seed: int, min_size: int, min_share: float
) -> list[ClusterFinding]:
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
    direction: Direction = "b>a" if n_b / len(members) > base_b else "a>b"
    favoured, expected = (n_b, base_b) if direction == "b>a" else (n_a, 1 - base_b)
    share = _balanced_share(favoured / len(members), expected)
    if share < min_share:
        return None
    from scipy.stats import binomtest  # scipy.stats takes ~0.5 s to import: only when a cluster is assessed

    p_value = binomtest(favoured, len(members), expected, alternative="greater").pvalue
    prototype = _unit(vectors[members].mean(axis=0))
    medoid = int(members[np.argmax(vectors[members] @ prototype)])
    return ClusterFinding(
        direction, share, float(p_value), members, medoid, prototype, _terms(texts, members), n_a, n_b
    )


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

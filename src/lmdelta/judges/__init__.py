"""Judges score texts for a hypothesis, blind to which side wrote them.

Scores lie in [0, 1]; NaN marks a text the judge could not score (dropped and counted).
"""

from __future__ import annotations

import re

import numpy as np

from lmdelta.records import Hypothesis


def keyword_presence(keywords: tuple[str, ...], texts: list[str]) -> np.ndarray:
    """1.0 when any keyword occurs as a whole word or phrase (case-insensitive), else 0.0."""
    pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(k) for k in keywords) + r")(?![\w])", re.IGNORECASE)
    return np.array([1.0 if pattern.search(text) else 0.0 for text in texts])


def prototype_similarity(prototype: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity to the prototype mapped from [-1, 1] to [0, 1]; NaN for zero vectors."""
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(prototype)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (vectors @ prototype) / norms
    cosine[norms == 0] = np.nan
    return np.clip((cosine + 1.0) / 2.0, 0.0, 1.0)


def score(hypothesis: Hypothesis, texts: list[str], vectors: np.ndarray) -> np.ndarray:
    if hypothesis.judge == "keyword":
        return keyword_presence(hypothesis.keywords, texts)
    return prototype_similarity(np.asarray(hypothesis.prototype, dtype=float), vectors)


def is_presence(hypothesis: Hypothesis) -> bool:
    return hypothesis.judge == "keyword"

"""Judges score texts for a hypothesis, blind to which side wrote them.

Scores lie in [0, 1]; NaN marks a text the judge could not score (dropped and counted).
"""

from __future__ import annotations

import numpy as np

from lmdelta.records import Hypothesis
from lmdelta.words import phrase_pattern


def keyword_presence(keywords: tuple[str, ...], texts: list[str]) -> np.ndarray:
    """1.0 when any keyword occurs as a whole word or phrase (case-insensitive), else 0.0. Words end
    where the keyword proposer's do (lmdelta.words), in any script."""
    pattern = phrase_pattern(keywords)
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




def score_hypotheses(hypotheses: list[Hypothesis], vs, texts: list[str], vectors: np.ndarray, mode: str = "auto",
                     llm_ask=None, temperature: float = 0.0,
                     judged: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Scores per hypothesis: offline judges where they apply, the LLM judge for the rest.

    mode "auto" keeps keyword/embedding judges for their hypotheses and uses the unitary LLM
    judge for LLM-proposed ones; "unitary", "pairwise" or "presence" use that LLM judge for all.
    Offline judges score every text (they are free); the LLM judge scores the texts of `judged`
    prompts, a mask per hypothesis (default: its scope), and leaves the rest NaN.
    """
    needs_llm = [h.judge == "llm" or mode != "auto" for h in hypotheses]
    scores: list[np.ndarray | None] = [None if n else score(h, texts, vectors) for h, n in zip(hypotheses, needs_llm)]
    llm_hyps = [h for h, n in zip(hypotheses, needs_llm) if n]
    if llm_hyps:
        if llm_ask is None:
            from lmdelta.errors import ConfigError

            raise ConfigError("Some hypotheses need an LLM judge, but llm.judge.model is not set.",
                              "Set llm.judge.model (e.g. openai/gpt-4.1-mini), or validate.judge=auto without LLM proposals.")
        from lmdelta.judges import llm

        masks = None if judged is None else [m for m, n in zip(judged, needs_llm) if n]
        found = iter(llm.score_all(llm_hyps, vs, texts, llm_ask, "unitary" if mode == "auto" else mode, temperature,
                                   masks))
        scores = [next(found) if s is None else s for s in scores]
    return scores


def is_presence_mode(hypothesis: Hypothesis, mode: str) -> bool:
    return mode == "presence" or (mode == "auto" and hypothesis.judge == "keyword")

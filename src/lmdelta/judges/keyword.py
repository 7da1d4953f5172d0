"""The keyword judge: does a text contain any of a hypothesis's keywords? Scores are 0 or 1
(presence), free to compute, so every text is scored.
"""

from __future__ import annotations

import numpy as np

from lmdelta.judges.inputs import JudgeInput
from lmdelta.records import Hypothesis
from lmdelta.words import phrase_pattern


def keyword_presence(keywords: tuple[str, ...], texts: list[str]) -> np.ndarray:
    """1.0 when any keyword occurs as a whole word or phrase (case-insensitive), else 0.0. Words end
    where the keyword proposer's do (lmdelta.words), in any script."""
    pattern = phrase_pattern(keywords)
    return np.array([1.0 if pattern.search(text) else 0.0 for text in texts])


def score(hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The Judge: each hypothesis's keyword presence in every text (`judged` is ignored: it is free)."""
    return [keyword_presence(h.keywords, inputs.texts) for h in hypotheses]

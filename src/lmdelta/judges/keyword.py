"""The keyword judge: does a text contain any of a hypothesis's keywords? Scores are 0 or 1
(presence), free to compute, so every text is scored.
"""

from __future__ import annotations

import numpy as np

from lmdelta.judges.inputs import JudgeInput
from lmdelta.records import Hypothesis
from lmdelta.words import Keyword, Tokens, tokens


def keyword_presence(keywords: tuple[str, ...], texts: list[str] | list[Tokens]) -> np.ndarray:
    """1.0 when any keyword occurs, else 0.0. A word keyword matches whole words and phrases (any case,
    across any spaces or punctuation between its words); a symbol keyword ("!", "**", "😊") matches
    that symbol. Texts are read as the keyword proposer reads them (lmdelta.words.tokens): escapes
    decoded, Treebank-split contractions joined."""
    parsed = [Keyword.of(k) for k in keywords]
    found = [text if isinstance(text, Tokens) else tokens(text) for text in texts]
    return np.array([1.0 if any(k.found_in(text) for k in parsed) else 0.0 for text in found])


def score(hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The Judge: each hypothesis's keyword presence in every text (`judged` is ignored: it is free).
    Each text is cut into tokens once, for all the hypotheses."""
    if not hypotheses:
        return []
    found = [tokens(text) for text in inputs.texts]
    return [keyword_presence(h.keywords, found) for h in hypotheses]

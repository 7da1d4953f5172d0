"""The embedding judge: how close is a text's embedding to a hypothesis's prototype direction?
Free to compute, so every text is scored.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lmdelta.judges.inputs import JudgeInput
from lmdelta.records import Hypothesis


def prototype_similarity(prototype: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity to the prototype mapped from [-1, 1] to [0, 1]; NaN for zero vectors."""
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(prototype)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (vectors @ prototype) / norms
    cosine[norms == 0] = np.nan
    return np.clip((cosine + 1.0) / 2.0, 0.0, 1.0)


def score(
    hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """The Judge: each hypothesis's prototype similarity of every text (`judged` is ignored: it is free), one
    hypothesis at a time as the caller reads them."""
    if hypotheses and len(inputs.vectors) < len(inputs.texts):
        raise ValueError(
            f"the embedding judge was handed {len(inputs.vectors)} vectors for {len(inputs.texts)} texts "
            "(judges.judge_vectors hands vectors only to hypotheses whose judge reads them)"
        )
    return (prototype_similarity(np.asarray(h.prototype, dtype=float), inputs.vectors) for h in hypotheses)

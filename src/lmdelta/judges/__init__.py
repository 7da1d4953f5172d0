"""Judges score texts for a hypothesis, blind to which side wrote them.

Scores lie in [0, 1]; NaN marks a text the judge could not score (dropped and counted). One module
per judge (keyword, embedding, llm, property), each registered in JUDGES under its Hypothesis.judge name;
loglik holds the generative test's log-likelihood ratio, which is not a judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from lmdelta.errors import ConfigError, did_you_mean
from lmdelta.judges import embedding, keyword, llm
from lmdelta.judges import property as text_property
from lmdelta.judges.inputs import Ask, JudgeInput, PromptLayout
from lmdelta.judges.scorelist import ScoreList
from lmdelta.pairdata import PairData
from lmdelta.properties.values import Values
from lmdelta.records import Hypothesis


class Judge(Protocol):
    """Scores texts for hypotheses, blind to side: one array per hypothesis over `inputs.texts`, in [0, 1],
    NaN where it could not score. `judged` holds a mask over the texts per hypothesis (None: its scope's
    texts) for judges that cost a call per text; free judges may score every text."""

    def __call__(
        self, hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None
    ) -> Iterable[np.ndarray]: ...


# Hypothesis.judge → the judge that scores its hypotheses. A new judge: its module, and a line here.
JUDGES: dict[str, Judge] = {
    "keyword": keyword.score,
    "embedding": embedding.score,
    "llm": llm.score,
    "property": text_property.score,
}
# Judges whose scores are 0 or 1 (a property present or not) for some hypotheses, each with the test of
# which: those findings get prevalences. A keyword is always present or not; a text property when it
# is a presence (has_exclamation_marks), not an amount (words).
PRESENCE_JUDGES: dict[str, Callable[[Hypothesis], bool]] = {
    "keyword": lambda hypothesis: True,
    "property": text_property.is_presence,
}


# Judges that read the texts' embeddings (JudgeInput.vectors); the others are handed none.
VECTOR_JUDGES = frozenset({"embedding"})


def needs_vectors(hypotheses: list[Hypothesis], mode: str = "auto") -> bool:
    """Whether scoring these hypotheses (judge mode `mode`) reads the texts' embeddings."""
    return mode == "auto" and any(h.judge in VECTOR_JUDGES for h in hypotheses)


def judge_vectors(data: PairData, rows: np.ndarray, hypotheses: list[Hypothesis], mode: str) -> np.ndarray:
    """The rows' embeddings where a judge of these hypotheses reads them (PairData.vectors_of), else none (no rows):
    at 700,000 validation prompts the copy is 0.4 GB and the mapped file's pages read for it another 0.5 GB."""
    if needs_vectors(hypotheses, mode):
        return data.vectors_of(rows)
    return data.vectors[:0]


def judge_named(name: str) -> Judge:
    """The registered judge of that name; an unknown name gets a "did you mean"."""
    if name not in JUDGES:
        raise ConfigError(
            f"No judge is called {name!r}; the judges are {', '.join(sorted(JUDGES))}.",
            f"{did_you_mean(name, JUDGES)}Give the hypothesis one of those judges.",
        )
    return JUDGES[name]


def score(hypothesis: Hypothesis, texts: list[str], vectors: np.ndarray) -> np.ndarray:
    """One hypothesis's scores by its own judge, with no LLM at hand (keyword and embedding judges)."""
    return next(iter(judge_named(hypothesis.judge)([hypothesis], JudgeInput(texts, vectors))))


def score_hypotheses(
    hypotheses: list[Hypothesis],
    vs: PromptLayout,
    texts: Sequence[str] | Values,
    vectors: np.ndarray,
    mode: str = "auto",
    llm_ask: Ask | None = None,
    temperature: float = 0.0,
    judged: list[np.ndarray] | None = None,
) -> ScoreList:
    """Scores per hypothesis: offline judges where they apply, the LLM judge for the rest.

    mode "auto" keeps each hypothesis's own judge (the unitary LLM judge for LLM-proposed ones);
    "unitary", "pairwise" or "presence" use that LLM judge for all. Each judge is called once,
    with its hypotheses in order. Offline judges score every text (they are free); the LLM judge
    scores the `judged` texts, a mask over `texts` per hypothesis (default: its scope's), and leaves the rest NaN.
    `texts` may be the texts' `Values` (properties.values): the property judge's raw values are then kept there,
    for the caller to read again.
    """
    values, read = (texts, texts.texts) if isinstance(texts, Values) else (None, texts)
    inputs = JudgeInput(read, vectors, vs, "unitary" if mode == "auto" else mode, llm_ask, temperature, values)
    names = [h.judge if mode == "auto" else "llm" for h in hypotheses]
    scores = ScoreList([np.empty(0)] * len(hypotheses))  # each held in the narrowest exact type (scorelist)
    for name in dict.fromkeys(names):
        picked = [i for i, n in enumerate(names) if n == name]
        masks = None if judged is None else [judged[i] for i in picked]
        for i, found in zip(picked, judge_named(name)([hypotheses[i] for i in picked], inputs, masks)):
            scores[i] = found
    return scores


def is_presence_mode(hypothesis: Hypothesis, mode: str) -> bool:
    """Whether the hypothesis's scores are presences (0/1 or P(yes)): findings then get prevalences."""
    if mode != "auto":
        return mode == "presence"
    presence = PRESENCE_JUDGES.get(hypothesis.judge)
    return presence is not None and presence(hypothesis)

"""Scorers for voice and manner: pronouns, hedging and certainty, apologies, refusals, AI
disclaimers, politeness, enthusiasm, and ending on a question to the user.

Pronouns, hedges and certainty markers are rates per 100 words, so a longer answer does not score
higher just for being longer; the rarer, event-like markers (apologies, politeness formulas) are counts.
"""

from __future__ import annotations

import numpy as np

from lmdelta.properties import lexicons
from lmdelta.properties.batch import Texts
from lmdelta.properties.counting import lexicon_count, lexicon_presence, lexicon_rate
from lmdelta.properties.structure import QUESTION

CLOSING_SENTENCES = 2
"""How many final sentences count as the answer's closing (a question is often followed by one
more line: "Would you like the full recipe? I can also suggest variations.")."""

first_person = lexicon_rate(lexicons.FIRST_PERSON)
second_person = lexicon_rate(lexicons.SECOND_PERSON)
hedging = lexicon_rate(lexicons.HEDGES)
certainty = lexicon_rate(lexicons.CERTAINTY)
apologies = lexicon_count(lexicons.APOLOGIES)
politeness = lexicon_count(lexicons.POLITENESS)
enthusiasm = lexicon_count(lexicons.ENTHUSIASM)
refusal = lexicon_presence(lexicons.REFUSALS)
ai_disclaimer = lexicon_presence(lexicons.AI_DISCLAIMERS)


def question_to_user(batch: Texts) -> np.ndarray:
    """1.0 where one of the last CLOSING_SENTENCES prose sentences holds a question mark, else 0.0."""
    return np.fromiter(
        (
            1.0 if any(QUESTION.search(s) for s in sentences[-CLOSING_SENTENCES:]) else 0.0
            for sentences in batch.sentences
        ),
        dtype=float,
        count=len(batch),
    )

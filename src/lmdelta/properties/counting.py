"""Small builders of vectorised scorers (a batch of texts → one float per text) from a per-text
measure, a regex or a lexicon."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

import numpy as np

from lmdelta.properties.base import Scorer
from lmdelta.properties.batch import Texts
from lmdelta.properties.matching import PhraseMatcher

View = Literal["raw", "prose"]


def per_text(measure: Callable[[str], float], view: View = "raw") -> Scorer:
    """A scorer applying `measure` to each text as written ("raw") or to its prose ("prose")."""

    def scorer(batch: Texts) -> np.ndarray:
        texts = batch.prose if view == "prose" else batch
        return np.fromiter((measure(text) for text in texts), dtype=float, count=len(batch))

    return scorer


def count_matches(pattern: re.Pattern[str], text: str) -> int:
    """Non-overlapping matches of the pattern in the text."""
    return len(pattern.findall(text))  # faster than iterating: the list is built in C


def regex_count(pattern: re.Pattern[str], view: View = "raw") -> Scorer:
    """A scorer counting the pattern's matches in each text as written or in its prose."""
    return per_text(lambda text: count_matches(pattern, text), view)


def regex_presence(pattern: re.Pattern[str]) -> Scorer:
    """A presence scorer: 1.0 where the pattern occurs in the text, else 0.0."""
    return per_text(lambda text: 1.0 if pattern.search(text) else 0.0)


def lexicon_count(phrases: tuple[str, ...] | list[str]) -> Scorer:
    """A scorer counting occurrences of the lexicon's words and phrases (see matching)."""
    return PhraseMatcher(phrases).count


def lexicon_presence(phrases: tuple[str, ...] | list[str]) -> Scorer:
    """A presence scorer: 1.0 where any of the lexicon's words or phrases occurs, else 0.0."""
    matcher = PhraseMatcher(phrases)
    return lambda batch: (matcher.count(batch) > 0).astype(float)


def lexicon_rate(phrases: tuple[str, ...] | list[str]) -> Scorer:
    """A scorer: occurrences of the lexicon per 100 words of the text; NaN for a text with no words."""
    matcher = PhraseMatcher(phrases)

    def scorer(batch: Texts) -> np.ndarray:
        counts, words = matcher.count(batch), batch.word_counts
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(words > 0, 100.0 * counts / words, np.nan)

    return scorer

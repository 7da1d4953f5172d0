"""Sentiment with VADER (Hutto & Gilbert 2014; the vaderSentiment package, MIT), scored per sentence.

VADER is built for sentences: its cost grows with the square of the passage length (each
sentiment word re-reads the passage), and its authors advise scoring long texts sentence by
sentence and averaging. So a text's sentiment is the mean compound score of its prose sentences,
each cut into pieces of at most MAX_WORDS words. Sentences with no word in VADER's lexicon and no
emoji score exactly 0 in VADER, so they are counted as 0 without calling it.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import numpy as np

from lmdelta.errors import DependencyError
from lmdelta.properties.batch import Texts

MAX_WORDS = 60


def _analyzer() -> Any:  # vaderSentiment's SentimentIntensityAnalyzer, imported lazily
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # heavy-ish: lexicon files
    except ImportError as exc:
        raise DependencyError(
            "The sentiment property needs the Python package vaderSentiment, which is not installed.",
            "Install it with `pip install vaderSentiment`, or leave sentiment out of the properties to score.",
        ) from exc
    return SentimentIntensityAnalyzer()


def _pieces(sentences: list[str]) -> list[str]:
    """The sentences, long ones cut every MAX_WORDS whitespace-separated words."""
    pieces: list[str] = []
    for sentence in sentences:
        split = sentence.split()
        pieces.extend(" ".join(split[i : i + MAX_WORDS]) for i in range(0, len(split), MAX_WORDS))
    return pieces


def _may_carry_sentiment(piece: str, lexicon: dict[str, float]) -> bool:
    """False only where VADER is certain to return 0: an ASCII piece (VADER's emoji are not ASCII)
    none of whose tokens, split and stripped of punctuation as VADER does, is in its lexicon."""
    if not piece.isascii():
        return True
    for token in piece.lower().split():
        stripped = token.strip(string.punctuation)
        if (stripped if len(stripped) > 2 else token) in lexicon:
            return True
    return False


def _compound(analyzer: Any, cache: dict[str, float]) -> Callable[[str], float]:
    def compound(piece: str) -> float:
        if piece not in cache:
            carries = _may_carry_sentiment(piece, analyzer.lexicon)
            cache[piece] = analyzer.polarity_scores(piece)["compound"] if carries else 0.0
        return cache[piece]

    return compound


def sentiment(batch: Texts) -> np.ndarray:
    """Mean VADER compound score (−1 most negative … 1 most positive) of each text's prose
    sentences; NaN for a text with no sentence."""
    compound = _compound(_analyzer(), {})
    values = np.full(len(batch), np.nan)
    for i, sentences in enumerate(batch.sentences):
        pieces = _pieces(sentences)
        if pieces:
            values[i] = sum(map(compound, pieces)) / len(pieces)
    return values

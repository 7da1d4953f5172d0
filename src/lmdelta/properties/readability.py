"""Flesch reading ease, computed here with a vowel-group syllable count rather than with textstat.

textstat (0.7.13) looks English words up in NLTK's CMU dictionary and downloads that dictionary
on first use, which fails offline and so cannot run in lmdelta's tests; its pyphen fallback costs
about 0.3 ms per 200-word text. The heuristic here (vowel groups, minus a silent final e, at least
one per word) agrees with dictionary counts on most common words, runs as a few regexes per text,
and correlates closely with textstat's scores (see the report of issue 13).
"""

from __future__ import annotations

import re

import numpy as np

from lmdelta.properties.batch import Texts

_LETTERS = "a-zß-öø-ÿœ"
_VOWELS = "aeiouyà-æè-ïò-öø-üýÿœ"
_LATIN_WORD = re.compile(rf"[{_LETTERS}]+(?:['’][{_LETTERS}]+)*")
_VOWEL_GROUP = re.compile(f"[{_VOWELS}]+")
# A final e after a consonant is silent when the word has an earlier vowel ("make", "whole"), but
# not in a consonant + "le" ending ("table", "people").
_SILENT_E = re.compile(r"(?=[aeiouy])[aeiouy](?:[^aeiouy\W]*[^aeiouyl\W]|l)e\b")
_NO_VOWEL = re.compile(rf"(?<![{_LETTERS}'’])[b-df-hj-np-tv-xzßçñ]+(?![{_LETTERS}'’])")


def syllables(text: str) -> int:
    """Estimated syllables of the Latin-script words in a lower-case text."""
    return len(_VOWEL_GROUP.findall(text)) - len(_SILENT_E.findall(text)) + len(_NO_VOWEL.findall(text))


def _flesch(prose_text: str, n_sentences: int) -> float:
    lowered = prose_text.lower()
    n_words = len(_LATIN_WORD.findall(lowered))
    if not n_words:
        return float("nan")
    return 206.835 - 1.015 * n_words / max(1, n_sentences) - 84.6 * syllables(lowered) / n_words


def flesch_reading_ease(batch: Texts) -> np.ndarray:
    """Flesch reading ease of each text's prose in Latin-script words: about 0–100, higher is
    easier, below 0 for very dense text; NaN for a text without Latin-script words."""
    values = (_flesch(text, len(sentences)) for text, sentences in zip(batch.prose, batch.sentences, strict=True))
    return np.fromiter(values, dtype=float, count=len(batch))
